"""``python -m minilottery instability``: linear mode connectivity of networks and IMP subnetworks
rewound to iteration k (Frankle et al. 2020); resumable.

Levels above 0 take their masks from an IMP experiment: ``--imp FILE``, whose model, dataset,
training, seed and trials the analysis then takes; without it the command first runs (or
resumes) that IMP experiment, to the highest level asked, into OUT_imp.h5 with the same flags.
"""
import dataclasses
import os

from minilottery import config
from minilottery.commands import (add_experiment_arguments, executor_from_args, print_config, run_in_store,
                                  config_from_args as from_flags)
from minilottery.errors import ConfigError
from minilottery.experiments.instability import InstabilityConfig
from minilottery.train import TrainConfig

BESIDE_OUT = "OUT_imp.h5"   # the IMP file the command makes, named after the output once that is known
FROM_IMP = ("model", "dataset", "seed", "trials", "dropout") + TrainConfig.names()


def add_arguments(p):
    add_experiment_arguments(p, InstabilityConfig, ("dataset",) + TrainConfig.names(),
                             "experiment file (default runs/MODEL_DATASET_instability[-SETTINGS].h5: the settings that differ from the paper's)",
                             "write, per (level, k), the error curves and the instability to this JSON file")


def imp_settings(path, given, levels):
    """The IMP file's model, dataset, training, seed and trials, refusing flags that would contradict them."""
    from minilottery.store import ExperimentStore
    if not os.path.exists(path):
        raise ConfigError(f"--imp {path}: no such file")
    imp = ExperimentStore.read_config(path)
    if imp.get("kind", "imp") != "imp":
        raise ConfigError(f"--imp {path} holds a {imp.get('kind')!r} experiment, not an IMP one")
    clash = sorted(n for n in given if n in FROM_IMP)
    if clash:
        raise ConfigError(f"--{clash[0].replace('_', '-')} comes from the IMP file {path}; leave it out")
    if max(levels) > imp["rounds"]:
        raise ConfigError(f"--level {max(levels)}: the IMP file {path} has levels 0..{imp['rounds']}")
    return {"model": imp["model"], "dataset": imp["dataset"], "train": config.from_dict(TrainConfig, imp["train"]),
            "seed": imp["seed"], "trials": imp["trials"], "dropout": imp.get("dropout", 0.0)}


def config_from_args(args):
    """The analysis' config, and the IMP config to run first (or None; a ``--config`` file names its IMP file).
    When the IMP experiment runs first, the config's ``imp`` is BESIDE_OUT until ``run`` names the file."""
    if getattr(args, "config", None):
        return from_flags(args, InstabilityConfig), None
    given = config.overrides(args, InstabilityConfig)
    levels = tuple(given.get("level") or (0,))
    imp_cfg = None
    if max(levels) > 0 and not given.get("imp"):
        from minilottery.experiments.imp import IMPConfig
        flat = {n: v for n, v in given.items() if n in FROM_IMP}
        imp_cfg = IMPConfig.paper(flat.pop("model", "lenet_300_100"), rounds=max(levels), **flat)
        given["imp"] = BESIDE_OUT
    if given.get("imp"):
        if imp_cfg is None:
            given["imp"] = os.path.abspath(given["imp"])
            base = imp_settings(given["imp"], given, levels)
        else:
            base = {"model": imp_cfg.model, "dataset": imp_cfg.dataset, "train": imp_cfg.train,
                    "seed": imp_cfg.seed, "trials": imp_cfg.trials, "dropout": imp_cfg.dropout}
        given = {n: v for n, v in given.items() if n not in FROM_IMP}
        return config.build(InstabilityConfig, base, given), imp_cfg
    return InstabilityConfig.paper(given.pop("model", "lenet_300_100"), **given), None


def run(args):
    cfg, imp_cfg = config_from_args(args)
    out = args.out
    if out is None:                                # a name that carries the settings (the IMP file's aside)
        from minilottery import api, identity
        out = identity.default_out({**cfg.to_dict(), "imp": ""}, api.reference(cfg))
    if imp_cfg is not None:                        # the IMP experiment it runs first: OUT_imp.h5
        cfg = dataclasses.replace(cfg, imp=os.path.abspath(os.path.splitext(out)[0] + "_imp.h5"))
    if args.print_config:
        return print_config(cfg, out, args)
    with executor_from_args(args) as executor:
        if imp_cfg is not None:
            run_in_store(imp_cfg, cfg.imp, args.data_dir, args.mirror, executor=executor)
        run_in_store(cfg, out, args.data_dir, args.mirror, args.json, executor=executor)
