"""``python -m minilottery prune-at-init``: SNIP, GraSP, SynFlow, magnitude and random pruning at
initialisation, with the sanity checks (shuffle, reinit, invert); resumable.

Training defaults are the model's protocol; every check happens before the file is made.
"""
from minilottery.commands import add_experiment_arguments, config_from_args, run_command
from minilottery.experiments.prune_at_init import PruneAtInitConfig
from minilottery.train import TrainConfig


def add_arguments(p):
    add_experiment_arguments(p, PruneAtInitConfig, ("dataset",) + TrainConfig.names(),
                             "experiment file (default runs/MODEL_DATASET_prune_at_init[-SETTINGS].h5: the settings that differ from the paper's)",
                             "write every run's summary (test_acc: final test accuracy; densities) to this JSON file")


def run(args):
    run_command(config_from_args(args, PruneAtInitConfig), args)
