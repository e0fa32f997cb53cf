"""Supermasks on MNIST: masks alone, over weights that never train, in one command.

    python examples/supermask_mnist.py             # quick protocol, about 3 minutes on 2 CPU cores
    python examples/supermask_mnist.py --paper     # the papers' protocols (days on a CPU)
    python examples/supermask_mnist.py --only learned

LeNet-300-100, three methods, each an experiment file of its own:
  at_init    the one-shot large_final_same_sign mask of a trained dense network, applied to
             θ0 or to the signed constant α·sign(θ0), no training at all (Zhou et al.);
  learned    Bernoulli(σ(m)) masks trained through the straight-through gradient, over θ0
             or the signed constant, with and without dynamic weight rescaling (Zhou et al.);
  edgepopup  top-k of |s| over Kaiming normal or signed Kaiming constant weights,
             k ∈ {10, 30, 50, 70, 90}% (Ramanujan et al.).
It prints a table per method and writes a figure of test accuracy against the
fraction of weights kept. Rerun the same command to continue after a crash.

The quick protocol (QUICK below) keeps each paper's optimiser, learning rate,
batch size, score initialisation and evaluation, and shortens training:
  at_init    the dense run trains 5,000 iterations instead of 50,000 (dense LeNet
             reaches its early-stopping iteration at 2,400-5,300 here);
  learned    10,000 iterations (45 epochs at batch 250) instead of 2,000 epochs;
  edgepopup  4 epochs (3,438 iterations at batch 64) instead of 14.
"""
import os
import sys

from minilottery.commands import executor_from_args, run_example, run_in_store
from minilottery.experiments.supermask import METHODS, SupermaskConfig

QUICK = {"at_init": dict(iterations=5_000), "learned": dict(iterations=10_000),
         "edgepopup": dict(iterations=3_438)}


def main(argv=None):
    return run_example(__doc__, own_flags, run, "folder for the experiment files (default runs/)",
                       argv)


def own_flags(p):
    p.add_argument("--paper", action="store_true", help="the papers' protocols")
    p.add_argument("--only", choices=METHODS, action="append", help="run only this method (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of θ0, data order and masks (default 0)")


def run(args):
    folder = args.out or "runs"                                  # the stores make it
    protocol = "paper" if args.paper else "quick"
    configs = [SupermaskConfig.paper(m, "lenet_300_100", seed=args.seed, **({} if args.paper else QUICK[m]))
               for m in (args.only or METHODS)]                         # all checked before any run
    with executor_from_args(args) as executor:
        for cfg in configs:
            out = os.path.join(folder, f"supermask_mnist_{cfg.method}_{protocol}.h5")
            print(f"\n# {cfg.method} ({protocol} protocol)")
            run_in_store(cfg, out, args.data_dir, args.mirror, os.path.splitext(out)[0] + ".json",
                         executor=executor)
    print(f"\nresults in {os.path.abspath(folder)}; tables again: python -m minilottery report FILE")


if __name__ == "__main__":
    sys.exit(main())
