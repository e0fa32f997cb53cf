"""``python -m minilottery imp``: an IMP experiment from the command line.

Defaults are the paper's protocol for the chosen model; rerunning the same
command continues an interrupted experiment.
"""
import os
from dataclasses import fields

from minilottery.data import load_dataset
from minilottery.lottery.imp import Experiment, IMPConfig
from minilottery.nn.models import MODELS
from minilottery.report import report
from minilottery.store import ExperimentStore

# flags whose default comes from the paper's protocol for the model
PROTOCOL_FIELDS = ("dataset", "iterations", "lr", "batch_size", "optimizer", "eval_every",
                   "conv_rate", "fc_rate", "output_rate")


def add_arguments(p):
    p.add_argument("--model", choices=MODELS, default="lenet_300_100")
    for f in fields(IMPConfig):
        if f.name in ("model",):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action="store_true", default=None)
        elif f.name == "control_levels":
            p.add_argument(flag, type=int, nargs="*", default=None, help="levels with controls (default: all)")
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type if isinstance(f.type, str) else f.type.__name__)
            p.add_argument(flag, type=typ, default=None,
                           help="default: the paper's" if f.name in PROTOCOL_FIELDS else f"default {f.default}")
    p.add_argument("--out", default=None, help="experiment file (default runs/MODEL_DATASET_imp.h5)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--mirror", default=None)
    p.add_argument("--quiet", action="store_true")


def config_from_args(args):
    given = {f.name: getattr(args, f.name) for f in fields(IMPConfig)
             if f.name != "model" and getattr(args, f.name, None) is not None}
    return IMPConfig.paper(args.model, **given)


def run_experiment(cfg, out, data_dir=None, mirror=None, progress=True, log=print):
    """Run or resume ``cfg`` into ``out``; print the report; return the table."""
    data = load_dataset(cfg.dataset, data_dir=data_dir, mirror=mirror)  # before any file is made
    store = ExperimentStore(out, cfg.to_dict())
    log(f"experiment file: {os.path.abspath(out)}")
    Experiment(cfg, store, data, progress=progress, log=log).run()
    return report(out, log=log)


def run(args):
    cfg = config_from_args(args)
    out = args.out or os.path.join("runs", f"{cfg.model}_{cfg.dataset}_imp.h5")
    run_experiment(cfg, out, args.data_dir, args.mirror, progress=not args.quiet)
