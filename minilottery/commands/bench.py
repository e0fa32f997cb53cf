"""``python -m minilottery bench``: training steps and the Conv2d layer, ours against PyTorch.

The cases are minilottery/bench/cases.py's, timed and measured by minilottery/bench/measure.py
against their peers (minilottery/bench/torch_peers.py, or our own dense step).

    python -m minilottery bench [--repeats 30] [--warmup 3] [--cases lenet,conv2]
"""
from minilottery import backend
from minilottery.bench.cases import CASES, DEEP_CASES, DEFAULT_CASES, LR, make_case
from minilottery.bench.measure import (_inner, _time, environment, format_table, grid_bytes, im2col_bytes, measure,
                                       mb, torch_peers)
from minilottery.errors import ConfigError
from minilottery.blas import set_blas_threads
from minilottery.nn.gridconv import BLOCK_BYTES
from minilottery.nn.models import build_model
from minilottery.rng import Streams


def add_arguments(parser):
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per case (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), metavar="CASE",
                        help=f"cases to time, space-separated like every list flag: {' '.join(CASES)} "
                             f"(default: {' '.join(DEFAULT_CASES)})")
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


def check(args):
    """Refuse, in one line, benchmark options that cannot be measured."""
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
    bt = None if args.no_torch else torch_peers()
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


def run(args):
    args.cases = ",".join(c for item in args.cases for c in item.split(","))   # (lenet,conv2 still accepted)
    check(args)
    if args.threads:
        set_blas_threads(args.threads)
    if args.stack:
        return run_stacks(args)
    rows, bt = measure(args)
    print(format_table(rows))
    print()
    print(environment(bt))
    deep = [c for c in args.cases.split(",") if c in DEEP_CASES]
    print(f"median of {args.repeats} repeats after {args.warmup} warm-up calls, batch {args.batch}"
          + "".join(f" ({c}: {DEEP_CASES[c]}, SGD momentum)" for c in deep) + f", mask density {args.density}; memory: "
          + ("CuPy pool total bytes" if backend.backend_name() == "cupy" else "tracemalloc peak"))
    conv6 = build_model("conv6", Streams.from_seed(0), dataset="cifar10")
    for what, sizes in (("classic im2col buffers (N, C·kh·kw, Ho·Wo)", im2col_bytes(conv6, args.batch)),
                        ("cached here instead: padded inputs", grid_bytes(conv6, args.batch))):
        print(f"Conv-6 / CIFAR at batch {args.batch}, float32, analytic, {what}: "
              + ", ".join(f"{n} {mb(b)}" for n, b in sizes)
              + f"; largest {mb(max(b for _, b in sizes))}, all layers {mb(sum(b for _, b in sizes))}")
    print(f"(the im2col rows themselves are gathered {mb(BLOCK_BYTES)} at a time)")
    return 0

