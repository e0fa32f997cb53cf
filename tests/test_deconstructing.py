"""Deconstructing comparisons inside IMP: the defaults are the LTH, variants share the dense run,
frozen values never train, and every name is checked before any file exists."""
import numpy as np
import pytest

from minilottery import layout
from minilottery.errors import ConfigError
from minilottery.experiments import imp_runs as imp_mod
from minilottery.experiments.deconstructing import DeconstructingConfig, DeconstructingExperiment, variants
from minilottery.experiments.imp import IMPConfig, IMPExperiment
from minilottery.lottery.pruning import magnitude_prune, ones_masks
from minilottery.nn.models import build_model
from minilottery.rng import Streams
from minilottery.store import ExperimentStore
from tests.helpers_data import all_arrays, tiny_mnist

SMALL = dict(iterations=20, eval_every=10, rounds=2, trials=1, reinit=0, lr=1e-3)


def _imp(path, data, **kw):
    cfg = IMPConfig.paper("lenet_300_100", **{**SMALL, **kw})
    with ExperimentStore(path, cfg.to_dict()) as store:
        IMPExperiment(cfg, store, data, log=lambda *a: None).run()
    return ExperimentStore.open_readonly(path)


def test_default_choices_are_the_lth_magnitude_pruning(tmp_path):
    """Level 1's mask is today's magnitude pruning of the dense run; the ticket starts at θ0 ⊙ mask."""
    s = _imp(tmp_path / "e.h5", tiny_mnist())
    dense = s.read(layout.run(0, 0, "ticket"))[0]["weights"]
    final = {k: v for k, v in dense.items() if k.endswith(".W")}
    kinds = build_model("lenet_300_100", Streams.from_seed(0)).weight_kinds()
    rates = {k: {"fc": 0.2, "output": 0.1}[kinds[k]] for k in final}
    expected = magnitude_prune(final, ones_masks(final), rates)
    mask = s.read(layout.run(0, 1, "mask"))[0]
    for k in final:
        np.testing.assert_array_equal(mask[k], expected[k].astype(bool))
    assert "fill" not in s.read(layout.run(0, 1, "ticket"))[0]       # zero: nothing frozen at a value


@pytest.mark.parametrize("mask0", ["freeze_init", "variant1", "variant2"])
def test_frozen_values_never_train(tmp_path, mask0):
    """Under a freezing mask-0 action, W_eff at pruned positions is the stored fill, bit for bit,
    the fill is θ0 or 0 there (never a trained value), and trained W stays exactly 0 there."""
    s = _imp(tmp_path / "e.h5", tiny_mnist(), mask0=mask0)
    theta0 = s.read(layout.run(0, name="theta0"))[0]
    for level in (1, 2):
        run = s.read(layout.run(0, level, "ticket"))[0]
        mask = s.read(layout.run(0, level, "mask"))[0]
        for k, m in mask.items():
            fill, w = run["fill"][k], run["weights"][k]
            assert np.all(w[~m] == 0) and np.all(fill[m] == 0)
            assert np.all((fill[~m] == theta0[k][~m]) | (fill[~m] == 0))
            if mask0 == "freeze_init":
                np.testing.assert_array_equal(fill[~m], theta0[k][~m])


def test_variants_share_theta0_and_the_dense_run(tmp_path, monkeypatch):
    data, calls = tiny_mnist(), []
    real = imp_mod.train
    monkeypatch.setattr(imp_mod, "train", lambda *a, **kw: calls.append(kw["label"]) or real(*a, **kw))
    cfg = DeconstructingConfig(imp=IMPConfig.paper("lenet_300_100", **SMALL), comparisons=("mask0",))
    path = tmp_path / "d.h5"
    with ExperimentStore(path, cfg.to_dict()) as store:
        DeconstructingExperiment(cfg, store, data, log=lambda *a: None).run()
    assert sum("level 0" in c for c in calls) == 1                   # one dense run for four variants
    assert len(calls) == 1 + 4 * SMALL["rounds"]
    # the LTH variant of the comparison equals a plain IMP experiment, bit for bit
    plain = all_arrays(_imp(tmp_path / "plain.h5", data).path)
    lth = "large_final-rewind-zero"
    mixed = all_arrays(path)
    for name, a in plain.items():
        other = name if "/levels/000/" in name or name.endswith("theta0/fc1.W") or "/theta0/" in name \
            else f"/{layout.VARIANTS}/{lth}{name}"
        assert a.tobytes() == mixed[other].tobytes(), name


def test_names_refused_before_anything_runs():
    with pytest.raises(ConfigError, match="unknown comparison 'signs'"):
        variants("signs")
    with pytest.raises(ConfigError, match="criterion"):
        IMPConfig.paper("lenet_300_100", criterion="largest")
    with pytest.raises(ConfigError, match="mask0"):
        IMPConfig.paper("lenet_300_100", mask0="freeze")
    IMPConfig.paper("lenet_300_100", global_pruning=True, criterion="movement")  # global ranks any criterion
