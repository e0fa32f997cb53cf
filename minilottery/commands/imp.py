"""``python -m minilottery imp``: an IMP experiment from the command line.

Defaults are the paper's protocol for the chosen model; rerunning the same
command continues an interrupted experiment. Every check (options, the whole
pruning plan, the output path, the dataset, the backend) happens before the
experiment file is made.
"""
import os

from minilottery import config
from minilottery.commands import add_executor_arguments, add_io_arguments, check_writable, executor_from_args
from minilottery.plan import DataRef
from minilottery.experiments.imp import KIND, IMPConfig, IMPExperiment, check_plan
from minilottery.reports.imp import report
from minilottery.store import ExperimentStore
from minilottery.train import TrainConfig

# flags whose default comes from the paper's protocol for the model
PROTOCOL_FIELDS = ("dataset", "conv_rate", "fc_rate", "output_rate") + TrainConfig.names()


def add_arguments(p):
    config.add_flags(p, IMPConfig, paper_defaults=PROTOCOL_FIELDS)
    add_io_arguments(p, out_help="experiment file (default runs/MODEL_DATASET_imp.h5)")
    add_executor_arguments(p)


def config_from_args(args):
    given = config.overrides(args, IMPConfig)
    return IMPConfig.paper(given.pop("model", "lenet_300_100"), **given)


def run_experiment(cfg, out, data_dir=None, mirror=None, progress=True, log=print, executor=None):
    """Run or resume ``cfg`` into ``out`` (on ``executor``, default serial); print the report; return the table."""
    check_plan(cfg)
    check_writable(out, "experiment file")
    ref = DataRef(cfg.dataset, data_dir, mirror)
    data = ref.load()                                                  # before any file is made
    with ExperimentStore(out, {"kind": KIND, **cfg.to_dict()}) as store:
        log(f"experiment file: {os.path.abspath(out)}")
        exp = IMPExperiment(cfg, store, data, progress=progress and getattr(executor, "workers", 1) == 1,
                         log=log, data_ref=ref)
        exp.run(executor)
    return report(out, log=log)


def run(args):
    cfg = config_from_args(args)
    out = args.out or os.path.join("runs", f"{cfg.model}_{cfg.dataset}_imp.h5")
    with executor_from_args(args) as executor:
        run_experiment(cfg, out, args.data_dir, args.mirror, progress=not args.quiet, executor=executor)
