"""``python -m minilottery prune-at-init``: SNIP, GraSP, SynFlow, magnitude and random pruning at
initialisation, with the sanity checks (shuffle, reinit, invert); resumable.

Training defaults are the model's protocol; every check happens before the file is made.
"""
import os

from minilottery import config
from minilottery.commands import add_executor_arguments, add_io_arguments, executor_from_args, run_in_store
from minilottery.experiments.prune_at_init import PruneAtInitConfig, PruneAtInitExperiment, summary
from minilottery.reports.prune_at_init import report
from minilottery.train import TrainConfig


def add_arguments(p):
    config.add_flags(p, PruneAtInitConfig, paper_defaults=("dataset",) + TrainConfig.names())
    add_io_arguments(p, out_help="experiment file (default runs/MODEL_DATASET_prune_at_init.h5)",
                     json_help="write every run's summary (test_acc: final test accuracy; densities) to this JSON file")
    add_executor_arguments(p)


def config_from_args(args):
    given = config.overrides(args, PruneAtInitConfig)
    return PruneAtInitConfig.paper(given.pop("model", "lenet_300_100"), **given)


def run_experiment(cfg, out, data_dir=None, mirror=None, progress=True, json_path=None, log=print, executor=None):
    """Run or resume ``cfg`` into ``out``; print the report; return the rows."""
    return run_in_store(cfg, out, PruneAtInitExperiment, summary, report, "runs", data_dir, mirror, progress,
                        json_path, log, executor)


def run(args):
    cfg = config_from_args(args)
    out = args.out or os.path.join("runs", f"{cfg.model}_{cfg.dataset}_prune_at_init.h5")
    with executor_from_args(args) as executor:
        run_experiment(cfg, out, args.data_dir, args.mirror, not args.quiet, args.json, executor=executor)
