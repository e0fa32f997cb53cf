"""Training lengths in iterations or epochs (--iterations 2ep / 1000it)."""
import argparse
import math

import pytest
from hypothesis import given, strategies as st

from minilottery import config, lengths
from minilottery.data import SPLIT_SIZES
from minilottery.experiments.imp import IMPConfig
from minilottery.experiments.jackpot import JackpotConfig
from minilottery.train import TrainConfig


@given(st.integers(1, 10**6))
def test_iterations_with_or_without_unit(n):
    assert lengths.parse(str(n)) == n and lengths.parse(f"{n}it") == n and lengths.parse(f" {n}IT ") == n


@given(st.integers(1, 500), st.sampled_from(sorted(SPLIT_SIZES)), st.integers(1, 1000))
def test_whole_epochs_count_the_training_split(n, dataset, batch):
    e = lengths.parse(f"{n}ep")
    assert isinstance(e, lengths.Epochs) and repr(e) == f"{n}ep"
    got = lengths.iterations(e, dataset, batch)
    assert (got - 1) * batch < n * SPLIT_SIZES[dataset][0] <= got * batch       # ⌈n · N / batch⌉


@given(st.floats(0.01, 50), st.integers(1, 1000))
def test_fractional_epochs_round_up(f, batch):
    got = lengths.iterations(lengths.parse(f"{f}ep"), "mnist", batch)
    assert got == math.ceil(f * 55_000 / batch)


@pytest.mark.parametrize("bad", ["", "ep", "2x", "-1ep", "0ep", "nanep", "1.5", "2 ep 3"])
def test_bad_lengths_are_refused_naming_the_forms(bad):
    with pytest.raises(argparse.ArgumentTypeError, match="Nep"):
        lengths.parse(bad)


def test_epochs_resolve_at_the_batch_size_given_and_store_as_iterations():
    a = IMPConfig.paper("lenet_300_100", iterations=lengths.parse("2ep"), batch_size=100,
                        eval_every=lengths.parse("0.5ep"))
    b = IMPConfig.paper("lenet_300_100", iterations=1100, batch_size=100, eval_every=275)
    assert a.to_dict() == b.to_dict()
    assert IMPConfig.paper("conv2", iterations=lengths.parse("1ep")).train.iterations == 750      # CIFAR-10, batch 60
    assert JackpotConfig.paper(iterations=lengths.parse("30ep")).search.iterations == 6446          # released code's
    t = config.build(TrainConfig, {"batch_size": 250}, {"iterations": lengths.parse("1ep")}, dataset="mnist")
    assert t.iterations == 220
