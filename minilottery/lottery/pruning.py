"""Pruning by score (layer-wise or global), the pruning plan, and random pruning.

Masks are host ``numpy`` arrays of 0/1 in the weight's dtype, keyed like the
model's weights (``"fc1.W"``); biases are never pruned. Every pruning step
removes an exact count of the *remaining* weights:
    k_l = round(rate_l · remaining_l)
choosing those with the lowest score (magnitude pruning: score = |w|), so masks
only shrink. After r rounds a layer keeps (1 − rate_l)^r.

One selection rule serves every pruner (``_select``): sort the remaining
entries stably by score (flat index order among equals) and drop the first k.
Where the score of the last dropped entry equals that of the first kept one (a
tie across the cut) and a ``numpy.random.Generator`` is given, the tied entries
that go are a seeded random choice among all entries of that score; without a
tie no randomness is drawn, and without a generator the lowest flat index goes
first (``magnitude_prune``'s rule).
"""
import numpy as np

from minilottery.errors import ConfigError, DivergenceError


def layer_rates(kinds, conv_rate, fc_rate, output_rate):
    """{"layer.W": rate} from the papers' per-kind rates; kinds from ``Sequential.weight_kinds()``."""
    by_kind = {"conv": conv_rate, "fc": fc_rate, "output": output_rate, "shortcut": 0.0}  # shortcuts: never
    return {key: by_kind[kind] for key, kind in kinds.items()}


def check_rates(rates, masks):
    for key, rate in rates.items():
        if key not in masks:
            raise ConfigError(f"no prunable layer {key!r}; prunable weights are {sorted(masks)}")
        if not 0.0 < rate < 1.0:
            raise ConfigError(f"pruning rate for {key} must be in (0, 1), got {rate}")


def prune_counts(masks, rates):
    """{key: number of remaining weights to remove}, refusing to empty a layer."""
    counts = {}
    for key, rate in rates.items():
        remaining = int(masks[key].sum())
        k = int(round(rate * remaining))
        if remaining - k < 1:
            raise ConfigError(f"pruning {key} at rate {rate} would leave no weights "
                              f"({remaining} remain); use fewer rounds or a lower rate")
        counts[key] = k
    return counts


def _select(score, mask, k, rng=None):
    """``mask`` with its k remaining entries of lowest score set to 0 (rule in the module docstring)."""
    new = mask.copy()
    alive = np.flatnonzero(mask.ravel())
    s = score.ravel()[alive]
    idx = np.argsort(s, kind="stable")
    order, ranked = alive[idx], s[idx]
    drop = order[:k]
    if rng is not None and 0 < k < order.size and ranked[k - 1] == ranked[k]:
        cut = ranked[k]                                           # the tied score at the cut
        lo, hi = np.searchsorted(ranked, cut, "left"), np.searchsorted(ranked, cut, "right")
        chosen = rng.choice(order[lo:hi], size=k - lo, replace=False)   # k − lo of the tied go
        drop = np.concatenate([order[:lo], chosen])
    new.ravel()[drop] = 0
    return new


def prune_by_score(scores, masks, counts, rng=None):
    """Per layer, remove exactly ``counts[key]`` remaining weights with the lowest score.

    scores: {key: array shaped like the mask} (only remaining entries are read);
    masks: {key: 0/1 array}; counts: {key: int}, layers absent are left as they
    are; rng: ``numpy.random.Generator`` breaking ties across the cut, or None
    (lowest flat index first). Returns new masks; pruned weights never return.
    """
    out = {key: m.copy() for key, m in masks.items()}
    for key, k in counts.items():
        if key not in masks:
            raise ConfigError(f"no prunable layer {key!r}; prunable weights are {sorted(masks)}")
        remaining = int(np.count_nonzero(masks[key]))
        if not 0 <= k <= remaining:
            raise ConfigError(f"cannot remove {k} weights of {key}: {remaining} remain")
        if np.shape(scores[key]) != masks[key].shape:
            raise ConfigError(f"score of {key} has shape {np.shape(scores[key])}, "
                              f"its mask {masks[key].shape}")
        out[key] = _select(np.asarray(scores[key]), masks[key], int(k), rng)
    return out


def magnitude_prune(weights, masks, rates):
    """Layer-wise: remove round(rate · remaining) smallest-|w| weights of each layer.

    weights, masks: {key: host array}; rates: {key: rate in (0, 1)} (layers
    absent from rates are left as they are). Returns new masks.
    """
    check_rates(rates, masks)
    counts = prune_counts(masks, rates)
    return prune_by_score({key: np.abs(weights[key]) for key in counts}, masks, counts)


def global_magnitude_prune(weights, masks, rate, keys=None):
    """Global: remove round(rate · remaining) smallest-|w| weights across ``keys`` together."""
    keys = sorted(masks) if keys is None else list(keys)
    return global_prune({k: np.abs(weights[k]) for k in keys}, masks, rate, keys)


def global_prune(scores, masks, rate, keys, rng=None):
    """Global: remove round(rate · remaining) lowest-score weights across ``keys`` together
    (one ranking of every score of those layers; the other layers are left as they are)."""
    keys = list(keys)
    check_rates({k: rate for k in keys}, masks)
    flat_w = np.concatenate([np.asarray(scores[k], dtype=np.float64).ravel() for k in keys])
    flat_m = np.concatenate([masks[k].ravel() for k in keys])
    k = int(round(rate * flat_m.sum()))
    new_flat = _select(flat_w, flat_m, k, rng)
    out, start = {k_: m.copy() for k_, m in masks.items()}, 0
    for key in keys:
        n = masks[key].size
        out[key] = new_flat[start:start + n].reshape(masks[key].shape)
        if out[key].sum() < 1:
            raise ConfigError(f"global pruning at rate {rate} would leave layer {key} empty")
        start += n
    return out


def random_prune(masks, counts, rng):
    """Control: remove ``counts[key]`` remaining weights of each layer at random positions."""
    scores = {key: rng.random(masks[key].shape) for key in counts}   # drawn in the order of counts
    return prune_by_score(scores, masks, counts)


def random_mask_like(masks, reference, rng):
    """A random mask with the same per-layer number of kept weights as ``reference``."""
    counts = {k: int(masks[k].sum() - reference[k].sum()) for k in reference}
    return random_prune(masks, counts, rng)


def step_rate(rate, steps):
    """The fraction of the base mask one pruning removes for ``steps`` rounds at once: 1 − (1 − rate)^steps."""
    return 1.0 - (1.0 - rate) ** steps


def plan_counts(sizes, rates, levels, oneshot=False):
    """The remaining weights per layer at every level 0..levels, refusing a plan that stalls.

    sizes: {key: number of weights}; rates: {key: rate in [0, 1)}, a layer absent
    or at rate 0 is never pruned. Iterative: level r removes
        k = round(step_rate(rate, 1) · remaining_{r−1})   of the level r−1 mask;
    one-shot: level r keeps n − round(step_rate(rate, r) · n) of the dense layer
    (exactly what ``magnitude_prune`` does with those rates). Returns a list whose
    item r is {key: remaining}; raises ConfigError naming the level and layer where
    a pruned layer would be left empty or would stop shrinking.
    """
    for key, rate in rates.items():
        if key not in sizes:
            raise ConfigError(f"no prunable layer {key!r}; prunable weights are {sorted(sizes)}")
        if not 0.0 <= rate < 1.0:
            raise ConfigError(f"pruning rate for {key} must be in [0, 1), got {rate}")
    plan = [{key: int(n) for key, n in sizes.items()}]
    for level in range(1, levels + 1):
        prev, now = plan[-1], {}
        for key, n in sizes.items():
            rate, was = rates.get(key, 0.0), f"{prev[key]} remain" + ("s" if prev[key] == 1 else "")
            base = int(n) if oneshot else prev[key]
            left = base - int(round(step_rate(rate, level if oneshot else 1) * base))
            if rate > 0 and left < 1:
                raise ConfigError(f"level {level}: pruning {key} at rate {rate} would leave no weights "
                                  f"({was}); use fewer rounds or a lower rate")
            if rate > 0 and left >= prev[key]:
                raise ConfigError(f"level {level}: pruning {key} at rate {rate} removes no weight "
                                  f"({was}): Pm would stop falling; use fewer rounds "
                                  f"or a higher rate")
            now[key] = left
        plan.append(now)
    return plan


def counts_to(masks, remaining):
    """{key: how many of ``masks``' remaining weights to remove to leave ``remaining[key]``}."""
    return {key: int(np.count_nonzero(masks[key])) - int(r) for key, r in remaining.items()}


def ones_masks(weights):
    """Dense masks (all ones) shaped like the weights."""
    return {k: np.ones_like(w) for k, w in weights.items()}


def fraction_remaining(masks):
    """Pm: fraction of prunable weights still in the network."""
    return float(sum(m.sum() for m in masks.values()) / sum(m.size for m in masks.values()))


def check_kept(masks, kept, label=""):
    """Refuse host masks ({key: 0/1 array}) that do not keep exactly ``kept`` ({key: count}) weights per
    layer: a mask whose kept fraction is not the asked one is an error, never a result."""
    for k, want in kept.items():
        got = int(np.count_nonzero(np.asarray(masks[k])))
        if got != want:
            raise DivergenceError(f"{label}the mask of {k} keeps {got} of {np.size(masks[k])} weights where "
                                  f"{want} were asked: its scores are not usable (try a smaller learning rate)")
