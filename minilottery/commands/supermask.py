"""``python -m minilottery supermask --method {at_init,learned,edgepopup}``: masks over frozen weights.

Defaults are the papers' protocols (minilottery/lottery/supermask_experiment.py);
rerunning the same command continues an interrupted experiment.
"""
import os

from minilottery import config
from minilottery.commands import (add_executor_arguments, add_io_arguments, check_writable, executor_from_args,
                                  write_json)
from minilottery.plan import DataRef
from minilottery.lottery.supermask_experiment import SupermaskConfig, SupermaskExperiment, summary
from minilottery.reports.supermask import report
from minilottery.store import ExperimentStore
from minilottery.train import TrainConfig


def add_arguments(p):
    config.add_flags(p, SupermaskConfig, paper_defaults=("dataset", "weights", "keep") + TrainConfig.names())
    add_io_arguments(p, out_help="experiment file (default runs/MODEL_DATASET_supermask_METHOD.h5)",
                     json_help="write every run's summary (accuracies, densities, early stop) to this JSON file")
    add_executor_arguments(p)


def run_experiment(cfg, out, data_dir=None, mirror=None, progress=True, json_path=None, log=print, executor=None):
    """Run or resume ``cfg`` into ``out`` (on ``executor``, default serial); print the report; return the runs."""
    check_writable(out, "experiment file")
    check_writable(json_path, "--json")
    ref = DataRef(cfg.dataset, data_dir, mirror)
    data = ref.load()                                                  # before any file is made
    with ExperimentStore(out, cfg.to_dict()) as store:
        log(f"experiment file: {os.path.abspath(out)}")
        SupermaskExperiment(cfg, store, data, progress=progress and getattr(executor, "workers", 1) == 1,
                            log=log, data_ref=ref).run(executor)
        runs = summary(store)
    report(out, log=log)
    if json_path:
        write_json(json_path, {"config": cfg.to_dict(), "runs": runs})
        log(f"wrote {json_path}")
    return runs


def run(args):
    given = config.overrides(args, SupermaskConfig)
    cfg = SupermaskConfig.paper(given.pop("method", "learned"), given.pop("model", "lenet_300_100"), **given)
    out = args.out or os.path.join("runs", f"{cfg.model}_{cfg.dataset}_supermask_{cfg.method}.h5")
    with executor_from_args(args) as executor:
        run_experiment(cfg, out, args.data_dir, args.mirror, not args.quiet, args.json, executor=executor)
