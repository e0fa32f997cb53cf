"""Smoke test of the speed benchmark: one LeNet repeat, the table's shape (no timing asserted).

The PyTorch peer is left out: importing torch alone takes seconds.
"""
import argparse

from minilottery.bench import measure
from minilottery.commands import bench


def test_bench_runs_one_lenet_repeat(capsys):
    args = bench.add_arguments(argparse.ArgumentParser()).parse_args(
        ["--repeats", "1", "--warmup", "1", "--cases", "lenet", "--no-torch"])
    assert bench.run(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("| case | ours ms | PyTorch ms | ratio")
    rows = [line for line in lines if line.startswith("| lenet |")]
    assert len(rows) == 1 and len(rows[0].split("|")) == 7
    assert rows[0].split("|")[3].strip() == "n/a"
    assert "numpy" in out and "Conv-6" in out and "im2col" in out


def test_im2col_bytes_of_conv6_is_analytic():
    from minilottery.nn.models import build_model
    from minilottery.rng import Streams
    sizes = dict(measure.im2col_bytes(build_model("conv6", Streams.from_seed(0), dataset="cifar10"), 60))
    assert sizes["conv1"] == 60 * 3 * 9 * 32 * 32 * 4        # (N, C·kh·kw, Ho·Wo) float32
    assert sizes["conv2"] == 60 * 64 * 9 * 32 * 32 * 4
    assert sizes["conv6"] == 60 * 256 * 9 * 8 * 8 * 4
