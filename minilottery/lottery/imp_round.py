"""One IMP round's new mask, and the plan of rounds: per-layer rates, or one global rate.

After r rounds at rate p a layer keeps (1 − p)^r of its weights; a one-shot level r takes r
rounds' worth at once. Global pruning ranks every pruned layer's criterion scores together.
"""
from minilottery.lottery.criteria import score_masks
from minilottery.lottery.pruning import global_prune, layer_rates, plan_counts, prune_by_score, prune_counts


def prune_step(cfg, kinds, init_weights, final_weights, base_mask, rng, steps=1):
    """New mask: ``steps`` rounds' worth of the rates at once, lowest criterion scores first:
    per layer, or (global pruning) over every layer whose own rate is above 0 together."""
    keep = lambda rate: (1.0 - rate) ** steps  # noqa: E731  fraction of base kept
    rates = layer_rates(kinds, cfg.conv_rate, cfg.fc_rate, cfg.output_rate)
    scores = score_masks(cfg.criterion, init_weights, final_weights, base_mask, rng)
    if cfg.global_pruning:
        return global_prune(scores, base_mask, 1.0 - keep(cfg.fc_rate), pruned_keys(rates), rng)
    counts = prune_counts(base_mask, {k: 1.0 - keep(r) for k, r in rates.items() if r > 0})
    return prune_by_score(scores, base_mask, counts, rng)


def pruned_keys(rates):
    """The weights a round prunes: those whose kind has a rate above 0 (never ResNet's shortcuts)."""
    return [k for k, r in rates.items() if r > 0]


def round_plan(model, cfg):
    """plan_counts of ``cfg``'s rounds on ``model``: refuses a plan under which a layer would empty or stop
    shrinking (under global pruning, the pruned layers together)."""
    counts = model.weight_counts()
    rates = layer_rates(model.weight_kinds(), cfg.conv_rate, cfg.fc_rate, cfg.output_rate)
    if cfg.global_pruning:
        keys = pruned_keys(rates)
        counts, rates = {"all pruned layers": sum(counts[k] for k in keys)}, {"all pruned layers": cfg.fc_rate}
    return plan_counts(counts, rates, cfg.rounds, oneshot=cfg.oneshot)
