"""Lottery Jackpots on MNIST: masks found in a pre-trained network without training a weight.

    python examples/jackpot_mnist.py              # quick protocol, about 23 minutes on 2 CPU cores
    python examples/jackpot_mnist.py --no-conv2   # LeNet-300-100 only (about 4 minutes)
    python examples/jackpot_mnist.py --paper      # the released code's search, the LTH pre-training (hours)

Two experiments, each an experiment file of its own:
  LeNet-300-100 / MNIST at 90%, 95% and 98% sparsity;
  Conv-2 / MNIST at 90% sparsity (skip it with --no-conv2).
For each: pre-train the network (the LTH protocol, weights chosen on validation), then per sparsity
  magnitude   prune by |w| to the jackpot's per-layer budgets (one global threshold, classifier
              dense), no training: the search's start;
  jackpot     train scores (1 for kept, 0.99 for pruned) with the released code's swap rule;
  edge-popup  the same search from random scores, at the same per-layer counts, same weights;
  fine-tuned  the magnitude-pruned network's kept weights trained (our baseline protocol);
and the overlap of the jackpot mask with magnitude, random, large_init, movement and edge-popup
masks. It prints a table per experiment (accuracies, iterations, the search cost: when the
jackpot's test accuracy first reaches edge-popup's final one), the overlap table, and writes a
figure of test accuracy against search iterations. Rerun the same command after a crash or Ctrl-C.

The quick protocol (QUICK below) keeps every optimiser, learning rate, batch size and score rule,
and shortens:
  LeNet   pre-training 5,000 iterations instead of 50,000 (dense LeNet reaches its minimum
          validation loss at 2,400-5,600 here); the search (30 epochs, 6,446 iterations at batch
          256, evaluated once per epoch) and fine-tuning (as many iterations) are the full ones.
  Conv-2  a Conv-2 step at batch 256 takes about 1 s on one core here (``python -m minilottery
          bench --cases conv2 --batch 256``) and one evaluation of the 15,000 validation and test
          images about 20 s, so: pre-training 2,000 iterations instead of 20,000, evaluated every
          500; the search and fine-tuning 600 iterations instead of 6,446 (2.8 epochs of the
          search's batches), evaluated every 150. A short search, not the paper's.
The runs go to one worker process per core (``--workers``); results are bitwise the same for any
number of workers.
"""
import os
import sys
from dataclasses import replace

from minilottery.commands import executor_from_args, run_example, run_in_store
from minilottery.experiments.jackpot import JackpotConfig

SPARSITIES = {"lenet_300_100": (0.9, 0.95, 0.98), "conv2": (0.9,)}
# Shortened protocol: the defaults of JackpotConfig.paper except these TrainConfig fields.
QUICK = {"lenet_300_100": dict(pretrain=dict(iterations=5_000)),
         "conv2": dict(pretrain=dict(iterations=2_000, eval_every=500), search=dict(iterations=600, eval_every=150),
                       finetune=dict(iterations=600, eval_every=150))}


def make_config(model, paper, seed, pretrained=None):
    """The experiment of ``model`` on MNIST under the quick or the paper protocol."""
    cfg = JackpotConfig.paper(model, dataset="mnist", sparsities=SPARSITIES[model], seed=seed, pretrained=pretrained)
    if paper:
        return cfg
    return replace(cfg, **{part: replace(getattr(cfg, part), **fields) for part, fields in QUICK[model].items()})


def main(argv=None):
    return run_example(__doc__, own_flags, run, "folder for the experiment files (default runs/)",
                       argv)


def own_flags(p):
    p.add_argument("--paper", action="store_true", help="the released code's search and the LTH pre-training")
    p.add_argument("--no-conv2", action="store_true", help="LeNet-300-100 only")
    p.add_argument("--pretrained", default=None,
                   help="IMP experiment file of LeNet-300-100 on MNIST whose trial-0 dense run is the LeNet "
                        "pre-trained network (e.g. from examples/lenet_mnist.py; default: pre-train here)")
    p.add_argument("--seed", type=int, default=0, help="seed of θ0, data order, scores and random masks (default 0)")


def run(args):
    protocol = "paper" if args.paper else "quick"
    models = ("lenet_300_100",) + (() if args.no_conv2 else ("conv2",))
    configs = [make_config(m, args.paper, args.seed, args.pretrained if m == "lenet_300_100" else None)
               for m in models]                                         # all checked before any run
    folder = args.out or "runs"                                  # the stores make it
    with executor_from_args(args) as executor:
        for cfg in configs:
            out = os.path.join(folder, f"jackpot_mnist_{cfg.model}_{protocol}.h5")
            print(f"\n# {cfg.model} / MNIST, sparsity {', '.join(f'{100 * s:g}%' for s in cfg.sparsities)} "
                  f"({protocol} protocol)")
            run_in_store(cfg, out, args.data_dir, args.mirror, os.path.splitext(out)[0] + ".json",
                         executor=executor)
    print(f"\nresults in {os.path.abspath(folder)}; tables again: python -m minilottery report FILE")


if __name__ == "__main__":
    sys.exit(main())
