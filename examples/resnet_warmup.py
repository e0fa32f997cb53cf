"""Winning tickets in ResNet-20 need warmup (Frankle & Carbin 2019, §4): the comparison, in one command.

    python examples/resnet_warmup.py                       # quick protocol on Fashion-MNIST
    python examples/resnet_warmup.py --dataset cifar10     # the same on CIFAR-10, where you have it
    python examples/resnet_warmup.py --paper               # the paper's protocol (days on a CPU)

The paper's claim: at the standard learning rate (0.1) iterative magnitude pruning of the
CIFAR ResNet ("ResNet-18" there, ResNet-20 here) with reset to θ0 finds no winning tickets
(the tickets do no better than randomly reinitialised ones and fall below the dense
network); with linear learning-rate warmup (rate 0.03, warmed up over 20,000 of the 30,000
iterations) it does, down to Pm 11.8 %. This runs both IMP experiments:

  standard   SGD μ 0.9, lr 0.1, wd 1e-4, lr ÷10 after 2/3 and 5/6 of training, no warmup;
  warmup     the same at lr 0.03 with linear warmup over the first 2/3 of training;

each with the random-reinitialisation control at every level, global magnitude pruning of
the convolutions (1×1 shortcuts and the fc layer unpruned, as the paper), augmentation
(random crop with 4-pixel padding and horizontal flip), BatchNorm in eval mode for
validation and test. It prints a table of the early-stopping test accuracy per Pm for the
ticket and its control in both, and writes two experiment files (rerun the same command
after a crash or Ctrl-C: it continues at the first unfinished run).

Quick protocol (QUICK below; about 7 minutes with one worker on a quiet 2-core machine,
ten runs of 40-45 s each): the paper's
optimiser, rates, schedule shape (milestones at 2/3 and 5/6 of training), warmup fraction,
pruning and augmentation, shortened: width 1/4 (4/8/16 channels, 17K parameters), 200
iterations at batch 64 (the paper: 30,000 at 128), milestones 133 and 167, warmup 133, one
evaluation at the end (so the early-stopping iteration is the last), two levels of four 20 %
rounds each (Pm 41.0 % and 16.8 %), one trial; trained on a fixed 5,000-image subset of the
55,000 training images (the first 5,000 in the split's order), validated on the first 1,000
of the 5,000 validation images and tested on the first 2,000 of the 10,000 test images (the
time on such a machine is in evaluation). It is far too short for accuracies near the
network's ceiling: it checks the shape of the claim at a toy scale, no more.
Fashion-MNIST numbers are not comparable to the paper's CIFAR-10 numbers: only the shape
of the claim (tickets vs. controls, with and without warmup) can be checked on it.
"""
import os
import sys

from minilottery import config, defaults
from minilottery.commands import check_writable, executor_from_args, run_example
from minilottery.data import Splits
from minilottery.experiments.imp import IMPConfig, IMPExperiment
from minilottery.plan import DataRef
from minilottery.reports.imp import collect
from minilottery.store import ExperimentStore

SHARED = dict(model="resnet20", reinit=1, control_levels=(), trials=1)
QUICK = dict(width=0.25, iterations=200, batch_size=64, milestones=(133, 167), eval_every=200,
             rounds=2, fc_rate=1 - 0.8 ** 4, subset=(5_000, 1_000, 2_000))
PAPER = dict(width=1.0, iterations=30_000, batch_size=128, milestones=(20_000, 25_000), eval_every=100,
             rounds=12, fc_rate=0.2, subset=None)
VARIANTS = {"standard": lambda p: dict(lr=0.1, warmup=0),
            "warmup": lambda p: dict(lr=0.03, warmup=p["milestones"][0])}  # §4: 0.03, warmed up to 20K of 30K
DATASETS = ("fashion_mnist", "cifar10", "mnist")
OVERRIDABLE = ("rounds", "iterations", "seed")


def main(argv=None):
    return run_example(__doc__, own_flags, run, "base of the two experiment files "
                       "(default runs/resnet_warmup_{quick,paper}_DATASET; _standard.h5 and _warmup.h5 appended)",
                       argv)


def own_flags(p):
    p.add_argument("--paper", action="store_true", help="the paper's full protocol")
    p.add_argument("--dataset", choices=DATASETS, default="fashion_mnist", help="dataset (default: fashion_mnist)")
    p.add_argument("--only", choices=tuple(VARIANTS), default=None,
                   help="run one of the two experiments (the table shows whatever both files hold)")
    quick, paper = (protocol_configs(p)["standard"] for p in (False, True))
    config.add_flags(p, IMPConfig, only=OVERRIDABLE,
                     paper_defaults=defaults.example(IMPConfig, quick, paper, OVERRIDABLE))


def protocol_configs(paper, dataset="fashion_mnist", given=None):
    """{variant: IMPConfig} of the quick or the paper's protocol, ``given`` (flag values) applied."""
    proto = dict(PAPER if paper else QUICK)
    proto.pop("subset")
    return {name: IMPConfig.paper(**{**SHARED, "dataset": dataset, **proto, **extra(proto), **(given or {})})
            for name, extra in VARIANTS.items()}


def configs(args):
    """{variant: IMPConfig} of the chosen protocol, the command's flags applied."""
    return protocol_configs(args.paper, args.dataset, config.overrides(args, IMPConfig))


def subset(data, sizes):
    """The first n of each split (fixed, in the split's order): the quick protocol's data."""
    if sizes is None:
        return data
    return Splits(*((x[:n], y[:n]) for (x, y), n in zip((data.train, data.val, data.test), sizes)), name=data.name)


def run(args):
    cfgs = configs(args)
    base = args.out or os.path.join("runs", f"resnet_warmup_{'paper' if args.paper else 'quick'}_{args.dataset}")
    outs = {name: f"{base}_{name}.h5" for name in cfgs}
    for name, cfg in cfgs.items():                                 # every check before any file is made
        IMPExperiment.check(cfg)
        check_writable(outs[name], "experiment file")
    full = DataRef(args.dataset, args.data_dir, args.mirror)
    sizes = (PAPER if args.paper else QUICK)["subset"]
    ref = full if sizes is None else DataRef.inline_data(subset(full.load(), sizes))
    with executor_from_args(args) as executor:
        for name, cfg in cfgs.items():
            if args.only and name != args.only:
                continue
            print(f"{name}: {cfg}")
            with ExperimentStore(outs[name], cfg.to_dict()) as store:
                print(f"experiment file: {os.path.abspath(outs[name])}")
                IMPExperiment(cfg, store, ref).run(executor)
    print(table(outs))


def table(outs):
    """Early-stopping test accuracy (%) per Pm: ticket and reinitialised control, standard and warmup."""
    found = {name: collect(path) if os.path.exists(path) else {} for name, path in outs.items()}
    levels = sorted({lv for runs in found.values() for lv in runs.get("ticket", {})})
    head = "| Pm | " + " | ".join(f"{n} ticket | {n} reinit" for n in outs) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(outs))]
    for lv in levels:
        pm = next(r["ticket"][lv]["Pm"] for r in found.values() if lv in r.get("ticket", {}))
        cells = []
        for name in outs:
            for kind in ("ticket", "reinit"):
                row = found[name].get(kind, {}).get(lv) if (kind, lv) != ("reinit", 0) else None  # dense: no control
                cells.append(f"{100 * sum(row['acc']) / len(row['acc']):.2f}" if row else "–")
        lines.append(f"| {100 * pm:.1f}% | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
