"""The IMP experiment: resets, controls, resumability, refusals."""
import numpy as np
import pytest

from minilottery.experiments import imp_runs as imp_mod
from minilottery import layout
from minilottery.errors import ConfigError
from minilottery.experiments.imp import IMPConfig, IMPExperiment
from minilottery.lottery.resets import reinit_control, reset
from minilottery.nn.models import build_model
from minilottery.reports.imp import collect, format_table, report
from minilottery.rng import Streams
from minilottery.store import ExperimentStore, StoreError
from tests.helpers_data import all_arrays, tiny_mnist

SMALL = dict(iterations=20, eval_every=10, rounds=2, trials=1, reinit=1, random_pruning=True, lr=1e-3)


def _experiment(path, data, **kw):
    cfg = IMPConfig.paper("lenet_300_100", **{**SMALL, **kw})
    return IMPExperiment(cfg, ExperimentStore(path, cfg.to_dict()), data,
                         log=lambda *a: None)


def test_theta0_restored_bitwise_under_mask():
    model = build_model("lenet_300_100", Streams.from_seed(1))
    theta0 = model.get_weights()
    rng = np.random.default_rng(0)
    masks = {k: (rng.random(v.shape) > 0.5).astype(np.float32) for k, v in theta0.items() if k.endswith(".W")}
    for p in model.params().values():
        p += 1.0                                                    # "training"
    reset(model, theta0, masks)
    for k, v in model.get_weights().items():
        expected = theta0[k] * masks[k] if k in masks else theta0[k]
        np.testing.assert_array_equal(v, expected)
    model.params()["fc1.b"] += 1.0                                  # biases were copied, not aliased
    assert not np.array_equal(model.params()["fc1.b"], theta0["fc1.b"])


def test_random_reinit_differs_from_theta0_but_keeps_mask():
    theta0 = build_model("lenet_300_100", Streams.from_seed(1)).get_weights()
    theta_r = reinit_control("lenet_300_100", Streams.from_seed(99), "mnist")
    model = build_model("lenet_300_100", Streams.from_seed(5))
    masks = {k: (np.random.default_rng(0).random(v.shape) > 0.7).astype(np.float32)
             for k, v in theta0.items() if k.endswith(".W")}
    reset(model, theta_r, masks)
    for k, m in masks.items():
        w = model.get_weights()[k]
        assert np.all(w[m == 0] == 0) and np.all(w[m == 1] != 0)
        assert not np.array_equal(w[m == 1], theta0[k][m == 1])
        # same distribution: Glorot std
        assert np.std(theta_r[k]) == pytest.approx(np.std(theta0[k]), rel=0.1)


def test_experiment_records_every_run_and_masks_shrink(tmp_path):
    path = tmp_path / "e.h5"
    _experiment(path, tiny_mnist(), trials=2, reinit=2).run()
    s = ExperimentStore.open_readonly(path)
    for t in range(2):
        prev = None
        for level in range(1, 3):
            for run in ("mask", "ticket", "reinit_0", "reinit_1", "random_0"):
                assert s.done(layout.run(t, level, run)), (t, level, run)
            mask, attrs = s.read(layout.run(t, level, "mask"))
            if prev is not None:
                assert all(np.all(mask[k] <= prev[k]) for k in mask)
            prev = mask
            ticket = s.read(layout.run(t, level, "ticket"))[0]
            assert all(np.all(ticket["weights"][k][~mask[k]] == 0) for k in mask)
            rnd, _ = s.read(layout.run(t, level, "random_0"))
            # the random mask keeps the ticket's per-layer counts (trained weights are never exactly 0)
            assert {k: int(mask[k].sum()) for k in mask} == {k: int((rnd["weights"][k] != 0).sum()) for k in mask}
        pm = s.attrs(layout.run(t, 2, "mask"))["Pm"]
        assert pm == pytest.approx((0.8 ** 2 * 265200 + 0.9 ** 2 * 1000) / 266200, abs=1e-4)
    table = format_table(collect(str(path)))
    assert "winning ticket" in table and "random reinit" in table and "random pruning" in table
    assert len(table.splitlines()) == 2 + 3                         # header, rule, 3 levels


def test_resume_after_interruption_gives_identical_results(tmp_path, monkeypatch):
    data = tiny_mnist()
    _experiment(tmp_path / "straight.h5", data, trials=2).run()

    calls = {"n": 0}
    real_train = imp_mod.train

    def interrupted(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 5:                                         # mid level 1, after its ticket
            raise KeyboardInterrupt
        return real_train(*a, **kw)

    monkeypatch.setattr(imp_mod, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _experiment(tmp_path / "resumed.h5", data, trials=2).run()
    monkeypatch.setattr(imp_mod, "train", real_train)
    _experiment(tmp_path / "resumed.h5", data, trials=2).run()                 # same command again

    a, b = all_arrays(tmp_path / "straight.h5"), all_arrays(tmp_path / "resumed.h5")
    assert a.keys() == b.keys() and len(a) > 50                   # every run's weights and curves
    assert any(k.endswith("reinit_0/weights/fc1.W") for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_mismatched_configuration_refused(tmp_path):
    path = tmp_path / "e.h5"
    _experiment(path, tiny_mnist(), rounds=1, trials=1, reinit=0, random_pruning=False).run()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="another configuration"):
        _experiment(path, tiny_mnist(), rounds=1, trials=1, reinit=0, random_pruning=False, lr=5e-4)
    assert path.read_bytes() == before


def test_late_resetting_rewinds_to_iteration_k(tmp_path):
    path = tmp_path / "e.h5"
    _experiment(path, tiny_mnist(), rounds=1, trials=1, reinit=0, random_pruning=False, rewind_iteration=10).run()
    s = ExperimentStore.open_readonly(path)
    dense = s.read(layout.run(0, 0, "ticket"))[0]
    theta0 = s.read(layout.run(0, name="theta0"))[0]
    assert not np.array_equal(dense["snapshot"]["fc1.W"], theta0["fc1.W"])


def test_late_resetting_freezes_pruned_weights_at_theta_k(tmp_path):
    """Under late resetting, mask-1 and mask-0 both work from θk: freeze_init freezes at θk, not θ0."""
    path = tmp_path / "e.h5"
    _experiment(path, tiny_mnist(), rounds=1, trials=1, reinit=0, random_pruning=False, rewind_iteration=10,
                mask0="freeze_init").run()
    s = ExperimentStore.open_readonly(path)
    theta_k = s.read(layout.run(0, 0, "ticket"))[0]["snapshot"]
    ticket = s.read(layout.run(0, 1, "ticket"))[0]
    mask = s.read(layout.run(0, 1, "mask"))[0]["fc1.W"]
    assert not mask.all()
    np.testing.assert_array_equal(ticket["fill"]["fc1.W"][~mask], theta_k["fc1.W"][~mask])


def test_oneshot_prunes_from_dense_to_the_iterative_fractions(tmp_path):
    path = tmp_path / "e.h5"
    _experiment(path, tiny_mnist(), rounds=2, trials=1, reinit=0, random_pruning=False, oneshot=True).run()
    s = ExperimentStore.open_readonly(path)
    m2 = s.read(layout.run(0, 2, "mask"))[0]
    assert m2["fc1.W"].mean() == pytest.approx(0.64, abs=1e-3)
    assert m2["fc3.W"].mean() == pytest.approx(0.81, abs=1e-3)


@pytest.mark.parametrize("bad", [dict(rounds=0), dict(trials=0), dict(control_levels=(9,)),
                                 dict(rewind_iteration=50), dict(fc_rate=1.0), dict(output_rate=1.0), dict(output_rate=-0.1),
                                 dict(dataset="foo"), dict(optimizer="rmsprop"),
                                 dict(seed=-1), dict(batch_size=100_000), dict(dropout=1.5),
                                 dict(conv_rate=0.5)])
def test_bad_experiment_config_refused(bad):
    with pytest.raises(ConfigError):
        IMPConfig.paper("lenet_300_100", **{**SMALL, **bad})


def test_report_writes_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "e.h5"
    _experiment(path, tiny_mnist(), rounds=1, trials=2, reinit=1, random_pruning=False).run()
    lines = []
    table = report(str(path), log=lines.append)
    assert (tmp_path / "e.png").stat().st_size > 1000
    assert "| 0 | 100.0 |" in table and any("plot:" in line for line in lines)
