"""``python -m minilottery supermask --method {at_init,learned,edgepopup}``: masks over frozen weights.

Defaults are the papers' protocols (minilottery/experiments/supermask.py);
rerunning the same command continues an interrupted experiment.
"""
from minilottery.commands import add_experiment_arguments, config_from_args, run_command
from minilottery.experiments.supermask import SupermaskConfig
from minilottery.train import TrainConfig


def add_arguments(p):
    add_experiment_arguments(p, SupermaskConfig, ("dataset", "weights", "keep") + TrainConfig.names(),
                             "experiment file (default runs/MODEL_DATASET_supermask_METHOD[-SETTINGS].h5)",
                             "write every run's summary (accuracies, densities, early stop) to this JSON file")


def run(args):
    run_command(config_from_args(args, SupermaskConfig), args)
