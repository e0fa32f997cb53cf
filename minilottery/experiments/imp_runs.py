"""IMP's training runs, on whichever process runs them: one run, or several of one architecture
stacked into one network (nn/stacked.py); each gives the store its (arrays, attrs)."""
from dataclasses import replace

from minilottery.lottery.pruning import fraction_remaining
from minilottery.lottery.resets import reset
from minilottery.nn.models import build_model
from minilottery.rng import Streams
from minilottery.stack import train_stacked
from minilottery.train import train


def model_of(cfg, rngs):
    """The configured network, its θ drawn from ``rngs.init``."""
    return build_model(cfg.model, rngs, dataset=cfg.dataset, dropout=cfg.dropout, width=cfg.width)


def finetune_config(t):
    """Fine-tuning's training: ``t``'s length at its schedule's last rate lr_at(T), constant (no warmup, no
    milestones: the step schedule's drops are already in lr_at(T))."""
    return replace(t, lr=t.lr_at(t.iterations), schedule="constant", warmup=0, milestones=())


def _start(cfg, key, start, mask, fills):
    rngs = Streams.from_seed(*key)
    model = model_of(cfg, rngs)
    reset(model, start, mask, fills)
    return model, rngs


def train_run(cfg, data_ref, key, kind, start, mask, fills, snaps, label):
    """One IMP run on whichever process runs it: (arrays, attrs) for the store."""
    model, rngs = _start(cfg, key, start, mask, fills)
    pm = fraction_remaining(mask)
    res = train(model, data_ref.load(), cfg.train, rngs, snapshot_iterations=snaps,
                label=label.replace(": ", f" (Pm {100 * pm:.1f}%): "))
    return _stored(cfg, model, res, kind, pm, fills, snaps)


def train_runs_stacked(runs):
    """IMP runs (train_run's arguments, one architecture, no fills or snapshots) trained as one
    stacked network: the list of their (arrays, attrs), each what train_run gives it."""
    cfg, data_ref = runs[0][0], runs[0][1]
    models, streams = zip(*(_start(cfg, key, start, mask, fills) for _, _, key, _, start, mask, fills, *_ in runs))
    results = train_stacked(list(models), data_ref.load(), cfg.train, list(streams))
    return [_stored(cfg, m, res, r[3], fraction_remaining(r[5]), r[6], r[7])
            for m, res, r in zip(models, results, runs)]


def _stored(cfg, model, res, kind, pm, fills, snaps):
    arrays = {"weights": model.get_weights(), "curves": res.curves}
    if fills:
        arrays["fill"] = fills                                   # frozen values F (mask-0 actions)
    if snaps:
        arrays["snapshot"] = res.snapshots[cfg.rewind_iteration]
    return arrays, {**res.summary(), "Pm": pm, "kind": kind}
