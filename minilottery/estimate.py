"""The plan of an experiment before it runs: how many runs, how many are done, and about how long the rest takes.

The time comes from a measurement on this machine: a few training steps of the
model at the run's batch size, and an evaluation batch, on random inputs (no
dataset needed). A run costs its iterations × the step, plus its evaluations
(validation and test every ``eval_every``, the training split once at the end; an
instability path: the test and training examples at every point);
score-trained runs (supermasks, jackpots) are counted as dense steps. The wall
time is the longer of the runs' total over the workers and the longest chain of
runs that wait on each other (an IMP trial's levels).
"""
import time

import numpy as np

from minilottery.data import SPLIT_SIZES, Splits
from minilottery.progress import format_seconds


def lengths(cfg, tasks):
    """{group: TrainConfig or None} of every run (None: evaluated, not trained)."""
    d = cfg.to_dict()
    kind = d["kind"]
    out = {}
    for t in tasks:
        if not t.label:
            continue
        g = t.group
        if kind == "jackpot":
            train = (None if g.endswith("/magnitude") else cfg.finetune if g.endswith("/finetune")
                     else (None if cfg.pretrained else cfg.pretrain) if g == "pretrained" else cfg.search)
        elif kind == "supermask" and cfg.method == "at_init":
            train = cfg.train if g == "dense" else None
        elif kind == "instability" and g.endswith("/path"):
            train = None                                      # the path between two copies is evaluated
        else:
            train = cfg.imp.train if kind == "deconstructing" else cfg.train
        out[g] = train
    return out


def step_costs(model, dataset, train, repeats=10):
    """(seconds per training iteration, seconds per evaluated example) measured here on random inputs."""
    from minilottery.backend import asarray
    from minilottery.nn.models import INPUT_SHAPES, build_model
    from minilottery.rng import Streams
    from minilottery.train import TrainConfig, evaluate
    from minilottery import train as trainer
    rng = np.random.default_rng(0)
    shape = INPUT_SHAPES[dataset]
    n, m = 2 * train.batch_size, 2 * train.eval_batch
    make = lambda k: (rng.random((k, *shape), dtype=np.float32), rng.integers(0, 10, k))   # noqa: E731
    data = Splits(train=make(n), val=make(m), test=make(m))
    net = build_model(model, Streams.from_seed(0), dataset=dataset)
    cfg = TrainConfig(**{**train.__dict__, "iterations": repeats, "eval_every": 10 ** 9})
    t0 = time.perf_counter()
    trainer.train(net, data, cfg, Streams.from_seed(0), progress=False)
    t1 = time.perf_counter()
    evaluate(net, *(asarray(a) for a in data.val), train.eval_batch)
    per_example = (time.perf_counter() - t1) / m
    per_step = max((t1 - t0 - (n + 2 * m) * per_example) / repeats, 1e-6)   # train() also evaluates once
    return per_step, per_example


def run_seconds(train, dataset, per_step, per_example):
    n_train, n_val, n_test = SPLIT_SIZES[dataset]
    if train is None:
        return (n_val + n_test) * per_example
    evals = -(-train.iterations // train.eval_every)
    return train.iterations * per_step + evals * (n_val + n_test) * per_example + n_train * per_example


def plan(cfg, store=None, workers=1):
    """{"runs", "done", "left", "seconds", "text"}: the experiment's runs and an estimate of the time left."""
    from minilottery.experiments.base import KINDS
    from minilottery.plan import DataRef
    d = cfg.to_dict()
    inner = cfg.imp if d["kind"] == "deconstructing" else cfg
    experiment = KINDS[d["kind"]][1]
    tasks = experiment(cfg, store, DataRef.inline_data(None), log=lambda *a: None).tasks()
    if d["kind"] == "deconstructing":                         # variants share θ0 and the dense run
        tasks = list({t.group: t for t in tasks}.values())
    runs = lengths(cfg, tasks)
    done = {g for g in runs if store is not None and store.done(g)}
    costs = {}
    for g, train in runs.items():
        if g not in done:
            key = None if train is None else (train.batch_size, train.eval_batch)
            if key not in costs:
                probe = train or getattr(inner, "train", None) or cfg.search
                costs[key] = step_costs(inner.model, inner.dataset, probe)
    seconds = {g: 0.0 if g in done else run_seconds(t, inner.dataset, *costs[None if t is None else
                                                                              (t.batch_size, t.eval_batch)])
               for g, t in runs.items()}
    if d["kind"] == "instability":                           # a path: every point on the test and training examples
        n_train, _, n_test = SPLIT_SIZES[cfg.dataset]
        per_example = costs[None][1] if None in costs else 0.0
        seconds.update({g: cfg.points * (n_test + (cfg.train_examples or n_train)) * per_example
                        for g in seconds if g.endswith("/path") and g not in done})
    finish = {}
    for t in tasks:                                          # longest chain: tasks come in dependency order
        finish[t.group] = max((finish.get(dep, 0.0) for dep in t.deps), default=0.0) + seconds.get(t.group, 0.0)
    wall = max(sum(seconds.values()) / max(1, workers), max(finish.values(), default=0.0))
    left = len(runs) - len(done)
    text = (f"{len(runs)} runs" + (f", {len(done)} done, {left} to go" if done else "")
            + f"; about {format_seconds(wall)} with {workers} worker{'s' if workers != 1 else ''} "
              f"(measured steps of {inner.model} here; a rough guide)")
    return {"runs": len(runs), "done": len(done), "left": left, "seconds": wall, "text": text}
