"""Conv2d alone on the layer shapes of the deeper networks, against torch's conv2d in the same run.

ResNet-20 / VGG shapes at batch 128 on CIFAR (3×32×32 down to 2×2 maps), the
Conv-2 layers at batch 60, 80% masks. Forward in training mode; backward gives
dx, dW and db (torch: ``autograd.grad`` of a recorded graph). Ours and torch
alternate call by call; times are the calling thread's CPU time (one BLAS /
torch thread), medians; ratio = median of the per-repeat ratios ours/torch.

    python -m minilottery.bench.conv_shapes [--repeats 7] [--shapes r20_s2,vgg_2]
"""
import argparse
import statistics
import sys
import time

import numpy as np

from minilottery.blas import set_blas_threads
from minilottery.nn.conv import Conv2d

# name: (batch, in, out, side, kernel, stride, padding)
SHAPES = {
    "conv2_1": (60, 1, 64, 28, 3, 1, 1), "conv2_2": (60, 64, 64, 28, 3, 1, 1),
    "r20_in": (128, 3, 16, 32, 3, 1, 1), "r20_16": (128, 16, 16, 32, 3, 1, 1),
    "r20_s2": (128, 16, 32, 32, 3, 2, 1), "r20_32": (128, 32, 32, 16, 3, 1, 1),
    "r20_s2b": (128, 32, 64, 16, 3, 2, 1), "r20_64": (128, 64, 64, 8, 3, 1, 1),
    "r20_1x1s2": (128, 16, 32, 32, 1, 2, 0), "vgg_4": (128, 512, 512, 4, 3, 1, 1),
    "vgg_2": (128, 512, 512, 2, 3, 1, 1),
}


def measure(shape, repeats, clock=time.thread_time):
    import torch
    n, c, o, side, k, s, p = shape
    rng = np.random.default_rng(0)
    layer = Conv2d(c, o, k, rng, stride=s, padding=p)
    layer.set_mask((rng.random(layer.params["W"].shape) < 0.8).astype(np.float32))
    x = rng.standard_normal((n, c, side, side), dtype=np.float32)
    dy = rng.standard_normal((n,) + layer.output_shape((c, side, side)), dtype=np.float32)
    conv = torch.nn.Conv2d(c, o, k, s, p)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(layer.effective_weight()))
    tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)
    ty = conv(tx)

    def backward():
        layer.forward(x, train=True)                            # (not timed: the cache backward reads)
        t0 = clock()
        layer.backward(dy)
        return clock() - t0

    def timed(fn):
        t0 = clock()
        fn()
        return clock() - t0
    calls = {"ours_f": lambda: timed(lambda: layer.forward(x, train=True)), "ours_b": backward,
             "torch_f": lambda: timed(lambda: conv(tx)),
             "torch_b": lambda: timed(lambda: torch.autograd.grad(ty, [tx, conv.weight, conv.bias], tdy,
                                                                  retain_graph=True))}
    for fn in calls.values():
        fn()
    t = {name: [] for name in calls}
    for r in range(repeats):
        for name in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            t[name].append(calls[name]())
    ratio = {d: statistics.median(a / b for a, b in zip(t["ours_" + d], t["torch_" + d])) for d in "fb"}
    return {name: statistics.median(v) for name, v in t.items()}, ratio


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minilottery.bench.conv_shapes", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="alternating repeats per shape (default 7)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated subset of {','.join(SHAPES)}")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.shapes.split(",") if s.strip()]
    bad = [s for s in names if s not in SHAPES]
    if bad or not names:
        parser.error(f"unknown shape {bad[0] if bad else '(none)'}; choose from {','.join(SHAPES)}")
    try:
        import torch
    except ImportError:
        parser.error("this comparison needs PyTorch (pip install torch); the speed guard does not")
    torch.set_num_threads(1)
    set_blas_threads(1)
    print("| layer (N, C→O, side, k, stride) | path | fwd ours ms | torch ms | ratio | bwd ours ms | torch ms | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        n, c, o, side, k, s, p = SHAPES[name]
        med, ratio = measure(SHAPES[name], args.repeats)
        probe = Conv2d(c, o, k, np.random.default_rng(0), stride=s, padding=p)
        probe.forward(np.zeros((1, c, side, side), np.float32))
        print(f"| {name} ({n}, {c}→{o}, {side}, {k}, {s}) | {'columns' if getattr(probe, 'columns', False) else 'grid'} | "
              f"{1e3 * med['ours_f']:.1f} | {1e3 * med['torch_f']:.1f} | {ratio['f']:.2f} | "
              f"{1e3 * med['ours_b']:.1f} | {1e3 * med['torch_b']:.1f} | {ratio['b']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
