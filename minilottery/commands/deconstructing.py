"""``python -m minilottery deconstructing``: the Deconstructing Lottery Tickets comparisons.

    python -m minilottery deconstructing --comparison mask0 --iterations 2500 --rounds 7

Each comparison varies one of IMP's three choices (the mask criterion, the
mask-1 action, the mask-0 action), the other two held at the LTH's; every
variant shares θ0 and the dense run. The IMP flags set the protocol every
variant runs (defaults: the paper's for the model); rerunning the same command
continues an interrupted experiment.
"""
from minilottery.commands import add_experiment_arguments, config_from_args, run_command
from minilottery.commands.imp import PROTOCOL_FIELDS
from minilottery.experiments.deconstructing import DeconstructingConfig

VARIED = ("criterion", "mask1", "mask0")      # set by the comparisons themselves


def add_arguments(p):
    add_experiment_arguments(p, DeconstructingConfig, PROTOCOL_FIELDS,
                             "experiment file (default runs/MODEL_DATASET_deconstructing[-SETTINGS].h5)",
                             "write every variant's finished runs (level, Pm, early stop, accuracies) to this "
                             "JSON file", skip=VARIED)


def run(args):
    run_command(config_from_args(args, DeconstructingConfig, skip=VARIED), args)
