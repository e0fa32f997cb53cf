"""``python -m minilottery supermask --method {at_init,learned,edgepopup}``: masks over frozen weights.

Defaults are the papers' protocols (minilottery/experiments/supermask.py);
rerunning the same command continues an interrupted experiment.
"""
import os

from minilottery import config
from minilottery.commands import add_executor_arguments, add_io_arguments, executor_from_args, run_in_store
from minilottery.experiments.supermask import SupermaskConfig, SupermaskExperiment
from minilottery.reports.supermask import report
from minilottery.train import TrainConfig


def add_arguments(p):
    config.add_flags(p, SupermaskConfig, paper_defaults=("dataset", "weights", "keep") + TrainConfig.names())
    add_io_arguments(p, out_help="experiment file (default runs/MODEL_DATASET_supermask_METHOD.h5)",
                     json_help="write every run's summary (accuracies, densities, early stop) to this JSON file")
    add_executor_arguments(p)


def run_experiment(cfg, out, data_dir=None, mirror=None, progress=True, json_path=None, log=print, executor=None):
    """Run or resume ``cfg`` into ``out`` (on ``executor``, default serial); print the report; return the summary."""
    return run_in_store(cfg, out, SupermaskExperiment, SupermaskExperiment.summary, report, "runs", data_dir, mirror, progress, json_path, log,
                        executor)


def run(args):
    given = config.overrides(args, SupermaskConfig)
    cfg = SupermaskConfig.paper(given.pop("method", "learned"), given.pop("model", "lenet_300_100"), **given)
    out = args.out or os.path.join("runs", f"{cfg.model}_{cfg.dataset}_supermask_{cfg.method}.h5")
    with executor_from_args(args) as executor:
        run_experiment(cfg, out, args.data_dir, args.mirror, not args.quiet, args.json, executor=executor)
