"""--print-config, --config FILE.toml and report --toml; --help numbers; the library example runs as a file."""
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from minilottery.__main__ import main as cli

ROOT = Path(__file__).resolve().parents[1]


def _printed(capsys, argv):
    assert cli(argv) == 0
    text = capsys.readouterr().out
    return text, tomllib.loads(text)


def test_print_config_reads_back_with_config_and_flags_override_it(tmp_path, capsys):
    text, first = _printed(capsys, ["imp", "--iterations", "300", "--rounds", "2", "--criterion", "movement",
                                    "--print-config", "--workers", "1"])
    assert "runs/lenet_300_100_mnist_imp-criterion=movement-iterations=300.h5" in text
    assert "# plan: 5 runs; about " in text          # dense, 2 tickets, 2 reinits and first["train"]["iterations"] == 300
    saved = tmp_path / "c.toml"
    saved.write_text(text)
    _, again = _printed(capsys, ["imp", "--config", str(saved), "--print-config"])
    assert again == first
    _, changed = _printed(capsys, ["imp", "--config", str(saved), "--lr", "0.002", "--print-config"])
    assert changed["train"]["lr"] == 0.002 and {**changed, "train": {}} == {**first, "train": {}}


def test_a_bad_config_file_is_refused_in_one_line(tmp_path, capsys):
    bad = tmp_path / "b.toml"
    bad.write_text('kind = "imp"\nrounds = 2\nno_such_setting = 1\n')
    assert cli(["imp", "--config", str(bad), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no_such_setting" in err
    bad.write_text('kind = "jackpot"\n')
    assert cli(["imp", "--config", str(bad), "--print-config"]) == 2
    assert "'jackpot' configuration" in capsys.readouterr().err


def _help(*argv):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *argv, "--help"], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=True).stdout


def test_help_shows_the_numbers_of_the_model_given():
    conv2 = " ".join(_help("-m", "minilottery", "imp", "--model", "conv2").split())
    assert "(default: 20000 for conv2)" in conv2 and "(default: 0.0002 for conv2)" in conv2
    lenet = " ".join(_help("-m", "minilottery", "imp").split())
    assert "(default: 50000 for lenet_300_100)" in lenet and "paper's for the model" not in lenet
    assert "--backend" not in _help("-m", "minilottery", "report")
    example = " ".join(_help(str(ROOT / "examples" / "lenet_mnist.py")).split())
    assert "(default: 10000 in the quick protocol; --paper: 50000)" in example
    assert "(default: 2 in the quick protocol; --paper: 5)" in example


@pytest.mark.slow
def test_the_library_example_runs_and_grows(tmp_path, mirror):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MINILOTTERY_MIRROR": mirror,
           "MINILOTTERY_DATA": str(tmp_path / "data")}
    run = lambda: subprocess.run([sys.executable, str(ROOT / "examples" / "library.py"), str(tmp_path / "l.h5"),  # noqa: E731
                                  "30"], capture_output=True, text=True, env=env, check=True).stdout
    out = run()
    assert out.count("Pm ") == 4 and "evaluations; best test accuracy" in out and "experiment file" not in out
    assert run() == out                                           # a finished file: read back, not retrained
