"""The instability experiment: W_k is the IMP dense run's own trajectory, the two copies differ
only by their data order, the path's endpoints are the copies, IMP masks are read from the IMP
file, a rerun resumes, and the command's refusals."""
import json

import numpy as np
import pytest

from minilottery import layout
from minilottery.errors import ConfigError
from minilottery.experiments.imp import KIND as IMP_KIND
from minilottery.experiments.imp import IMPConfig, IMPExperiment
from minilottery.experiments.instability import InstabilityConfig, InstabilityExperiment, Segment, group, \
    segment, summary
from minilottery.nn.models import build_model
from minilottery.reports.instability import report
from minilottery.rng import Streams
from minilottery.store import ExperimentStore
from minilottery.train import TrainConfig, evaluate
from tests.helpers_data import tiny_mnist

TINY = dict(iterations=30, eval_every=10, lr=1e-3, points=4)


def _run(path, data, **kw):
    cfg = InstabilityConfig.paper(**{**TINY, **kw})
    with ExperimentStore(path, cfg.to_dict()) as store:
        InstabilityExperiment(cfg, store, data, log=lambda *a: None).run()
    return cfg, ExperimentStore.open_readonly(path)


def _imp(path, data, **kw):
    cfg = IMPConfig.paper("lenet_300_100", iterations=30, eval_every=10, lr=1e-3, rounds=2, reinit=0, **kw)
    with ExperimentStore(path, {"kind": IMP_KIND, **cfg.to_dict()}) as store:
        IMPExperiment(cfg, store, data, log=lambda *a: None).run()
    return cfg


def test_a_segment_follows_the_whole_schedule():
    full = TrainConfig(iterations=100, lr=0.1, schedule="cosine")
    seg = segment(full, 40, 100)
    assert isinstance(seg, Segment) and seg.iterations == 60
    for it in (1, 30, 60):
        assert seg.lr_at(it) == full.lr_at(40 + it)


def test_w_k_is_the_imp_dense_runs_own_snapshot_and_masks_come_from_the_imp_file(tmp_path):
    data = tiny_mnist()
    _imp(tmp_path / "imp.h5", data, rewind_iteration=10)
    imp = ExperimentStore.open_readonly(tmp_path / "imp.h5")
    _, store = _run(tmp_path / "i.h5", data, rewind_iteration=(0, 10), level=(0, 2), imp=str(tmp_path / "imp.h5"))
    w10 = store.read(group(0, "parent"))[0]["snapshots"]["000010"]
    for k, v in imp.read(layout.run(0, 0, "ticket"))[0]["snapshot"].items():
        np.testing.assert_array_equal(w10[k], v)                       # bitwise the IMP dense run's θ10
    for k, v in imp.read(layout.run(0, 2, "mask"))[0].items():
        np.testing.assert_array_equal(store.read(group(0, "mask", 2))[0][k], v)
    copy = store.read(group(0, "copy_0", 2, 10))[0]["weights"]
    mask = imp.read(layout.run(0, 2, "mask"))[0]
    assert all(np.all(copy[k][~m] == 0) for k, m in mask.items())      # the copies keep the IMP mask
    rows = summary(store)
    assert [(r["level"], r["rewind_iteration"]) for r in rows] == [(0, 0), (0, 10), (2, 0), (2, 10)]
    assert rows[2]["Pm"] < 1.0 == rows[0]["Pm"]


def test_the_copies_differ_by_data_order_and_are_the_paths_endpoints(tmp_path):
    data = tiny_mnist()
    cfg, store = _run(tmp_path / "i.h5", data, rewind_iteration=(0,))
    w = [store.read(group(0, f"copy_{c}", 0, 0))[0]["weights"] for c in (0, 1)]
    assert not np.array_equal(w[0]["fc1.W"], w[1]["fc1.W"])
    arrays, attrs = store.read(group(0, "path", 0, 0))
    assert arrays["test_error"].shape == (4,) and arrays["alpha"][0] == 0 and arrays["alpha"][-1] == 1
    model = build_model("lenet_300_100", Streams.from_seed(0))
    for c, end in ((0, 0), (1, -1)):
        model.set_weights(w[c])
        assert arrays["test_error"][end] == pytest.approx(1 - evaluate(model, *data.test)[1])
        assert attrs["endpoint_test_errors"][c] == arrays["test_error"][end]
    assert attrs["instability"] == pytest.approx(arrays["test_error"].max() - arrays["test_error"][[0, -1]].mean())
    row = summary(store)[0]
    assert isinstance(row["instability"], float) and len(row["train_error"]) == 4
    json.dumps(summary(store))


def test_a_rerun_resumes_and_the_report_shows_every_level_and_k(tmp_path):
    data, path = tiny_mnist(), tmp_path / "i.h5"
    _run(path, data, rewind_iteration=(0, 10), train_examples=0)
    lines = []
    cfg = InstabilityConfig.paper(**{**TINY, "rewind_iteration": (0, 10), "train_examples": 0})
    with ExperimentStore(path, cfg.to_dict()) as s:
        InstabilityExperiment(cfg, s, data, log=lines.append).run()
    assert not any("copy" in str(line) for line in lines)
    table = report(str(path), log=lambda *a: None)
    assert "| 0 | 100.0 | 0 |" in table and "| 0 | 100.0 | 10 |" in table
    assert "train_error" not in summary(ExperimentStore.open_readonly(path))[0]


@pytest.mark.parametrize("bad, match", [(dict(level=(1,)), "--imp"), (dict(rewind_iteration=(30,)), "--rewind-iteration"),
                                        (dict(order_seeds=(1, 1)), "--order-seeds"), (dict(points=1), "--points")])
def test_bad_options_are_refused(bad, match):
    with pytest.raises(ConfigError, match=match):
        InstabilityConfig.paper(**{**TINY, "rewind_iteration": (0, 10), **bad})


def test_the_command_takes_model_data_and_training_from_the_imp_file(tmp_path):
    from minilottery.commands.instability import imp_settings
    cfg = _imp(tmp_path / "imp.h5", tiny_mnist(200, 40), seed=3)
    got = imp_settings(str(tmp_path / "imp.h5"), {}, (0, 2))
    assert got["train"] == cfg.train and isinstance(got["train"].milestones, tuple)
    assert (got["model"], got["dataset"], got["seed"], got["trials"]) == (cfg.model, cfg.dataset, 3, cfg.trials)
    with pytest.raises(ConfigError, match="--level 3"):
        imp_settings(str(tmp_path / "imp.h5"), {}, (3,))
