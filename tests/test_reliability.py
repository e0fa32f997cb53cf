"""Reliability at the command line: divergence, refusals made before any work, one line each.

Every case: exit code 2, one line on stderr naming the problem, no file left that was not
there before (a diverged run in a new file leaves none), nothing already saved lost.
"""
import os

import pytest

from tests.test_bad_inputs import _one_line_error, cli

QUICK = ["--iterations", "100", "--eval-every", "100", "--workers", "1", "--quiet"]


def _io(tmp_path, mirror):
    return ["--mirror", mirror, "--data-dir", str(tmp_path / "data")]


def _files(folder):
    return sorted(p for p in os.listdir(folder) if p != "data")


# -- 2 / 7: divergence -----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["supermask", "--method", "edgepopup", "--keep", "0.5", "--weights", "kaiming", "--lr", "1e9"],
    ["jackpot", "--sparsity", "0.9", "--pretrain-iterations", "100", "--finetune-iterations", "100", "--lr", "1e9"],
])
def test_non_finite_scores_are_a_divergence_not_a_result(argv, tmp_path, capsys, mirror):
    out = tmp_path / "x.h5"
    assert cli(argv + QUICK + ["--out", str(out)] + _io(tmp_path, mirror)) == 2
    _one_line_error(capsys, "diverged", "not finite")
    assert _files(tmp_path) == []                   # a new experiment that diverged leaves no file


@pytest.mark.slow
def test_a_diverging_imp_leaves_no_file_and_no_numpy_warning(tmp_path, capsys, mirror):
    out = tmp_path / "x.h5"
    argv = ["imp", "--rounds", "1", "--reinit", "1", "--lr", "1e308", "--out", str(out)]
    assert cli(argv + QUICK + _io(tmp_path, mirror)) == 2
    _one_line_error(capsys, "diverged")           # one line: no RuntimeWarning before it
    assert _files(tmp_path) == []


# -- 7: refusals before any work ----------------------------------------------------------------
def test_json_to_a_device_is_refused_before_any_work(tmp_path, capsys, mirror):
    argv = ["supermask", "--method", "edgepopup", "--keep", "0.5", "--out", str(tmp_path / "x.h5"),
            "--json", "/dev/full"]
    assert cli(argv + QUICK + _io(tmp_path, mirror)) == 2
    _one_line_error(capsys, "--json /dev/full", "not a regular file")
    assert _files(tmp_path) == []


# -- 10: report --png --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_imp(tmp_path_factory, mirror):
    d = tmp_path_factory.mktemp("imp")
    argv = ["imp", "--rounds", "1", "--reinit", "0", "--iterations", "20", "--eval-every", "10", "--workers", "1",
            "--quiet", "--out", str(d / "x.h5")]
    assert cli(argv + _io(d, mirror)) == 0
    return d / "x.h5"


@pytest.mark.parametrize("png, fragment", [("fig.xyz", "must name a .png file"), ("fig", "must name a .png file"),
                                           ("adir.png", "is a directory"), ("afile/x.png", "is a file, not a folder"),
                                           ("/dev/full", "must name a .png file")])
def test_report_png_is_refused_before_anything_is_written(png, fragment, small_imp, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir.png").mkdir()
    (tmp_path / "afile").write_text("")
    capsys.readouterr()
    assert cli(["report", str(small_imp), "--png", png]) == 2
    _one_line_error(capsys, "--png", fragment)
    assert _files(tmp_path) == ["adir.png", "afile"]


def test_report_png_writes_exactly_the_path_it_prints(small_imp, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "Fig.PNG"
    capsys.readouterr()
    assert cli(["report", str(small_imp), "--png", str(png)]) == 0
    assert f"plot: {png}" in capsys.readouterr().out and _files(tmp_path) == ["Fig.PNG"]


# -- 11: bench inputs --------------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["--repeats", "0"], "--repeats must be a positive integer, got 0"),
    (["--repeats", "-1"], "--repeats must be a positive integer, got -1"),
    (["--warmup", "-1"], "--warmup must be a non-negative integer, got -1"),
    (["--cases", "nosuchcase"], "unknown --cases 'nosuchcase'"),
    (["--cases", "lenet,"], "unknown --cases ''"),
    (["--batch", "0"], "--batch must be a positive integer, got 0"),
    (["--density", "1.5"], "--density must be in (0, 1], got 1.5"),
    (["--density", "nan"], "--density must be in (0, 1], got nan"),
    (["--density", "0"], "--density must be in (0, 1], got 0.0"),
    (["--threads", "0"], "--threads must be a positive integer, got 0"),
])
def test_bench_inputs_are_refused_in_one_line(argv, fragment, capsys):
    assert cli(["bench", "--no-torch"] + argv) == 2
    _one_line_error(capsys, fragment)


# -- 4 / 9: stored arrays are checked against the configuration before use ------------------------
@pytest.fixture(scope="module")
def finished_imp(tmp_path_factory, mirror):
    d = tmp_path_factory.mktemp("imp2")
    argv = ["imp", "--rounds", "1", "--reinit", "0", "--iterations", "10", "--eval-every", "10", "--workers", "1",
            "--quiet", "--out", str(d / "x.h5")]
    assert cli(argv + _io(d, mirror)) == 0
    return d / "x.h5", argv[:-2] + _io(d, mirror)


def _copy_with(src, dst, groups):
    """A new store of ``src``'s configuration holding ``groups`` ({group: arrays}) only."""
    from minilottery.store import ExperimentStore, StoreView
    with ExperimentStore(dst, StoreView.read_config(src)) as s:
        for g, arrays in groups.items():
            s.write(g, arrays)


def test_a_tampered_float16_theta0_is_refused_on_resume(finished_imp, tmp_path, capsys):
    from minilottery.store import StoreView
    path, argv = finished_imp
    theta0 = StoreView(path).read("trials/00/theta0")[0]
    tampered = tmp_path / "t.h5"
    _copy_with(path, tampered, {"trials/00/theta0": {k: v.astype("float16") for k, v in theta0.items()}})
    capsys.readouterr()
    assert cli(argv + ["--out", str(tampered)]) == 2
    _one_line_error(capsys, str(tampered.name), "trials/00/theta0", "float16", "float32")
    assert StoreView(tampered).groups("trials/00") == ["theta0"]          # nothing else written


def test_a_4tb_theta0_behind_pretrained_is_one_line(finished_imp, tmp_path, capsys, mirror):
    import h5py
    from minilottery.store import StoreView
    path, _ = finished_imp
    view = StoreView(path)
    crafted = tmp_path / "c.h5"
    _copy_with(path, crafted, {"trials/00/theta0": view.read("trials/00/theta0")[0],
                               "trials/00/levels/000/ticket": view.read("trials/00/levels/000/ticket")[0]})
    with h5py.File(f"{crafted}.d/trials~00~theta0.h5", "a") as f:
        del f["fc1.W"]
        f.create_dataset("fc1.W", shape=(10 ** 12,), dtype="float32")          # 4 TB declared, nothing stored
    capsys.readouterr()
    assert cli(["jackpot", "--pretrained", str(crafted), "--sparsity", "0.9", "--out", str(tmp_path / "j.h5")]
               + QUICK + _io(tmp_path, mirror)) == 2
    _one_line_error(capsys, "trials~00~theta0.h5", "trials/00/theta0", "declares shape")
    assert not (tmp_path / "j.h5").exists()


# -- 7 / 12: refused before any work, in one line ---------------------------------------------------
@pytest.mark.parametrize("argv, fragments", [
    (["jackpot", "--sparsity", "0.9999999"], ["--sparsity 0.9999999", "keeps"]),
    (["supermask", "--method", "edgepopup", "--batch-size", "100000"], ["100000", "training examples"]),
    (["supermask", "--method", "learned", "--score-init", "nan"], ["--score-init", "finite"]),
    (["supermask", "--method", "learned", "--score-init", "inf"], ["--score-init", "finite"]),
    (["supermask", "--method", "edgepopup", "--dwr", "plain"], ["--dwr", "does not apply", "edgepopup"]),
    (["supermask", "--method", "edgepopup", "--score-init", "1"], ["--score-init", "does not apply"]),
    (["supermask", "--method", "at_init", "--eval-samples", "3"], ["--eval-samples", "does not apply"]),
    (["imp", "--momentum", "0.5"], ["--momentum", "does not apply", "adam"]),
    (["imp", "--out", ""], ["path is empty"]),
])
def test_refused_before_any_file_or_work(argv, fragments, tmp_path, capsys, mirror, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = [] if "--out" in argv else ["--out", str(tmp_path / "x.h5")]
    assert cli(argv + out + ["--quiet", "--workers", "1"] + _io(tmp_path, mirror)) == 2
    _one_line_error(capsys, *fragments)
    assert _files(tmp_path) == []


def test_a_tampered_kind_is_refused_by_report(small_imp, tmp_path, capsys):
    from minilottery.store import ExperimentStore, StoreView
    view = StoreView(small_imp)
    tampered = tmp_path / "t.h5"
    with ExperimentStore(tampered, {**view.config, "kind": "supermask"}) as s:
        s.write("trials/00/theta0", view.read("trials/00/theta0")[0])
    capsys.readouterr()
    assert cli(["report", str(tampered), "--no-plot"]) == 2
    _one_line_error(capsys, str(tampered), "supermask")
