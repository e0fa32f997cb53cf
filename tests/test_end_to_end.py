"""End-to-end runs of the commands users type, on real MNIST (marked slow; CI runs them)."""
import importlib.util
import os

import pytest

from minilottery.__main__ import main as cli
from minilottery.store import ExperimentStore
from tests.helpers_data import load_example



def _example():
    return load_example("lenet_mnist")


@pytest.mark.slow
def test_example_runs_resumes_and_reports(mirror, tmp_path, capsys):
    out = tmp_path / "lenet.h5"
    argv = ["--iterations", "300", "--rounds", "3", "--trials", "1", "--out", str(out),
            "--mirror", mirror, "--data-dir", str(tmp_path / "data"), "--quiet"]
    _example().main(argv)
    text = capsys.readouterr().out
    assert "| 3 | 51.3 |" in text and "random reinit" in text
    assert f"results: {out}" in text
    cfg = ExperimentStore.read_config(str(out))
    assert cfg["train"]["iterations"] == 300 and cfg["train"]["lr"] == 1.2e-3 and cfg["control_levels"] == [3]
    assert cfg["kind"] == "imp"
    if importlib.util.find_spec("matplotlib"):
        assert out.with_suffix(".png").stat().st_size > 1000
    mtime = os.path.getmtime(out)
    _example().main(argv)                                    # everything done: nothing retrained
    assert "trial 0 level" not in capsys.readouterr().out
    assert os.path.getmtime(out) >= mtime


@pytest.mark.slow
def test_train_command_on_real_mnist(mirror, tmp_path, capsys):
    js = tmp_path / "new folder" / "r.json"                   # made when the result is written
    assert cli(["train", "--iterations", "200", "--eval-every", "100", "--mirror", mirror,
                "--data-dir", str(tmp_path), "--json", str(js), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "early-stopping iteration" in text and js.stat().st_size > 100


def test_cli_refuses_impossible_settings_with_a_clear_message(tmp_path, capsys, mirror):
    common = ["--mirror", mirror, "--data-dir", str(tmp_path), "--quiet"]
    assert cli(["imp", "--fc-rate", "1.5", "--iterations", "10", "--out", str(tmp_path / "a.h5")] + common) == 2
    assert "--fc-rate must be in (0, 1), got 1.5" in capsys.readouterr().err
    assert cli(["imp", "--rounds", "0", "--out", str(tmp_path / "b.h5")] + common) == 2
    assert "--rounds must be at least 1" in capsys.readouterr().err
    assert cli(["train", "--lr", "-1"] + common) == 2
    assert "--lr must be a positive number" in capsys.readouterr().err


def test_cli_refuses_unknown_options_and_choices(capsys):
    with pytest.raises(SystemExit) as e:
        cli(["train", "--model", "resnet"])
    assert e.value.code == 2 and "invalid choice: 'resnet'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["imp", "--no-such-flag"])
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_report_of_a_corrupt_file_says_so(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n" + b"\0" * 100)
    assert cli(["report", str(bad)]) == 2
    assert "not a readable HDF5 experiment file" in capsys.readouterr().err
