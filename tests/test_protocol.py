"""The papers' hyperparameters as defaults, and the dropout length rule."""
import argparse

import pytest

from minilottery import cli_train
from minilottery.lottery.imp import IMPConfig
from minilottery.protocol import DROPOUT_LENGTH_FACTOR, PAPER, paper_protocol


@pytest.mark.parametrize("model", ["conv2", "conv4", "conv6"])
def test_conv_nets_with_dropout_train_three_times_as_long(model):
    assert paper_protocol(model, dropout=0.5).iterations == DROPOUT_LENGTH_FACTOR * PAPER[model].iterations
    assert paper_protocol(model, dropout=0.5).lr == PAPER[model].lr
    assert paper_protocol(model) == PAPER[model]


def test_lenet_length_does_not_change_with_dropout():
    assert paper_protocol("lenet_300_100", dropout=0.5) == PAPER["lenet_300_100"]


def test_unknown_model_named_in_error():
    with pytest.raises(ValueError, match="conv9"):
        paper_protocol("conv9")


def test_imp_and_train_defaults_follow_the_dropout_rule():
    assert IMPConfig.paper("conv2", dropout=0.5).iterations == 60_000
    assert IMPConfig.paper("conv2", dropout=0.5, iterations=100).iterations == 100   # explicit wins
    p = argparse.ArgumentParser()
    cli_train.add_arguments(p)
    args = p.parse_args(["--model", "conv2", "--dropout", "0.5"])
    assert cli_train.config_from_args(args, paper_protocol(args.model, args.dropout)).iterations == 60_000
    args = p.parse_args(["--model", "conv2", "--dropout", "0.5", "--iterations", "500"])
    assert cli_train.config_from_args(args, paper_protocol(args.model, args.dropout)).iterations == 500
