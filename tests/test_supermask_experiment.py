"""Supermask experiments: every method runs, resumes without retraining, keeps weights frozen,
and reports; the command writes its JSON summary."""
import json

import numpy as np
import pytest

from minilottery.__main__ import main as cli
from minilottery.errors import ConfigError
from minilottery.experiments import supermask as sx
from minilottery.experiments.supermask import SupermaskConfig, SupermaskExperiment
from minilottery.reports.supermask import report
from minilottery.store import ExperimentStore
from tests.helpers_data import tiny_mnist

TINY = dict(iterations=20, eval_every=10, batch_size=30)


def _run(path, method, **kw):
    cfg = SupermaskConfig.paper(method, **{**TINY, **kw})
    with ExperimentStore(path, cfg.to_dict()) as store:
        SupermaskExperiment(cfg, store, tiny_mnist(), log=lambda *a: None).run()
    return cfg, ExperimentStore.open_readonly(path)


@pytest.mark.parametrize("method, kw, n_runs", [("at_init", dict(keep=(0.5, 0.2)), 4),
                                                ("learned", dict(dwr="both"), 4),
                                                ("edgepopup", dict(keep=(0.5,)), 2)])
def test_every_method_runs_and_reports(tmp_path, method, kw, n_runs):
    cfg, store = _run(tmp_path / "s.h5", method, **kw)
    runs = SupermaskExperiment.summary(store)
    assert len(runs) == n_runs == len(cfg.runs())
    for r in runs:
        assert 0.0 <= r["test_acc"] <= 1.0 and 0.0 < r["density"] <= 1.0
        per_layer = json.loads(r["density_per_layer"])
        assert set(per_layer) == {"fc1.W", "fc2.W", "fc3.W"}
        if method != "learned":
            assert all(abs(v - r["keep"]) < 0.01 for v in per_layer.values())     # exact per-layer counts
        else:
            assert r["test_acc_min"] <= r["test_acc"] <= r["test_acc_max"]
    lines = []
    assert report(str(tmp_path / "s.h5"), make_plot=False, log=lines.append).count("\n") == n_runs + 1


def test_a_finished_experiment_reruns_nothing(tmp_path, monkeypatch):
    _run(tmp_path / "s.h5", "learned", dwr="dwr", weights=("theta0",))
    calls = []
    monkeypatch.setattr(sx, "train", lambda *a, **k: calls.append(1))
    _run(tmp_path / "s.h5", "learned", dwr="dwr", weights=("theta0",))
    assert calls == []


def test_at_init_masks_theta0_without_training(tmp_path):
    """The at_init run's network is θ0 (or α·sign θ0) under the stored mask: its accuracy is that
    of the Sequential with those weights and masks, and θ0 in the store is untouched."""
    _, store = _run(tmp_path / "s.h5", "at_init", keep=(0.3,), weights=("theta0",))
    theta0 = store.read("theta0")[0]
    masks = store.read("runs/theta0-k0.30")[0]["masks"]
    from minilottery.nn.models import build_model
    from minilottery.rng import Streams
    from minilottery.train import evaluate
    model = build_model("lenet_300_100", Streams.from_seed(5))
    model.set_weights(theta0)
    model.set_masks({k: m.astype(np.float32) for k, m in masks.items()})
    _, acc = evaluate(model, *tiny_mnist().test)
    assert acc == store.attrs("runs/theta0-k0.30")["test_acc"]
    assert all(abs(m.mean() - 0.3) < 0.01 for m in masks.values())


def test_bad_configurations_are_refused():
    with pytest.raises(ConfigError, match="do not apply"):
        SupermaskConfig.paper("edgepopup", weights=("theta0",))
    with pytest.raises(ConfigError, match="--keep"):
        SupermaskConfig.paper("at_init", keep=(1.5,))
    with pytest.raises(ConfigError, match="--method"):
        SupermaskConfig(method="lottery")


@pytest.mark.slow
def test_the_command_writes_its_json(tmp_path, mirror, capsys):
    js = tmp_path / "s.json"
    assert cli(["supermask", "--method", "edgepopup", "--keep", "0.5", "--weights", "signed_kaiming",
                "--iterations", "50", "--eval-every", "25", "--out", str(tmp_path / "s.h5"), "--json", str(js),
                "--mirror", mirror, "--data-dir", str(tmp_path / "data"), "--quiet", "--workers", "1"]) == 0
    out = json.loads(js.read_text())
    (run,) = out["runs"]
    assert out["config"]["kind"] == "supermask" and run["keep"] == 0.5 and run["test_acc"] > 0.3
    assert {"early_stop_iteration", "density", "density_per_layer", "test_acc"} <= set(run)
