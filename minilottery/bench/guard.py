"""Speed guard: our training step against the plain-NumPy step of the same shapes (no PyTorch).

For LeNet-300-100 and Conv-2 (MNIST shapes, batch 60, 80% random masks, Adam,
one BLAS thread) the real step (model, loss, backward without the data
gradient, masked optimiser) and ``plain.PlainStep`` (the same matmuls and
elementwise updates written straight) run interleaved in one process, the
order alternating repeat by repeat. Each repeat's ratio ours/plain is taken on
the calling thread's CPU time (``time.thread_time``: time spent waiting for a
core on a busy machine is not counted); the guard fails when the median ratio
exceeds the case's stated multiple in two attempts running (one retry).

    python -m minilottery.bench.guard [--cases lenet,conv2] [--repeats N]

Exit status 0 when every case is within its multiple, 1 otherwise.
"""
import argparse
import statistics
import sys
import time

import numpy as np

from minilottery.blas import blas_threads, set_blas_threads
from minilottery.bench.plain import PlainStep
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.models import build_model
from minilottery.nn.optim import Adam
from minilottery.rng import Streams

# case: (model, ours/plain multiple that fails, repeats, steps per repeat)
# Today's ratios on a busy machine: LeNet 1.33-1.42 (201a476, whose masked Adam was 4x slower:
# 2.4-2.7), Conv-2 0.41-0.46. The plain Conv-2 materialises its whole column matrices (108 MB
# each) where ours gathers them block by block, so ours is the faster there. Each multiple is
# about 1.3-1.5x today's ratio, so that noise does not fail it and a regression of that size does.
CASES = {"lenet": ("lenet_300_100", 1.8, 11, 20), "conv2": ("conv2", 0.65, 5, 1)}
BATCH, DENSITY, LR = 60, 0.8, 1.2e-3


def steps(model_name, seed=0):
    """(ours, plain): two step functions over the same weights, masks and batch."""
    model = build_model(model_name, Streams.from_seed(seed), dataset="mnist")
    rng = np.random.default_rng(seed + 1)
    masks = {k: (rng.random(w.shape) < DENSITY).astype(np.float32)
             for k, w in model.get_weights().items() if k.endswith(".W")}
    model.set_weights({k: w * masks[k] if k in masks else w for k, w in model.get_weights().items()})
    model.set_masks(masks)                                    # pruned weights 0, as the zero action
    x = rng.standard_normal((BATCH,) + model.input_shape, dtype=np.float32)
    y = rng.integers(0, 10, size=BATCH)
    plain = PlainStep(model.get_weights(), masks, x, y, LR)
    opt = Adam(model.params(), lr=LR)

    def ours():
        _, dlogits = softmax_cross_entropy(model.forward(x, train=True), y)
        model.backward(dlogits, input_grad=False)
        opt.step(model.grads(), model.frozen())
    return ours, plain


def ratios(ours, plain, repeats, inner, clock=time.thread_time):
    """Per-repeat CPU seconds per step of each, interleaved with alternating order."""
    times = {ours: [], plain: []}
    for fn in (ours, plain):
        fn()                                                  # warm: caches, buffers, pages
    for r in range(repeats):
        for fn in ((ours, plain) if r % 2 == 0 else (plain, ours)):
            t0 = clock()
            for _ in range(inner):
                fn()
            times[fn].append((clock() - t0) / inner)
    return times[ours], times[plain]


def check(case, repeats=None, attempts=2, out=print):
    """Run one case (with one retry); True when the median ratio is within its multiple."""
    model_name, limit, default_repeats, inner = CASES[case]
    ours, plain = steps(model_name)
    for attempt in range(1, attempts + 1):
        t_ours, t_plain = ratios(ours, plain, repeats or default_repeats, inner)
        ratio = statistics.median(a / b for a, b in zip(t_ours, t_plain))
        ok = ratio <= limit
        out(f"{case:6s} ours {1e3 * statistics.median(t_ours):8.2f} ms  plain NumPy "
            f"{1e3 * statistics.median(t_plain):8.2f} ms  ratio {ratio:.2f}  limit {limit:.2f}  "
            f"{'ok' if ok else 'TOO SLOW'}" + (f" (attempt {attempt})" if attempt > 1 or not ok else ""))
        if ok:
            return True
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minilottery.bench.guard", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per attempt")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        parser.error(f"unknown case {unknown[0] if unknown else '(none)'}; choose from {','.join(CASES)}")
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be a positive integer, got {args.repeats}")
    threads = blas_threads()
    set_blas_threads(1)
    try:
        print("speed guard: our step / plain-NumPy step, median of interleaved repeats, CPU time, one BLAS thread")
        failed = [c for c in cases if not check(c, args.repeats)]
    finally:
        if threads:
            set_blas_threads(threads)
    if failed:
        print(f"speed guard FAILED: {', '.join(failed)} slower than the stated multiple of plain NumPy")
        return 1
    print("speed guard passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
