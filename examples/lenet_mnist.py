"""The Lottery Ticket Hypothesis on MNIST, in one command.

    python examples/lenet_mnist.py            # quick protocol, about 18 minutes on 2 CPU cores
    python examples/lenet_mnist.py --paper    # the paper's protocol (hours)

Iterative magnitude pruning of LeNet-300-100 (20% of each hidden layer and 10%
of the output layer per round), resetting the survivors to θ0 each round, with
the random-reinitialisation control. It prints progress, then a table of the
early-stopping iteration and test accuracy per Pm, writes the HDF5 experiment
file and a plot, and says where they are. Rerun the same command after a crash
or Ctrl-C: it continues at the first unfinished run.

The quick protocol (QUICK below) keeps the paper's optimiser, learning rate,
batch size, pruning rates, reset to θ0 and evaluation every 100 iterations,
and shortens the rest: 10,000 iterations per run instead of 50,000 (dense
LeNet reaches its early-stopping iteration at 2,400-5,300 here), two trials
instead of five, 15 rounds (down to Pm 3.6%), and the reinitialisation control
only at Pm 51.3%, 21.1%, 7.0% and 3.6% (levels 3, 7, 12, 15).

The runs go to one worker process per core (``--workers``): a trial's tickets
form a chain (each level's mask comes from the previous level's ticket), so
the two trials, and the controls beside them, are what runs side by side.
Results are bitwise the same for any number of workers.
"""
import os
import sys

from minilottery import config, defaults
from minilottery.commands import executor_from_args, run_example, run_in_store
from minilottery.experiments.imp import IMPConfig

# Shortened protocol: the paper's except where stated.
QUICK = dict(iterations=10_000, eval_every=100, rounds=15, trials=2, reinit=1,
             control_levels=(3, 7, 12, 15))
# Lottery Ticket paper, Figure 4: 50K iterations, 5 trials, down to Pm 1.9%.
PAPER = dict(iterations=50_000, eval_every=100, rounds=18, trials=5, reinit=1, control_levels=())


OVERRIDABLE = ("trials", "rounds", "iterations", "random_pruning", "seed")  # the command's own flags


def main(argv=None):
    return run_example(__doc__, own_flags, run, "experiment file (default runs/lenet_mnist_{quick,paper}.h5)",
                       argv)


def own_flags(p):
    p.add_argument("--paper", action="store_true", help="the paper's full protocol")
    config.add_flags(p, IMPConfig, only=OVERRIDABLE, paper_defaults=defaults.example(
        IMPConfig, IMPConfig.paper("lenet_300_100", **QUICK), IMPConfig.paper("lenet_300_100", **PAPER), OVERRIDABLE))


def run(args):
    protocol = {**(PAPER if args.paper else QUICK), **config.overrides(args, IMPConfig)}
    if args.rounds is not None and protocol["control_levels"]:   # () would mean every level
        kept = tuple(v for v in protocol["control_levels"] if v <= args.rounds)
        protocol["control_levels"] = kept or (args.rounds,)
    cfg = IMPConfig.paper("lenet_300_100", **protocol)
    out = args.out or os.path.join("runs", f"lenet_mnist_{'paper' if args.paper else 'quick'}.h5")
    print(f"{'paper' if args.paper else 'quick'} protocol: {cfg}")
    with executor_from_args(args) as executor:
        run_in_store(cfg, out, args.data_dir, args.mirror, executor=executor)
    print(f"results: {os.path.abspath(out)} (plot beside it: {os.path.splitext(out)[0]}.png)")
    print(f"table again: python -m minilottery report {out}")


if __name__ == "__main__":
    sys.exit(main())
