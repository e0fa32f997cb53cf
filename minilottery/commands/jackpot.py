"""``python -m minilottery jackpot``: Lottery Jackpots in a pre-trained network against their baselines.

    python -m minilottery jackpot --model lenet_300_100 --sparsity 0.9 0.95 0.98 --out runs/j.h5 --json runs/j.json
    python -m minilottery jackpot --pretrained runs/lenet_300_100_mnist_imp.h5     # reuse an IMP dense run

The training flags (--iterations, --lr, --batch-size, ...) set the score search of the jackpot and of
edge-popup; pre-training and fine-tuning keep their protocols (minilottery/experiments/jackpot.py)
but for their lengths, --pretrain-iterations and --finetune-iterations (default: the search's).
Rerunning the same command continues an interrupted experiment.
"""
from minilottery import commands
from minilottery.commands import add_experiment_arguments, run_command
from minilottery.experiments.jackpot import JackpotConfig
from minilottery.train import TrainConfig

PAPER_DEFAULTS = {**dict.fromkeys(("dataset",) + TrainConfig.names(), "the paper's for the model"),
                  "sparsities": "0.9 0.95 0.98", "pretrain_iterations": "the LTH paper's for the model",
                  "finetune_iterations": "the search's"}


def add_arguments(p):
    add_experiment_arguments(p, JackpotConfig, PAPER_DEFAULTS, "experiment file (default runs/MODEL_DATASET_jackpot[-SETTINGS].h5)",
                             "write per sparsity the dense, magnitude, jackpot, edge-popup and fine-tuned "
                             "test accuracies, their iterations and the overlaps to this JSON file")
    p.epilog = ("The training flags (--iterations to --eval-batch) set the score search of the jackpot and of "
                "edge-popup; their defaults are the released Lottery Jackpots code's: momentum 0.9, lr 0.1, "
                "weight decay 5e-4, cosine, batch 256, 30 epochs, evaluated once per epoch.")


def config_from_args(args):
    """The jackpot configuration of a command line: its flags over the protocols, or over --config."""
    return commands.config_from_args(args, JackpotConfig)


def run(args):
    run_command(config_from_args(args), args)
