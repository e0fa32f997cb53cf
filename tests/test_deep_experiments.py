"""Every experiment kind takes the deeper networks (tiny widths, tiny data): IMP with global pruning
that never touches BatchNorm, the 1×1 shortcuts or the output layer, a Deconstructing criterion and
action, supermasks, edge-popup and jackpots; BatchNorm parameters are never masked or scored."""
import pytest

from minilottery import backend, layout
from minilottery.experiments import jackpot as jx
from minilottery.experiments.imp import IMPConfig, IMPExperiment
from minilottery.experiments.supermask import SupermaskConfig, SupermaskExperiment
from minilottery.store import ExperimentStore
from tests.helpers_data import tiny_mnist

pytestmark = pytest.mark.slow
TINY = dict(iterations=4, eval_every=4, batch_size=16, width=1 / 16)


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield


@pytest.fixture(scope="module")
def data():
    d = tiny_mnist(64, 32)
    d.name = "mnist"                         # the §4 protocols' standard augmentation is per dataset
    return d


@pytest.mark.parametrize("model,extra", [("resnet20", {}), ("vgg11", dict(criterion="movement", mask1="reinit"))])
def test_imp_prunes_globally_and_leaves_the_paper_s_layers_dense(tmp_path, data, model, extra):
    cfg = IMPConfig.paper(model, dataset="mnist", rounds=2, **TINY, **extra)
    assert cfg.global_pruning and cfg.output_rate == 0.0 and cfg.train.optimizer == "momentum"
    IMPExperiment.check(cfg)
    with ExperimentStore(tmp_path / "e.h5", cfg.to_dict()) as store:
        IMPExperiment(cfg, store, data, log=lambda *a: None).run()
    s = ExperimentStore.open_readonly(tmp_path / "e.h5")
    theta0 = s.read(layout.run(0, name="theta0"))[0]
    assert any(k.endswith("running_var") for k in theta0) and any(k.endswith("gamma") for k in theta0)
    prev = None
    for level in (1, 2):
        mask = s.read(layout.run(0, level, "mask"))[0]
        assert not any("bn" in k or k.endswith(("gamma", "beta")) for k in mask)      # BN never masked
        assert mask["fc.W"].all()                                                   # output layer dense
        assert all(m.all() for k, m in mask.items() if "shortcut" in k)             # shortcuts dense
        pruned = [k for k in mask if k != "fc.W" and "shortcut" not in k]
        kept = sum(int(mask[k].sum()) for k in pruned) / sum(mask[k].size for k in pruned)
        assert kept == pytest.approx(0.8 ** level, abs=1e-3)
        if prev is not None:
            assert all((mask[k] <= prev[k]).all() for k in mask)
        prev = mask
        ticket = s.read(layout.run(0, level, "ticket"))[0]["weights"]
        assert set(ticket) == set(theta0)


@pytest.mark.parametrize("method,kw", [("at_init", dict(keep=(0.5,))), ("learned", dict(dwr="dwr")),
                                       ("edgepopup", dict(keep=(0.5,)))])
def test_supermask_methods_take_resnet20(tmp_path, data, method, kw):
    cfg = SupermaskConfig.paper(method, "resnet20", dataset="mnist", **TINY, **kw)
    with ExperimentStore(tmp_path / "s.h5", cfg.to_dict()) as store:
        SupermaskExperiment(cfg, store, data, log=lambda *a: None).run()


def test_jackpot_takes_vgg11(tmp_path, data):
    cfg = jx.JackpotConfig.paper("vgg11", dataset="mnist", pretrain_iterations=4, finetune_iterations=2,
                                 sparsities=(0.5,), **TINY)
    with ExperimentStore(tmp_path / "j.h5", cfg.to_dict()) as store:
        jx.JackpotExperiment(cfg, store, data, log=lambda *a: None).run()
