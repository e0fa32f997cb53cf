"""Training steps of several checkouts of this project (and PyTorch) timed in one process, interleaved.

Each LABEL=PATH names a source tree (a git worktree of another commit); its
``minilottery`` is imported under a name of its own, so every version runs
side by side on the same weights (seed 0), 80% masks (seed 2), batch and Adam,
one BLAS thread, the order alternating repeat by repeat. With ``--torch`` the
PyTorch step of the last checkout's ``bench_torch`` joins. Times are the
calling thread's CPU time (``--wall`` for wall-clock), medians; each ratio is
the median of the per-repeat ratios to the last column. Trees as old as
3a44004 (optimisers over a model) work too.

    python -m minilottery.bench.checkouts lenet_300_100 30 before=/path/old after=/path/new --torch
    python -m minilottery.bench.checkouts resnet20 5 before=/path/old after=. --dataset cifar10 --batch 128
"""
import argparse
import importlib
import inspect
import statistics
import sys
import time

import numpy as np

MODULES = ("blas", "nn.models", "nn.losses", "nn.optim", "rng")


def load(path):
    """The modules a step needs, imported from the tree at ``path`` and set aside under a private name."""
    def ours():
        return [k for k in sys.modules if k == "minilottery" or k.startswith("minilottery.")]
    saved = {k: sys.modules.pop(k) for k in ours()}
    sys.path.insert(0, path)
    try:
        mods = {m: importlib.import_module("minilottery." + m) for m in MODULES}
        for name in ("minilottery.bench.torch_peers", "minilottery.bench_torch"):   # the peers, then and now
            try:
                mods["bench_torch"] = importlib.import_module(name)
                break
            except ImportError:
                pass
    finally:
        sys.path.remove(path)
        for k in ours():
            sys.modules[f"_checkout{len(saved)}_{id(mods)}_{k}"] = sys.modules.pop(k)
        sys.modules.update(saved)
    return mods


def step_of(mods, model_name, batch=60, density=0.8, dataset="mnist"):
    """(step, model, x, y) for one checkout: forward, loss, backward without dx, masked Adam."""
    mods["blas"].set_blas_threads(1)
    model = mods["nn.models"].build_model(model_name, mods["rng"].Streams.from_seed(0), dataset=dataset)
    rng = np.random.default_rng(2)
    model.set_masks({k: (rng.random(w.shape) < density).astype(np.float32)
                     for k, w in model.get_weights().items() if k.endswith(".W")})
    data = np.random.default_rng(1)
    x = data.standard_normal((batch,) + tuple(model.input_shape), dtype=np.float32)
    y = data.integers(0, 10, size=batch)
    adam, loss = mods["nn.optim"].Adam, mods["nn.losses"].softmax_cross_entropy
    over_dicts = "grads" in inspect.signature(adam.step).parameters      # after the redesign
    opt = adam(model.params() if over_dicts else model, lr=1.2e-3)
    frozen = getattr(model, "frozen", model.masks)

    def step():
        model.backward(loss(model.forward(x, train=True), y)[1], input_grad=False)
        opt.step(model.grads(), frozen()) if over_dicts else opt.step()
    return step, model, x, y


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minilottery.bench.checkouts", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="lenet_300_100, conv2, ...")
    parser.add_argument("repeats", type=int)
    parser.add_argument("trees", nargs="+", metavar="LABEL=PATH")
    parser.add_argument("--torch", action="store_true", help="add the PyTorch step (last column)")
    parser.add_argument("--wall", action="store_true", help="wall-clock instead of CPU time")
    parser.add_argument("--dataset", default="mnist", help="the input shape: mnist (1×28×28), cifar10 (3×32×32), ...")
    parser.add_argument("--batch", type=int, default=60)
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.wall else time.thread_time
    steps = []
    for tree in args.trees:
        label, _, path = tree.partition("=")
        if not path:
            parser.error(f"give each tree as LABEL=PATH, got {tree!r}")
        mods = load(path)
        step, model, x, y = step_of(mods, args.model, args.batch, dataset=args.dataset)
        steps.append((label, step))
    if args.torch:
        import torch
        torch.set_num_threads(1)
        steps.append(("torch", mods["bench_torch"].train_step(model, x, y, 1.2e-3)[0]))
    inner = {}
    for label, step in steps:
        for _ in range(3):
            step()
        t0 = clock()
        step()
        inner[label] = max(1, round(0.05 / max(clock() - t0, 1e-6)))
    times = {label: [] for label, _ in steps}
    for r in range(args.repeats):
        for label, step in (steps if r % 2 == 0 else steps[::-1]):
            t0 = clock()
            for _ in range(inner[label]):
                step()
            times[label].append((clock() - t0) / inner[label])
    ref = steps[-1][0]
    for label, _ in steps:
        ratio = statistics.median(a / b for a, b in zip(times[label], times[ref]))
        print(f"{args.model} {label:8s} median {1e3 * statistics.median(times[label]):8.2f} ms  "
              f"ratio to {ref} {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
