"""``python -m minilottery jackpot``: Lottery Jackpots in a pre-trained network against their baselines.

    python -m minilottery jackpot --model lenet_300_100 --sparsity 0.9 0.95 0.98 --out runs/j.h5 --json runs/j.json
    python -m minilottery jackpot --pretrained runs/lenet_300_100_mnist_imp.h5     # reuse an IMP dense run

The training flags (--iterations, --lr, --batch-size, ...) set the score search of the jackpot and of
edge-popup; pre-training and fine-tuning keep their protocols (minilottery/experiments/jackpot.py)
but for their lengths, --pretrain-iterations and --finetune-iterations (default: the search's).
Rerunning the same command continues an interrupted experiment.
"""
import os

from minilottery import config
from minilottery.commands import add_executor_arguments, add_io_arguments, executor_from_args, run_in_store
from minilottery.experiments.jackpot import JackpotConfig, JackpotExperiment
from minilottery.reports.jackpot import report
from minilottery.train import TrainConfig

BY_HAND = ("pretrain", "finetune", "sparsities")      # JackpotConfig fields whose flags are added below


def add_arguments(p):
    config.add_flags(p, JackpotConfig, skip=BY_HAND, paper_defaults=("dataset",) + TrainConfig.names())
    p.add_argument("--sparsity", type=float, nargs="+", default=None, dest="sparsities",
                   help="fractions of the searched weights pruned, one search each (default: 0.9 0.95 0.98)")
    p.add_argument("--pretrain-iterations", type=int, default=None,
                   help="pre-training iterations (default: the LTH paper's for the model)")
    p.add_argument("--finetune-iterations", type=int, default=None,
                   help="fine-tuning iterations of the magnitude-pruned baseline (default: the search's)")
    p.epilog = ("The training flags (--iterations to --eval-batch) set the score search of the jackpot and of "
                "edge-popup; their defaults are the released Lottery Jackpots code's: momentum 0.9, lr 0.1, "
                "weight decay 5e-4, cosine, batch 256, 30 epochs, evaluated once per epoch.")
    add_io_arguments(p, out_help="experiment file (default runs/MODEL_DATASET_jackpot.h5)",
                     json_help="write per sparsity the dense, magnitude, jackpot, edge-popup and fine-tuned "
                               "test accuracies, their iterations and the overlaps to this JSON file")
    add_executor_arguments(p)


def config_from_args(args):
    given = config.overrides(args, JackpotConfig, skip=BY_HAND)
    for name in ("sparsities", "pretrain_iterations", "finetune_iterations"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    return JackpotConfig.paper(given.pop("model", "lenet_300_100"), **given)


def run_experiment(cfg, out, data_dir=None, mirror=None, progress=True, json_path=None, log=print, executor=None):
    """Run or resume ``cfg`` into ``out`` (on ``executor``, default serial); print the report; return the summary."""
    return run_in_store(cfg, out, JackpotExperiment, JackpotExperiment.summary, report, "sparsities", data_dir, mirror, progress, json_path, log,
                        executor)


def run(args):
    cfg = config_from_args(args)
    out = args.out or os.path.join("runs", f"{cfg.model}_{cfg.dataset}_jackpot.h5")
    with executor_from_args(args) as executor:
        run_experiment(cfg, out, args.data_dir, args.mirror, not args.quiet, args.json, executor=executor)
