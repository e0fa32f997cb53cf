"""Speed benchmark: training steps and the Conv2d layer, ours against PyTorch.

Cases, on the active backend (numpy or cupy), batch 60:
  lenet     LeNet-300-100 train step: forward, softmax cross-entropy, backward, masked Adam
  conv2     Conv-2 train step on MNIST-shaped input (1, 28, 28)
  conv_fwd  Conv2d 64->64, 3x3, padding 1, 28x28: forward alone (training mode)
  conv_bwd  the same layer's backward alone (dx, dW, db)
  conv6     (opt-in) Conv-6 train step on CIFAR-shaped input (3, 32, 32)
  supermask (opt-in) LeNet learned-supermask step (Bernoulli sample, straight-through, SGD momentum
            on the scores), against OUR dense Adam step of the same model and batch
  edgepopup (opt-in) LeNet edge-popup step (top-k of |s|), against our dense Adam step likewise
  resnet20  (opt-in) ResNet-20 train step, batch 128 (its protocol's), (3, 32, 32), train-mode BN,
            SGD momentum 0.9 with weight decay 1e-4 (also the peer's)
  vgg19     (opt-in) VGG-19 train step likewise (batch 128, as the issue's bench; the paper trains at 64)
Where torch imports, the same work runs in PyTorch in the same process, interleaved
with ours repeat by repeat (the order alternates), with torch's thread count set to
numpy's BLAS thread count. "ratio" is the median of the per-repeat ratios ours/PyTorch.
Peak memory: on NumPy, tracemalloc's peak over one step (numpy reports its buffers to
tracemalloc; parameters and optimiser state allocated before the step are left out);
on CuPy, the memory pool's total bytes after one step run from a trimmed pool.

    python -m minilottery bench [--repeats 30] [--warmup 3] [--cases lenet,conv2]
"""
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np

from minilottery import backend
from minilottery.errors import ConfigError
from minilottery.blas import blas_threads, set_blas_threads
from minilottery.nn.conv import Conv2d
from minilottery.nn.gridconv import BLOCK_BYTES, Grid
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.models import build_model
from minilottery.lottery.edgepopup import EdgePopup
from minilottery.lottery.supermask import LearnedSupermask
from minilottery.nn.optim import Adam, make_optimizer
from minilottery.rng import Streams

CASES = ("lenet", "conv2", "conv_fwd", "conv_bwd", "conv6", "supermask", "edgepopup", "resnet20", "vgg19")
DEEP_CASES = {"resnet20": 128, "vgg19": 128}  # case: batch
SCORE_CASES = ("supermask", "edgepopup")   # their peer is our own dense step, not PyTorch
DEFAULT_CASES = CASES[:4]
LR = 1.2e-3  # LeNet's Adam learning rate in the paper; used for every case


def add_arguments(parser):
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per case (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES),
                        help=f"comma-separated subset of {','.join(CASES)} (default: all but conv6)")
    parser.add_argument("--batch", type=int, default=60, help="batch size (default 60)")
    parser.add_argument("--density", type=float, default=0.8,
                        help="fraction of weights kept by the random masks; 1 = no masks (default 0.8)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for numpy and torch (default: numpy's current count)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    parser.add_argument("--stack", type=int, nargs="+", default=None, metavar="R",
                        help="time R runs stacked into one network against the same R one by one, per "
                             "run, for each R given (cases lenet, conv2; minilottery/bench/stack.py)")
    return parser


# -- the cases: each returns (step, sync) for ours and a maker for the torch peer --------------

def _data(shape, batch, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(shape), dtype=np.float32)  # (N, C, H, W)
    return x, rng.integers(0, 10, size=batch)                            # labels (N,)


def _mask(model, density, seed=2):
    """Random masks keeping ``density`` of every weight (IMP-like sparsity), or none."""
    if density >= 1.0:
        return
    rng = np.random.default_rng(seed)
    model.set_masks({k: (rng.random(w.shape) < density).astype(np.float32)
                     for k, w in model.get_weights().items() if k.endswith(".W")})


def _train(name, dataset, args):
    model = build_model(name, Streams.from_seed(0), dataset=dataset)
    _mask(model, args.density)
    deep = name in DEEP_CASES
    x, labels = _data(model.input_shape, DEEP_CASES.get(name, args.batch))
    dx, dlabels = backend.asarray(x), backend.asarray(labels)
    opt = (make_optimizer("momentum", model.params(), lr=0.1, momentum=0.9, weight_decay=1e-4) if deep
           else Adam(model.params(), lr=LR))

    def step():
        loss, dlogits = softmax_cross_entropy(model.forward(dx, train=True), dlabels)
        model.backward(dlogits, input_grad=False)          # as torch: no gradient for the data
        opt.step(model.grads(), model.masks())

    def peer(bt):
        return bt.train_step(model, x, labels, LR, sgd=deep)
    return step, peer, model


def _conv(args, backward):
    layer = Conv2d(64, 64, 3, Streams.from_seed(0).init, padding=1)
    if args.density < 1.0:
        layer.set_mask((np.random.default_rng(2).random(layer.params["W"].shape) < args.density)
                       .astype(np.float32))
    x, _ = _data((64, 28, 28), args.batch)
    dy = np.random.default_rng(3).standard_normal((args.batch, 64, 28, 28), dtype=np.float32)
    dx, ddy = backend.asarray(x), backend.asarray(dy)
    layer.forward(dx, train=True)
    step = (lambda: layer.backward(ddy)) if backward else (lambda: layer.forward(dx, train=True))

    def peer(bt):
        return bt.conv_backward(layer, x, dy) if backward else bt.conv_forward(layer, x)
    return step, peer, None


def _scores(case, args):
    """A score-trained LeNet step; its peer is our dense Adam step on the same model and batch."""
    model = build_model("lenet_300_100", Streams.from_seed(0))
    rngs = Streams.from_seed(0)
    net = LearnedSupermask(model, rngs.mask) if case == "supermask" else EdgePopup(model, 0.5, rngs.mask)
    opt = make_optimizer("momentum", net.params(), lr=100.0 if case == "supermask" else 0.1)
    x, labels = _data(model.input_shape, args.batch)
    dx, dlabels = backend.asarray(x), backend.asarray(labels)

    def step():
        loss, dlogits = softmax_cross_entropy(net.forward(dx, train=True), dlabels)
        net.backward(dlogits, input_grad=False)
        opt.step(net.grads())
    dense = _train("lenet_300_100", "mnist", args)[0]
    return step, lambda bt: (dense, backend.synchronize), None


def make_case(case, args):
    if case in SCORE_CASES:
        return _scores(case, args)
    if case == "lenet":
        return _train("lenet_300_100", "mnist", args)
    if case == "conv2":
        return _train("conv2", "mnist", args)
    if case == "conv6":
        return _train("conv6", "cifar10", args)
    if case in DEEP_CASES:
        return _train(case, "cifar10", args)
    if case in ("conv_fwd", "conv_bwd"):
        return _conv(args, backward=case == "conv_bwd")
    raise ValueError(f"unknown case {case!r}; choose from {CASES}")


# -- timing and memory ----------------------------------------------------------------------

def _time(step, sync, inner):
    """Seconds per call, averaged over ``inner`` calls."""
    sync()
    t0 = time.perf_counter()
    for _ in range(inner):
        step()
    sync()
    return (time.perf_counter() - t0) / inner


def _inner(step, sync, target=0.05):
    """Calls per repeat so that one repeat lasts about ``target`` seconds."""
    return max(1, min(100, round(target / max(_time(step, sync, 1), 1e-6))))


def peak_bytes(step):
    """Peak bytes held during one call: tracemalloc on NumPy, the pool on CuPy."""
    backend.synchronize()
    if backend.backend_name() == "cupy":
        pool = backend.get_backend().get_default_memory_pool()
        pool.free_all_blocks()
        step()
        backend.synchronize()
        return int(pool.total_bytes())
    tracemalloc.start()
    try:
        step()                         # so that every cached array is a traced one
        tracemalloc.reset_peak()
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _convs(model, batch):
    """(name, layer, its input shape (N, C, H, W)) for every Conv2d of a model."""
    out, shape = [], model.input_shape
    for name, layer in model.layers:
        if isinstance(layer, Conv2d):
            out.append((name, layer, (batch,) + tuple(shape)))
        shape = layer.output_shape(shape)
    return out


def im2col_bytes(model, batch, itemsize=4):
    """Analytic im2col buffers of a model: [(layer, bytes)], one (N, C·kh·kw, Ho·Wo) per conv."""
    out = []
    for name, layer, (n, c, h, w) in _convs(model, batch):
        ho, wo = layer.output_shape((c, h, w))[1:]
        out.append((name, n * c * layer.k[0] * layer.k[1] * ho * wo * itemsize))
    return out


def grid_bytes(model, batch, itemsize=4):
    """What each Conv2d caches for its backward here: the padded input rows (N·Hp·Wp + lead, C)."""
    return [(name, (g.rows + g.lead) * g.c * itemsize)
            for name, layer, shape in _convs(model, batch) for g in [Grid(shape, layer.k, layer.s, layer.p)]]


def measure(args):
    """Run the cases; returns a list of row dicts (times in seconds, memory in bytes)."""
    bt = None
    if not args.no_torch:
        try:
            from minilottery import bench_torch as bt
            bt.torch.set_num_threads(blas_threads() or os.cpu_count())
        except ImportError:
            bt = None
    rows = []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        ours, peer, _ = make_case(case, args)
        sync = backend.synchronize
        theirs, tsync = peer(bt) if (bt is not None or case in SCORE_CASES) else (None, None)
        for _ in range(args.warmup):
            ours()
            if theirs:
                theirs()
        n_ours = _inner(ours, sync)
        n_theirs = _inner(theirs, tsync) if theirs else 0
        t_ours, t_theirs = [], []
        for r in range(args.repeats):   # interleaved; who goes first alternates
            order = [(ours, sync, n_ours, t_ours), (theirs, tsync, n_theirs, t_theirs)]
            for fn, sy, n, acc in (order if r % 2 == 0 else order[::-1]):
                if fn is not None:
                    acc.append(_time(fn, sy, n))
        row = {"case": case, "ours": statistics.median(t_ours), "torch": None, "ratio": None,
               "peak": peak_bytes(ours),
               "torch_peak": bt.peak_bytes(theirs, tsync) if theirs and case not in SCORE_CASES else None}
        if t_theirs:
            row["torch"] = statistics.median(t_theirs)
            row["ratio"] = statistics.median(a / b for a, b in zip(t_ours, t_theirs))
        rows.append(row)
    return rows, bt


def _mb(b):
    return "" if b is None else f"{b / 2**20:.1f} MB"


def format_table(rows):
    lines = ["| case | ours ms | PyTorch ms | ratio ours/PyTorch | peak memory (ours) |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        torch_ms = "n/a" if r["torch"] is None else f"{r['torch'] * 1e3:.2f}"
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
        mem = _mb(r["peak"]) + (f" (torch {_mb(r['torch_peak'])})" if r["torch_peak"] else "")
        case = r["case"] + (" (peer: our dense Adam step)" if r["case"] in SCORE_CASES else "")
        lines.append(f"| {case} | {r['ours'] * 1e3:.2f} | {torch_ms} | {ratio} | {mem} |")
    return "\n".join(lines)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def environment(bt):
    torch_v = "not installed" if bt is None else (f"{bt.torch.__version__} on {bt.device()}, "
                                                  f"{bt.torch.get_num_threads()} threads")
    return (f"machine: {_cpu_model()} ({platform.system()} {platform.machine()}), "
            f"{os.cpu_count()} CPUs; python {platform.python_version()}; numpy {np.__version__} "
            f"(BLAS threads {blas_threads()}); backend {backend.backend_name()}; torch {torch_v}")


def check(args):
    """Refuse, in one line, benchmark options that cannot be measured."""
    from minilottery.errors import ConfigError
    for name, least in (("repeats", 1), ("warmup", 0), ("batch", 1), ("threads", 1)):
        v = getattr(args, name)
        if v is not None and v < least:
            kind = "positive" if least else "non-negative"
            raise ConfigError(f"--{name} must be a {kind} integer, got {v}")
    if not 0 < args.density <= 1:
        raise ConfigError(f"--density must be in (0, 1], got {args.density}")
    unknown = [c for c in args.cases.split(",") if c not in CASES]
    if unknown:
        raise ConfigError(f"unknown --cases {unknown[0]!r}; choose from {','.join(CASES)}")


def run_stacks(args):
    from minilottery.bench.stack import format_stack_table, measure_stacks
    if any(r < 1 for r in args.stack):
        raise ConfigError(f"--stack takes run counts of at least 1, got {args.stack}")
    bt = None if args.no_torch else _torch()
    rows = []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        peer = make_case(case, args)[1](bt)[0] if bt is not None else None
        rows += measure_stacks(case, args.stack, args, _time, _inner, LR, peer)
    print(format_stack_table(rows))
    print()
    print(environment(bt))
    print(f"median of {args.repeats} repeats after {args.warmup} warm-up calls, batch {args.batch} per run, "
          f"mask density {args.density}")
    return 0


def _torch():
    try:
        from minilottery import bench_torch as bt
    except ImportError:
        return None
    bt.torch.set_num_threads(blas_threads() or os.cpu_count())
    return bt


def run(args):
    check(args)
    if args.threads:
        set_blas_threads(args.threads)
    if args.stack:
        return run_stacks(args)
    rows, bt = measure(args)
    print(format_table(rows))
    print()
    print(environment(bt))
    print(f"median of {args.repeats} repeats after {args.warmup} warm-up calls, batch {args.batch}, "
          f"mask density {args.density}; memory: "
          + ("CuPy pool total bytes" if backend.backend_name() == "cupy" else "tracemalloc peak"))
    conv6 = build_model("conv6", Streams.from_seed(0), dataset="cifar10")
    for what, sizes in (("classic im2col buffers (N, C·kh·kw, Ho·Wo)", im2col_bytes(conv6, args.batch)),
                        ("cached here instead: padded inputs", grid_bytes(conv6, args.batch))):
        print(f"Conv-6 / CIFAR at batch {args.batch}, float32, analytic, {what}: "
              + ", ".join(f"{n} {_mb(b)}" for n, b in sizes)
              + f"; largest {_mb(max(b for _, b in sizes))}, all layers {_mb(sum(b for _, b in sizes))}")
    print(f"(the im2col rows themselves are gathered {_mb(BLOCK_BYTES)} at a time)")
    return 0

