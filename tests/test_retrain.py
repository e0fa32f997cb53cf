"""IMP's --retrain: rewind (the LTH, the default), lr_rewind (Renda et al.: the final weights,
masked, with the schedule replayed) and finetune (the final weights at the final rate)."""
import numpy as np
import pytest

from minilottery import layout
from minilottery.errors import ConfigError
from minilottery.experiments.imp import KIND, IMPConfig, IMPExperiment, finetune_config
from minilottery.store import ExperimentStore
from tests.helpers_data import tiny_mnist

SMALL = dict(iterations=20, eval_every=10, rounds=2, reinit=0, lr=1e-3)


def _experiment(path, **kw):
    cfg = IMPConfig.paper("lenet_300_100", **{**SMALL, **kw})
    store = ExperimentStore(path, {"kind": KIND, **cfg.to_dict()})
    return IMPExperiment(cfg, store, tiny_mnist(), log=lambda *a: None), store


def test_rewind_is_the_default_and_starts_from_theta0(tmp_path):
    assert IMPConfig.paper("lenet_300_100").retrain == "rewind"
    exp, store = _experiment(tmp_path / "e.h5")
    with store:
        exp.run()
        job = exp.job(0, 1, "ticket")
        theta, mask, run_cfg = job.args[4], job.args[5], job.args[0]
        theta0 = store.read(layout.run(0, name="theta0"))[0]
        kept = mask["fc1.W"] == 1
        np.testing.assert_array_equal(theta["fc1.W"][kept], theta0["fc1.W"][kept])
        np.testing.assert_array_equal(theta["fc1.b"], theta0["fc1.b"])
        assert run_cfg is exp.cfg                                  # today's run, untouched


@pytest.mark.parametrize("retrain", ["lr_rewind", "finetune"])
def test_lr_rewind_and_finetune_keep_the_previous_levels_final_weights(tmp_path, retrain):
    exp, store = _experiment(tmp_path / "e.h5", retrain=retrain, schedule="cosine")
    with store:
        exp.run()
        for level in (1, 2):
            job = exp.job(0, level, "ticket")
            theta, mask, run_cfg = job.args[4], job.args[5], job.args[0]
            final = store.read(layout.run(0, level - 1, "ticket"))[0]["weights"]
            for k, v in final.items():                             # the kept weights, and every bias
                kept = mask[k] == 1 if k in mask else slice(None)
                np.testing.assert_array_equal(theta[k][kept], v[kept])
            t = exp.cfg.train
            if retrain == "lr_rewind":
                assert run_cfg.train == t                          # the whole schedule replayed
            else:
                assert run_cfg.train.schedule == "constant" and run_cfg.train.lr == t.lr_at(t.iterations)
                assert run_cfg.train.iterations == t.iterations    # the same retraining budget
            w = store.read(layout.run(0, level, "ticket"))[0]["weights"]
            m = store.read(layout.run(0, level, "mask"))[0]
            assert all(np.all(w[k][~mk] == 0) for k, mk in m.items())


def test_finetune_runs_at_the_last_rate_of_the_schedule():
    cfg = IMPConfig.paper("lenet_300_100", iterations=100, lr=0.1, schedule="cosine", retrain="finetune")
    ft = finetune_config(cfg.train)
    assert ft.lr == pytest.approx(0.05 * (1 + np.cos(np.pi * 99 / 100))) and ft.lr_at(1) == ft.lr_at(100)


@pytest.mark.parametrize("bad", [dict(rewind_iteration=5), dict(mask1="reinit"), dict(retrain="rewound")])
def test_retrain_choices_that_do_not_fit_are_refused(bad):
    with pytest.raises(ConfigError, match="--retrain|--rewind-iteration|--mask1"):
        IMPConfig.paper("lenet_300_100", **{**SMALL, "retrain": "lr_rewind", **bad})
