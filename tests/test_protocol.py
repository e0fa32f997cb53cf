"""The papers' hyperparameters as defaults, and the dropout length rule."""
import argparse

import pytest

from minilottery import config
from minilottery.commands import train as train_cmd
from minilottery.experiments.imp import IMPConfig
from minilottery.protocol import DROPOUT_LENGTH_FACTOR, PAPER, paper_protocol


@pytest.mark.parametrize("model", ["conv2", "conv4", "conv6"])
def test_conv_nets_with_dropout_train_three_times_as_long(model):
    assert paper_protocol(model, dropout=0.5).train.iterations == DROPOUT_LENGTH_FACTOR * PAPER[model].train.iterations
    assert paper_protocol(model, dropout=0.5).train.lr == PAPER[model].train.lr
    assert paper_protocol(model) == PAPER[model]


def test_lenet_length_does_not_change_with_dropout():
    assert paper_protocol("lenet_300_100", dropout=0.5) == PAPER["lenet_300_100"]


def test_unknown_model_named_in_error():
    with pytest.raises(ValueError, match="conv9"):
        paper_protocol("conv9")


def test_imp_and_train_defaults_follow_the_dropout_rule():
    assert IMPConfig.paper("conv2", dropout=0.5).train.iterations == 60_000
    assert IMPConfig.paper("conv2", dropout=0.5, iterations=100).train.iterations == 100   # explicit wins
    p = argparse.ArgumentParser()
    train_cmd.add_arguments(p)
    from minilottery.train import TrainConfig

    def cfg(argv):
        args = p.parse_args(argv)
        base = config.to_dict(paper_protocol(args.model, args.dropout).train)
        return config.build(TrainConfig, base, config.overrides(args, TrainConfig))
    assert cfg(["--model", "conv2", "--dropout", "0.5"]).iterations == 60_000
    assert cfg(["--model", "conv2", "--dropout", "0.5", "--iterations", "500"]).iterations == 500
