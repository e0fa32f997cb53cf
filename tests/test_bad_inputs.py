"""Every bad input gets one line on stderr, exit code 2, before any file is made; nothing saved is lost."""
import os

import numpy as np
import pytest

from minilottery import backend
from minilottery.__main__ import main


def cli(argv):
    """The command's exit code, whether it returned it or argparse exited with it."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code
from minilottery.store import ExperimentStore

TINY = ["--iterations", "10", "--eval-every", "10"]


def _files(folder):
    return sorted(p for p in os.listdir(folder) if p != "data")


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, (f, err)
    return err


@pytest.mark.parametrize("argv, fragments", [
    (["imp", "--seed", "-1"], ["--seed must be at least 0"]),
    (["imp", "--batch-size", "100000"], ["--batch-size 100000 exceeds the 55000 training examples"]),
    (["imp", "--dropout", "1.5"], ["--dropout must be in [0, 1)"]),
    (["imp", "--iterations", "0"], ["--iterations must be a positive integer, got 0"]),
    (["imp", "--conv-rate", "5"], ["--conv-rate 5.0 given, but lenet_300_100 has no conv layers"]),
    (["imp", "--fc-rate", "0.9", "--output-rate", "0.9", "--rounds", "8"], ["fc3.W", "level"]),
    (["imp", "--fc-rate", "0.45", "--output-rate", "0.45", "--rounds", "24"], ["removes no weight", "level"]),
    (["imp", "--criterion", "largest"], ["invalid choice: 'largest'"]),
    (["imp", "--lr", "nan"], ["--lr must be a positive number"]),
    (["train", "--seed", "-3"], ["--seed must be at least 0"]),
    (["supermask", "--method", "learned", "--weights", "kaiming"], ["do not apply to learned"]),
    (["supermask", "--method", "edgepopup", "--keep", "0"], ["--keep fractions must be in (0, 1]"]),
    (["supermask", "--method", "learned", "--keep", "0.5"], ["--keep [0.5] does not apply to learned"]),
])
def test_bad_option_is_one_line_and_makes_no_file(argv, fragments, tmp_path, capsys, mirror):
    out = tmp_path / "x.h5"
    io = ["--mirror", mirror, "--data-dir", str(tmp_path / "data"), "--quiet"]
    rc = cli(argv + io + ([] if argv[0] == "train" else ["--out", str(out)]))
    assert rc == 2
    _one_line_error(capsys, *fragments)
    assert _files(tmp_path) == []                                    # nothing made


def test_output_paths_checked_before_any_work(tmp_path, capsys, mirror):
    common = ["--mirror", mirror, "--data-dir", str(tmp_path / "data"), "--quiet"]
    (tmp_path / "file").write_text("")
    assert cli(["train", "--json", str(tmp_path / "file" / "r.json")] + TINY + common) == 2
    _one_line_error(capsys, "--json", "is a file, not a folder")
    assert cli(["imp", "--out", str(tmp_path)] + TINY + common) == 2
    _one_line_error(capsys, "is a directory")
    assert _files(tmp_path) == ["file"]


def test_dataset_errors_are_one_line(tmp_path, capsys):
    empty = tmp_path / "mirror"
    (empty / "mnist").mkdir(parents=True)
    assert cli(["imp", "--out", str(tmp_path / "x.h5"), "--mirror", str(empty),
                "--data-dir", str(tmp_path / "data"), "--quiet"] + TINY) == 2
    _one_line_error(capsys, "error:")
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.skipif(backend.cupy_available(), reason="a GPU is usable here")
def test_unusable_backend_is_refused_before_any_file(tmp_path, capsys, mirror):
    try:
        assert cli(["imp", "--backend", "cupy", "--out", str(tmp_path / "x.h5"), "--mirror", mirror,
                    "--data-dir", str(tmp_path / "data"), "--quiet"] + TINY) == 2
    finally:
        backend.set_backend("numpy")
    _one_line_error(capsys, "backend 'cupy' asked for")
    assert not (tmp_path / "x.h5").exists()


def test_divergence_is_reported_not_stored(tmp_path, capsys, mirror):
    out = tmp_path / "x.h5"
    rc = cli(["imp", "--lr", "1e6", "--iterations", "300", "--eval-every", "100", "--rounds", "3",
              "--out", str(out), "--mirror", mirror, "--data-dir", str(tmp_path / "data"), "--quiet"])
    assert rc == 2
    _one_line_error(capsys, "diverged")
    assert _files(tmp_path) == []                                    # a new experiment that diverged: no file


def test_report_of_a_missing_file_says_it_does_not_exist(tmp_path, capsys):
    assert cli(["report", str(tmp_path / "nope.h5")]) == 2
    _one_line_error(capsys, "does not exist")


def test_unknown_flag_is_one_line(capsys):
    assert cli(["imp", "--no-such-flag"]) == 2
    _one_line_error(capsys, "unrecognized arguments: --no-such-flag")


def test_another_configuration_into_an_existing_file_is_refused_and_keeps_it(tmp_path, capsys, mirror):
    path = tmp_path / "e.h5"
    with ExperimentStore(path, {"kind": "imp", "seed": 0}) as s:
        s.write("x", {"a": np.arange(3)})
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert cli(["imp", "--out", str(path), "--mirror", mirror, "--data-dir", str(tmp_path / "data"),
                "--quiet"] + TINY) == 2
    _one_line_error(capsys, "another configuration")
    assert all(p.read_bytes() == b for p, b in before.items())
    assert ExperimentStore.open_readonly(path).read("x")[0]["a"].tolist() == [0, 1, 2]
