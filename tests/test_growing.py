"""Growing an experiment: a configuration that only adds runs continues its file (finished runs bitwise
as they were); one that would change a finished run is refused, naming only what differs."""
import numpy as np
import pytest

from minilottery import identity
from minilottery.errors import StoreError
from minilottery.experiments.imp import IMPConfig, IMPExperiment
from minilottery.store import ExperimentStore
from tests.helpers_data import all_arrays, tiny_mnist

TRAIN = dict(iterations=20, eval_every=10, batch_size=30)


def run(path, **given):
    """Run (or grow) an IMP experiment into ``path``; returns the configuration the file now holds."""
    cfg = IMPConfig.paper("lenet_300_100", **{**TRAIN, **given})
    with ExperimentStore(path, cfg.to_dict(), grow=True) as store:
        IMPExperiment(identity.apply(cfg, store.config), store, tiny_mnist(), log=lambda *a: None).run()
        return store.config, store.grown


def test_two_rounds_then_three_keep_the_first_two_bitwise_and_match_a_fresh_three(tmp_path):
    grown, fresh = tmp_path / "grown.h5", tmp_path / "fresh.h5"
    run(grown, rounds=2)
    before = all_arrays(grown)
    config, changed = run(grown, rounds=3)
    assert config["rounds"] == 3 and changed == ["rounds: 2 -> 3"]
    after = all_arrays(grown)
    assert set(before) < set(after)
    for name, a in before.items():                                # levels 0-2 (and θ0): the same bytes
        assert after[name].dtype == a.dtype and after[name].tobytes() == a.tobytes(), name
    run(fresh, rounds=3)
    reference = all_arrays(fresh)
    assert set(reference) == set(after)
    for name in (n for n in reference if "/levels/003/" in n):  # level 3 as a fresh 3-round run made it
        np.testing.assert_array_equal(after[name], reference[name], err_msg=name)
    assert any("/levels/003/ticket/" in n for n in after)
    assert ExperimentStore.read_config(grown) == ExperimentStore.read_config(fresh)


def test_trials_controls_and_control_levels_grow_too(tmp_path):
    path = tmp_path / "e.h5"
    run(path, rounds=3, control_levels=(1,))
    config, changed = run(path, rounds=3, trials=2, reinit=2, random_pruning=True, control_levels=(3,))
    assert (config["trials"], config["reinit"], config["random_pruning"], config["control_levels"]) == (2, 2, True,
                                                                                                          [1, 3])
    store = ExperimentStore.open_readonly(path)
    for t in ("00", "01"):
        for level in ("001", "003"):
            assert all(store.done(f"trials/{t}/levels/{level}/{r}") for r in ("reinit_0", "reinit_1", "random_0"))
        assert not store.done(f"trials/{t}/levels/002/reinit_0")     # controls only where asked
    _, again = run(path, rounds=1, control_levels=(1,))              # asking for less: the file stays whole
    assert again == [] and ExperimentStore.read_config(path)["rounds"] == 3
    _, every = run(path, rounds=3)                                   # the default: controls at every level
    assert every == ["control_levels: 1+3 -> all"]
    assert ExperimentStore.open_readonly(path).done("trials/01/levels/002/random_0")


@pytest.mark.parametrize("change, named", [(dict(lr=2e-3), "train.lr"), (dict(seed=1), "seed"),
                                           (dict(criterion="movement"), "criterion")])
def test_a_change_that_would_alter_a_finished_run_is_refused_naming_only_it(tmp_path, change, named):
    path = tmp_path / "e.h5"
    run(path, rounds=1, reinit=0)
    with pytest.raises(StoreError) as e:
        run(path, rounds=2, **change)
    msg = str(e.value)
    assert named in msg and "rounds" not in msg and "iterations" not in msg and "batch_size" not in msg
    assert ExperimentStore.read_config(path)["rounds"] == 1            # nothing grew


def test_without_grow_any_difference_is_refused_by_name(tmp_path):
    cfg = IMPConfig.paper("lenet_300_100", rounds=1, **TRAIN)
    with ExperimentStore(tmp_path / "e.h5", cfg.to_dict()):
        pass
    other = IMPConfig.paper("lenet_300_100", rounds=2, **{**TRAIN, "lr": 1e-3})
    with pytest.raises(StoreError, match=r"\(rounds: file has 1, asked 2; train\.lr: file has 0\.0012, asked 0\.001\)"):
        ExperimentStore(tmp_path / "e.h5", other.to_dict())


def test_default_names_carry_the_settings_and_never_collide():
    ref = IMPConfig.paper("lenet_300_100").to_dict()
    name = lambda **g: identity.default_out(IMPConfig.paper("lenet_300_100", **g).to_dict(), ref)  # noqa: E731
    assert name() == "runs/lenet_300_100_mnist_imp.h5"
    assert name(criterion="movement") == "runs/lenet_300_100_mnist_imp-criterion=movement.h5"
    assert name(rounds=3, trials=2) == name()                         # growing keeps the file
    variants = [dict(criterion="movement"), dict(mask1="signed_constant"), dict(lr=1e-3), dict(lr=2e-3),
                dict(iterations=1000, lr=1e-3, criterion="movement", mask0="variant2", seed=3),
                dict(iterations=1000, lr=1e-3, criterion="movement", mask0="variant2", seed=4)]
    names = [name(**v) for v in variants]
    assert len(set(names)) == len(names)
    assert len(names[-1]) < 60 and names[-1] == name(seed=4, mask0="variant2", criterion="movement", lr=1e-3,
                                                     iterations=1000)   # stable: order of flags is no matter


def test_another_comparison_and_another_sparsity_grow_their_files(tmp_path):
    from minilottery.experiments.deconstructing import DeconstructingConfig, DeconstructingExperiment
    from minilottery.experiments.jackpot import JackpotConfig, JackpotExperiment
    data, quiet = tiny_mnist(), dict(log=lambda *a: None)
    imp = IMPConfig.paper("lenet_300_100", rounds=1, reinit=0, **TRAIN)
    path = tmp_path / "d.h5"
    for comparisons in (("mask0",), ("mask0", "mask1")):
        cfg = DeconstructingConfig(imp=imp, comparisons=comparisons)
        with ExperimentStore(path, cfg.to_dict(), grow=True) as store:
            before = all_arrays(path) if len(comparisons) > 1 else {}
            DeconstructingExperiment(identity.apply(cfg, store.config), store, data, **quiet).run()
    after = all_arrays(path)
    assert all(after[k].tobytes() == v.tobytes() for k, v in before.items())
    assert any("signed_constant" in k for k in after) and ExperimentStore.read_config(path)["comparisons"] == [
        "mask0", "mask1"]
    path = tmp_path / "j.h5"
    for sparsities in ((0.9,), (0.5, 0.9)):
        cfg = JackpotConfig.paper("lenet_300_100", pretrain_iterations=20, iterations=10, eval_every=5, batch_size=32,
                                  finetune_iterations=10, sparsities=sparsities)
        with ExperimentStore(path, cfg.to_dict(), grow=True) as store:
            JackpotExperiment(identity.apply(cfg, store.config), store, data, **quiet).run()
    store = ExperimentStore.open_readonly(path)
    assert store.config["sparsities"] == [0.9, 0.5] and store.done("sparsity/0.50/overlap")


def test_another_pai_method_and_another_instability_level_grow_their_files(tmp_path):
    from minilottery.experiments.instability import InstabilityConfig, InstabilityExperiment
    from minilottery.experiments.prune_at_init import PruneAtInitConfig, PruneAtInitExperiment
    data, quiet = tiny_mnist(), dict(log=lambda *a: None)
    path = tmp_path / "p.h5"
    for methods in (("magnitude",), ("random", "magnitude")):
        cfg = PruneAtInitConfig.paper("lenet_300_100", method=methods, sparsity=(0.5,), **TRAIN)
        before = all_arrays(path) if path.exists() else {}
        with ExperimentStore(path, cfg.to_dict(), grow=True) as store:
            PruneAtInitExperiment(identity.apply(cfg, store.config), store, data, **quiet).run()
    after = all_arrays(path)
    assert before and all(after[k].tobytes() == v.tobytes() for k, v in before.items())
    assert ExperimentStore.read_config(path)["method"] == ["magnitude", "random"]
    assert any("random-none" in k for k in after)
    imp = tmp_path / "imp.h5"
    run(imp, rounds=2, reinit=0)
    path = tmp_path / "i.h5"
    for levels in ((0,), (0, 2)):
        cfg = InstabilityConfig.paper("lenet_300_100", level=levels, rewind_iteration=(0,), imp=str(imp),
                                      points=3, **TRAIN)
        before = all_arrays(path) if path.exists() else {}
        with ExperimentStore(path, cfg.to_dict(), grow=True) as store:
            InstabilityExperiment(identity.apply(cfg, store.config), store, data, **quiet).run()
    after = all_arrays(path)
    assert before and set(before) < set(after)
    assert all(after[k].tobytes() == v.tobytes() for k, v in before.items())
    with pytest.raises(StoreError, match="rewind_iteration"):                  # the parent would change: refused
        cfg = InstabilityConfig.paper("lenet_300_100", level=(0,), rewind_iteration=(0, 10), imp=str(imp),
                                      points=3, **TRAIN)
        ExperimentStore(path, cfg.to_dict(), grow=True)


def test_default_names_of_the_follow_up_kinds_carry_their_settings():
    from minilottery import api
    from minilottery.experiments.prune_at_init import PruneAtInitConfig
    base = api.default_out(PruneAtInitConfig.paper("lenet_300_100"))
    assert base == "runs/lenet_300_100_mnist_prune_at_init.h5"
    assert api.default_out(PruneAtInitConfig.paper("lenet_300_100", method=("snip",))) == base   # methods grow it
    assert api.default_out(PruneAtInitConfig.paper("lenet_300_100", lr=1e-3)) != base
