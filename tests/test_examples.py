"""The three paper examples beside the LTH one: their protocols build and pass every check,
and the Deconstructing example runs, reports and resumes on real MNIST (short)."""
import json

import pytest

from minilottery.experiments.supermask import METHODS, SupermaskConfig
from minilottery.store import ExperimentStore
from tests.helpers_data import load_example

_example = load_example


@pytest.mark.parametrize("name", ["lenet_mnist", "deconstructing_mnist", "supermask_mnist", "jackpot_mnist"])
def test_every_example_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        _example(name).main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--out" in text and "--workers" in text and "quick protocol" in text


@pytest.mark.parametrize("paper", [False, True])
def test_jackpot_example_protocols_are_valid_and_quick_is_shorter(paper):
    ex = _example("jackpot_mnist")
    for model in ("lenet_300_100", "conv2"):
        cfg = ex.make_config(model, paper, seed=0)
        full = ex.make_config(model, True, seed=0)
        assert cfg.sparsities == ex.SPARSITIES[model] and not cfg.include_classifier
        assert cfg.search.lr == full.search.lr and cfg.search.batch_size == full.search.batch_size
        assert cfg.search.iterations <= full.search.iterations
        assert cfg.pretrain.iterations <= full.pretrain.iterations
        assert (cfg == full) == paper
        json.dumps(cfg.to_dict())                                   # what the store records


def test_supermask_example_quick_keeps_each_papers_optimiser():
    ex = _example("supermask_mnist")
    for method in METHODS:
        quick = SupermaskConfig.paper(method, "lenet_300_100", seed=0, **ex.QUICK[method])
        paper = SupermaskConfig.paper(method, "lenet_300_100", seed=0)
        assert quick.train.iterations == ex.QUICK[method]["iterations"] < paper.train.iterations
        for field in ("lr", "batch_size", "optimizer", "momentum", "weight_decay", "schedule"):
            assert getattr(quick.train, field) == getattr(paper.train, field), (method, field)
        assert quick.weights == paper.weights and quick.keep == paper.keep


@pytest.mark.slow
def test_deconstructing_example_runs_reports_and_resumes(mirror, tmp_path, capsys):
    out = tmp_path / "d.h5"
    argv = ["--only", "mask0", "--iterations", "40", "--rounds", "1", "--out", str(out), "--mirror", mirror,
            "--data-dir", str(tmp_path / "data"), "--quiet", "--workers", "1"]
    ex = _example("deconstructing_mnist")
    assert ex.main(argv) == 0
    text = capsys.readouterr().out
    assert "4 variants" in text and f"results: {out}" in text
    for variant in ("zero", "freeze_init", "variant1", "variant2"):
        assert variant in text
    cfg = ExperimentStore.read_config(str(out))
    assert cfg["imp"]["train"]["iterations"] == 40 and cfg["comparisons"] == ["mask0"]
    before = out.stat().st_mtime_ns
    assert ex.main(argv) == 0                                       # complete: nothing is retrained
    assert out.stat().st_mtime_ns == before
