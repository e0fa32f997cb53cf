"""``python -m minilottery imp``: an IMP experiment from the command line.

Defaults are the paper's protocol for the chosen model; rerunning the same
command continues an interrupted experiment. Every check (options, the whole
pruning plan, the output path, the dataset, the backend) happens before the
experiment file is made.
"""
from minilottery.commands import add_experiment_arguments, config_from_args, run_command
from minilottery.experiments.imp import IMPConfig
from minilottery.train import TrainConfig

# flags whose default comes from the paper's protocol for the model
PROTOCOL_FIELDS = ("dataset", "conv_rate", "fc_rate", "output_rate", "global_pruning") + TrainConfig.names()


def add_arguments(p):
    add_experiment_arguments(p, IMPConfig, PROTOCOL_FIELDS, "experiment file (default runs/MODEL_DATASET_imp[-SETTINGS].h5: the settings that differ from the paper's)",
                             "write every finished run's summary (level, Pm, early stop, accuracies) to this "
                             "JSON file")


def run(args):
    run_command(config_from_args(args, IMPConfig), args)
