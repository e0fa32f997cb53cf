"""The follow-ups on LeNet-300-100 / MNIST: instability, rewinding variants, pruning at initialisation.

    python examples/followups_lenet.py                   # quick protocol (README: its wall time)
    python examples/followups_lenet.py --only instability
    python examples/followups_lenet.py --paper           # the papers' protocols (days on a CPU)

Four parts, each an experiment file of its own in the output folder (default runs/followups_lenet_quick):
  imp            IMP as in the Lottery Ticket paper (θ0 resets), with the random-reinit and
                 random-pruning controls at the levels the other parts compare at;
  instability    Frankle et al. 2020: the dense network (level 0) and IMP's subnetworks, rewound
                 to iteration k, trained twice with different data orders; the test error along
                 the line between the two and its rise (instability) per k;
  retrain        Renda et al. 2020: IMP retraining by weight rewinding (θ0), learning-rate
                 rewinding and fine-tuning, the same iterations per level, under a cosine-decayed
                 rate (under the LTH's constant rate learning-rate rewinding and fine-tuning are
                 the same run; fine-tuning runs at the schedule's last rate);
  prune_at_init  Frankle et al. 2021: SNIP, GraSP, SynFlow, magnitude at init and random, at the
                 densities of the compared IMP levels, with the three sanity checks (shuffle within
                 layers, reinitialise, invert the scores), against IMP and its controls there.
It prints each part's table and the comparisons, writes figures and a JSON per part, and
says where they are. Rerun the same command after a crash: it continues where it stopped.

The quick protocol (QUICK) keeps LeNet-300-100, Adam 1.2e-3, batch 60 and one trial, and
shortens the rest for a shared 2-core CPU: 1,000 iterations per run instead of 50,000,
evaluation every 500 instead of 100 (the tables give the final test accuracy), IMP at 50% of
each hidden layer and 25% of the output layer per round for 3 rounds (Pm 12.6% at level 3)
instead of 20% / 10%, rewind iterations k ∈ {0, 100}, the training error along the path on
the first 10,000 training examples, the retraining variants over 2 rounds (Pm 25.1%).
"""
import os
import sys
import time

import numpy as np

from minilottery import config, layout
from minilottery.commands import executor_from_args, run_example, run_in_store
from minilottery.experiments.imp import IMPConfig, check_plan
from minilottery.experiments.instability import InstabilityConfig
from minilottery.experiments.prune_at_init import PruneAtInitConfig
from minilottery.store import ExperimentStore

PARTS = ("imp", "instability", "retrain", "prune_at_init")
QUICK = dict(iterations=1_000, eval_every=500, rounds=3, fc_rate=0.5, output_rate=0.25, levels=(3,),
             rewind=(0, 100), train_examples=10_000, retrain_rounds=2)
# the papers': the LTH protocol (50K iterations, 20% / 10% per round) to Pm 2.9% (level 16)
PAPER = dict(iterations=50_000, eval_every=100, rounds=16, fc_rate=0.2, output_rate=0.1, levels=(7, 16),
             rewind=(0, 100, 500, 2_000), train_examples=None, retrain_rounds=16)


def main(argv=None):
    return run_example(__doc__, own_flags, run, "folder for the experiment files "
                       "(default runs/followups_lenet_{quick,paper})", argv)


def own_flags(p):
    p.add_argument("--paper", action="store_true", help="the papers' protocols")
    p.add_argument("--only", choices=PARTS, action="append", help="run only this part (repeatable; "
                   "instability, retrain and prune_at_init read the imp part's file, run first if needed)")
    p.add_argument("--seed", type=int, default=0, help="seed of θ0 and data order (default 0)")


def configs(p, seed):
    """Every part's config(s), all checked before any run."""
    imp = IMPConfig.paper("lenet_300_100", iterations=p["iterations"], eval_every=p["eval_every"],
                          rounds=p["rounds"], fc_rate=p["fc_rate"], output_rate=p["output_rate"], reinit=1,
                          random_pruning=True, control_levels=p["levels"], seed=seed)
    check_plan(imp)
    retrain = {r: IMPConfig.paper("lenet_300_100", iterations=p["iterations"], eval_every=p["eval_every"],
                                  rounds=p["retrain_rounds"], fc_rate=p["fc_rate"], output_rate=p["output_rate"],
                                  reinit=0, schedule="cosine", retrain=r, seed=seed)
               for r in ("rewind", "lr_rewind", "finetune")}
    return imp, retrain


def pm_of(imp_cfg, level):
    plan = check_plan(imp_cfg)
    return sum(plan[level].values()) / sum(plan[0].values())


def run(args):
    p = PAPER if args.paper else QUICK
    protocol = "paper" if args.paper else "quick"
    folder = args.out or os.path.join("runs", f"followups_lenet_{protocol}")
    parts = tuple(args.only or PARTS)
    imp, retrain = configs(p, args.seed)
    path = {part: os.path.join(folder, f"{part}.h5") for part in PARTS}
    instability = InstabilityConfig(model=imp.model, dataset=imp.dataset, train=imp.train, seed=args.seed,
                                    rewind_iteration=p["rewind"], level=(0,) + p["levels"],
                                    imp=os.path.abspath(path["imp"]), train_examples=p["train_examples"])
    pai = {what: PruneAtInitConfig.paper("lenet_300_100", iterations=p["iterations"], eval_every=p["eval_every"],
                                         method=methods, ablation=ablations, seed=args.seed,
                                         sparsity=tuple(round(1 - pm_of(imp, lv), 4) for lv in p["levels"]))
           for what, methods, ablations in (("scores", ("snip", "grasp", "synflow", "magnitude"),
                                             ("none", "shuffle", "reinit", "invert")),
                                            ("random", ("random",), ("none",)))}
    times, started = {}, time.perf_counter()
    with executor_from_args(args) as executor:
        def part(name, cfg, out):
            print(f"\n# {name} ({protocol} protocol)")
            t = time.perf_counter()
            run_in_store(cfg, out, args.data_dir, args.mirror, os.path.splitext(out)[0] + ".json", executor=executor)
            times[name] = times.get(name, 0.0) + time.perf_counter() - t

        if parts != ("retrain",):
            part("imp", imp, path["imp"])                  # the others read it
        if "instability" in parts:
            part("instability", instability, path["instability"])
        if "retrain" in parts:
            for r, cfg in retrain.items():
                part("retrain", cfg, os.path.join(folder, f"retrain_{r}.h5"))
            print_retrain(folder, retrain)
        if "prune_at_init" in parts:
            for what, cfg in pai.items():
                part("prune_at_init", cfg, os.path.join(folder, f"prune_at_init_{what}.h5"))
            print_pai_vs_imp(folder, path["imp"], p["levels"])
    total = time.perf_counter() - started
    print("\nwall time: " + ", ".join(f"{n} {t / 60:.1f} min" for n, t in times.items())
          + f"; total {total / 60:.1f} min with {executor.workers} worker(s)")
    print(f"results in {os.path.abspath(folder)}; tables again: python -m minilottery report FILE")


def imp_rows(path, kinds=("ticket", "reinit", "random")):
    """{(kind, level): (Pm, final test acc, early-stop test acc)} of trial 0 of an IMP file."""
    store, out = ExperimentStore.open_readonly(path), {}
    for level in (int(v) for v in store.groups(layout.levels(0))):
        for kind, name in (("ticket", "ticket"), ("reinit", "reinit_0"), ("random", "random_0")):
            g = layout.run(0, level, name)
            if kind in kinds and store.done(g):
                a = store.attrs(g)
                out[kind, level] = (float(a["Pm"]), float(a["final_test_acc"]), float(a["early_stop_test_acc"]))
    return out


def print_retrain(folder, cfgs):
    rows = {r: imp_rows(os.path.join(folder, f"retrain_{r}.h5"), ("ticket",)) for r in cfgs}
    levels = sorted({lv for r in rows.values() for _, lv in r})
    print("\n## retraining after pruning (final test accuracy %, the same iterations per level)")
    print("| level | Pm % | weight rewinding (θ0) | learning-rate rewinding | fine-tuning |")
    print("|---|---|---|---|---|")
    for lv in levels:
        pm = rows["rewind"].get(("ticket", lv), (np.nan,))[0]
        cells = [f"{100 * rows[r][('ticket', lv)][1]:.2f}" if ("ticket", lv) in rows[r] else "–" for r in cfgs]
        print(f"| {lv} | {100 * pm:.1f} | " + " | ".join(cells) + " |")


def print_pai_vs_imp(folder, imp_path, levels):
    from minilottery.experiments.prune_at_init import summary
    imp = imp_rows(imp_path)
    rows = [r for what in ("scores", "random")
            for r in summary(ExperimentStore.open_readonly(os.path.join(folder, f"prune_at_init_{what}.h5")))]
    dens = sorted({r["density"] for r in rows}, reverse=True)
    print("\n## pruning at initialisation against IMP (final test accuracy %, same density)")
    print("| method | " + " | ".join(f"{100 * d:.1f}% kept" for d in dens) + " |")
    print("|---|" + "---|" * len(dens))
    for kind, label in (("ticket", "IMP (θ0 reset)"), ("reinit", "IMP mask, reinitialised"),
                        ("random", "IMP's per-layer counts, random positions")):
        print(f"| {label} | " + " | ".join(f"{100 * imp[kind, lv][1]:.2f}" if (kind, lv) in imp else "–"
                                           for lv in levels) + " |")
    for key in dict.fromkeys((r["method"], r["ablation"]) for r in rows):
        by_d = {r["density"]: r["test_acc"] for r in rows if (r["method"], r["ablation"]) == key}
        print(f"| {key[0]}{'' if key[1] == 'none' else ', ' + key[1]} | "
              + " | ".join(f"{100 * by_d[d]:.2f}" if d in by_d else "–" for d in dens) + " |")


if __name__ == "__main__":
    sys.exit(main())
