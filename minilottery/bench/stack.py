"""Stacked training steps against the same runs one by one (``bench --stack 1 5 20``).

For each case and each R: R runs' steps taken one by one (the unstacked step, R times) and,
the same R runs stacked into one network (nn/stacked.py), interleaved repeat by repeat; times
are per run.
"""
import statistics

import numpy as np

from minilottery import backend
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.models import build_model
from minilottery.nn.optim import Adam
from minilottery.nn.stacked import StackedNet
from minilottery.rng import Streams

MODELS = {"lenet": ("lenet_300_100", "mnist"), "conv2": ("conv2", "mnist")}


def _nets(case, runs, density):
    name, dataset = MODELS[case]
    nets = [build_model(name, Streams.from_seed(r), dataset=dataset) for r in range(runs)]
    if density < 1.0:
        rng = np.random.default_rng(2)
        for net in nets:
            net.set_masks({k: (rng.random(w.shape) < density).astype(np.float32)
                           for k, w in net.get_weights().items() if k.endswith(".W")})
    return nets


def _step(model, x, labels, lr):
    opt = Adam(model.params(), lr=lr)

    def step():
        loss, dlogits = softmax_cross_entropy(model.forward(x, train=True), labels)
        model.backward(dlogits, input_grad=False)
        opt.step(model.grads(), model.masks())
    return step


def measure_stacks(case, stacks, args, time_fn, inner_fn, lr, torch_step=None):
    """Rows {case, runs, alone, stacked, torch} of seconds per run, for each R in ``stacks``."""
    if case not in MODELS:
        raise ValueError(f"bench --stack takes the cases {', '.join(MODELS)}, got {case!r}")
    rows, sync = [], backend.synchronize
    for runs in stacks:
        nets = _nets(case, runs, args.density)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((runs, args.batch) + nets[0].input_shape, dtype=np.float32)
        y = rng.integers(0, 10, size=(runs, args.batch))
        dx, dy = backend.asarray(x), backend.asarray(y)
        alone_steps = [_step(net, dx[r], dy[r], lr) for r, net in enumerate(nets)]

        def alone():
            for s in alone_steps:
                s()
        stacked = _step(StackedNet(_nets(case, runs, args.density)), dx, dy, lr)
        fns = [alone, stacked] + ([torch_step] if torch_step else [])
        for _ in range(args.warmup):
            for f in fns:
                f()
        inner = {f: inner_fn(f, sync) for f in fns}
        times = {f: [] for f in fns}
        for r in range(args.repeats):                            # interleaved, the order alternating
            for f in (fns if r % 2 == 0 else fns[::-1]):
                times[f].append(time_fn(f, sync, inner[f]))
        per_run = {f: statistics.median(t) for f, t in times.items()}
        rows.append({"case": case, "runs": runs, "alone": per_run[alone] / runs,
                     "stacked": per_run[stacked] / runs,
                     "ratio": statistics.median(s / a for s, a in zip(times[stacked], times[alone])),
                     "torch": per_run[torch_step] if torch_step else None})
    return rows


def format_stack_table(rows):
    lines = ["| case | R | one by one ms/run | stacked ms/run | stacked / one by one | PyTorch ms/run (alone) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        torch = "n/a" if r["torch"] is None else f"{r['torch'] * 1e3:.2f}"
        lines.append(f"| {r['case']} | {r['runs']} | {r['alone'] * 1e3:.2f} | {r['stacked'] * 1e3:.2f} | "
                     f"{r['ratio']:.2f} | {torch} |")
    return "\n".join(lines)
