"""Deconstructing Lottery Tickets on MNIST: the paper's three comparisons, in one command.

    python examples/deconstructing_mnist.py                 # quick protocol, about 13 minutes on 2 CPU cores
    python examples/deconstructing_mnist.py --only mask0    # one comparison
    python examples/deconstructing_mnist.py --paper         # the paper's protocol (days on a CPU)

LeNet-300-100, iterative pruning, the LTH's choices (criterion large_final, kept
weights rewound to θ0, pruned weights frozen at 0) except the one a comparison
varies: (a) the mask criterion, (b) the mask-1 action, (c) the mask-0 action.
Every variant shares θ0 and the dense run; a variant two comparisons name runs
once. It prints a table per comparison (early-stopping iteration and test
accuracy there, per Pm), writes one experiment file and a figure per
comparison, and says where they are. Rerun the same command after a crash or
Ctrl-C: it continues at the first unfinished run.

The quick protocol (QUICK below) keeps the paper's network, optimiser (Adam
1.2e-3), batch size (60) and one trial, and shortens the rest: 2,500 training
iterations per run instead of 50,000, evaluation every 250 iterations instead
of 100, and 7 rounds at 40% per round of each hidden layer and 20% of the
output layer instead of 20% / 10% (so Pm falls to 2.9% in 7 rounds instead of
18): each variant costs 8 runs of 2,500 iterations.
"""
import os
import sys

from minilottery import config, defaults
from minilottery.commands import executor_from_args, run_example, run_in_store
from minilottery.experiments.deconstructing import COMPARISONS, DeconstructingConfig
from minilottery.experiments.imp import IMPConfig

# Shortened protocol: the paper's except where stated.
QUICK = dict(iterations=2_500, eval_every=250, rounds=7, fc_rate=0.4, output_rate=0.2, trials=1, reinit=0)
# The paper's: the Lottery Ticket protocol (50K iterations, 20% / 10% per round), down to Pm 1.9%.
PAPER = dict(iterations=50_000, eval_every=100, rounds=18, trials=5, reinit=0)
OVERRIDABLE = ("trials", "rounds", "iterations", "seed")


def main(argv=None):
    out_help = "experiment file (default runs/deconstructing_mnist_{quick,paper}[_ONLY].h5)"
    return run_example(__doc__, own_flags, run, out_help, argv)


def own_flags(p):
    p.add_argument("--paper", action="store_true", help="the paper's protocol")
    p.add_argument("--only", choices=tuple(COMPARISONS), action="append",
                   help="run only this comparison (repeatable; default: all three)")
    config.add_flags(p, IMPConfig, only=OVERRIDABLE, paper_defaults=defaults.example(
        IMPConfig, IMPConfig.paper("lenet_300_100", **QUICK), IMPConfig.paper("lenet_300_100", **PAPER), OVERRIDABLE))


def run(args):
    protocol = {**(PAPER if args.paper else QUICK), **config.overrides(args, IMPConfig)}
    comparisons = tuple(args.only or COMPARISONS)
    cfg = DeconstructingConfig.paper("lenet_300_100", comparisons, **protocol)
    name = f"deconstructing_mnist_{'paper' if args.paper else 'quick'}"
    if args.only:
        name += "_" + "_".join(comparisons)
    out = args.out or os.path.join("runs", name + ".h5")
    with executor_from_args(args) as executor:
        print(f"{'paper' if args.paper else 'quick'} protocol, {len(cfg.plan())} variants, "
              f"{executor.workers} worker(s): {cfg.imp}")
        run_in_store(cfg, out, args.data_dir, args.mirror, executor=executor)
    print(f"results: {os.path.abspath(out)}")
    print(f"tables again: python -m minilottery report {out}")


if __name__ == "__main__":
    sys.exit(main())
