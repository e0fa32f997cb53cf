"""The CuPy path, run on every commit: on the strict stand-in (tests/strict_cupy.py) and, where a GPU
is present, on CuPy. The stand-in refuses every implicit host conversion and counts every
synchronisation; these tests train, run every experiment kind, write and read the store, report
and bench with device arrays, and check the results against the NumPy backend's."""
import json
import pickle

import h5py
import numpy as np
import pytest

from minilottery import backend
from minilottery.__main__ import main as cli
from minilottery.backend import set_backend, to_numpy
from minilottery.nn.models import build_model
from minilottery.rng import Streams
from minilottery.train import TrainConfig, train
from tests import strict_cupy
from tests.helpers_data import tiny_mnist


# -- the stand-in is as strict as CuPy ---------------------------------------------------------
@pytest.fixture
def strict():
    with strict_cupy.installed():
        strict_cupy.SYNCS.reset()
        yield strict_cupy


@pytest.mark.cupy_path
def test_stand_in_refuses_implicit_host_conversions(strict, tmp_path):
    a = strict.asarray(np.arange(6, dtype=np.float32))
    for implicit in (np.asarray, np.exp, np.sum, lambda v: np.concatenate([v, v]),
                     lambda v: v + np.ones(6, np.float32), lambda v: np.ones(6, np.float32) * v,
                     lambda v: v.__setitem__(slice(None), np.zeros(6, np.float32)), pickle.dumps):
        with pytest.raises(TypeError):
            implicit(a)
    with h5py.File(tmp_path / "x.h5", "w") as f, pytest.raises(TypeError):
        f["a"] = a                                         # h5py converts with numpy.asarray
    for missing in (lambda: strict.bincount, lambda: a.nonexistent, lambda: strict.add.at):
        with pytest.raises(AttributeError):
            missing()
    assert strict.SYNCS.total == 0


@pytest.mark.cupy_path
def test_stand_in_counts_every_synchronisation(strict):
    a = strict.asarray(np.arange(6, dtype=np.float32))
    s = a.sum()
    assert isinstance(s, strict.ndarray) and s.shape == ()     # reductions stay on the device
    assert (a * 2 + np.float32(1)).dtype == np.float32           # scalars mix; no sync
    assert strict.SYNCS.total == 0
    float(s), int(s), bool(s), s.item(), a.get(), strict.asnumpy(a), to_numpy(a)
    a[a > 2]                                                     # a boolean mask: its size is read
    strict.flatnonzero(a)
    f"{s:.2f}"
    assert strict.SYNCS.kinds == {"float": 1, "int": 1, "bool": 1, "item": 1, "get": 3,
                                  "boolean index": 1, "flatnonzero": 1, "format": 1}
    with strict.SYNCS.counting() as window:
        float(s)
    assert window.total == 1 and strict.SYNCS.total == 11
    assert any("test_cupy_path.py" in w for w in window.where)   # says which line synchronised


def test_device_arrays_are_refused_by_the_store_and_by_pickling_to_workers(device, tmp_path):
    from minilottery.plan import Job
    from minilottery.store import ExperimentStore, StoreError
    w = backend.asarray(np.ones((2, 2), np.float32))
    with ExperimentStore(tmp_path / "e.h5", {"kind": "imp"}) as store, pytest.raises(StoreError, match="Implicit"):
        store.write("g", {"w": w}, {})
    if device is strict_cupy:                       # CuPy itself would pickle it, syncing: refused here
        with pytest.raises(TypeError):
            pickle.dumps(Job(len, (w,)))


def test_backend_knows_the_device_arrays(device):
    a = backend.asarray(np.ones(3, np.float32))
    assert backend.xp_of(a) is device and backend.is_device(a) and backend.backend_name() == "cupy"
    assert backend.xp_of(np.ones(3)) is np and backend.xp_of(1.0) is np
    np.testing.assert_allclose(to_numpy(backend.expit(a)), 1 / (1 + np.exp(-1.0)), rtol=1e-6)
    r = backend.device_rng(np.random.default_rng(0))
    assert backend.xp_of(r.random((2,), dtype=np.float32)) is device


# -- training ------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["lenet_300_100", "conv2"])
def test_training_on_the_device_follows_the_host(device, model):
    """Same seed: the same θ0 and batches; the curves agree to float32 rounding (no per-step noise)."""
    data = tiny_mnist(60, 20) if model == "conv2" else tiny_mnist(240, 60)
    cfg = TrainConfig(iterations=6, eval_every=3, batch_size=10, lr=1e-3)

    def run():
        net = build_model(model, Streams.from_seed(3), dataset="mnist")
        theta0 = net.get_weights()
        res = train(net, data, cfg, Streams.from_seed(4), progress=False)
        return theta0, res, net.get_weights()

    set_backend("numpy")
    host = run()
    set_backend("cupy")
    dev = run()
    for k in host[0]:
        assert dev[0][k].tobytes() == host[0][k].tobytes(), k     # θ0 drawn on the host: bitwise
    for k in ("train_loss", "val_loss", "test_loss"):
        np.testing.assert_allclose(dev[1].curves[k], host[1].curves[k], rtol=1e-4, atol=1e-5)
    for k in host[2]:
        np.testing.assert_allclose(dev[2][k], host[2][k], rtol=1e-3, atol=1e-5)
    assert isinstance(dev[2]["fc1.W"], np.ndarray)                  # get_weights returns host arrays


def test_dropout_trains_on_the_device(device):
    data = tiny_mnist(240, 60)
    net = build_model("lenet_300_100", Streams.from_seed(3), dataset="mnist", dropout=0.5)
    res = train(net, data, TrainConfig(iterations=8, eval_every=4, batch_size=30), Streams.from_seed(4),
                progress=False)
    assert np.all(np.isfinite(res.curves["train_loss"])) and 0 <= res.final_test_acc <= 1


# -- every experiment kind, the store and the reports, through the commands ----------------------
def _cli(tmp_path, mirror, argv, workers=True):
    common = ["--mirror", mirror, "--data-dir", str(tmp_path / "data"), "--quiet", "--backend", "cupy",
              "--eval-batch", "1000"]
    return cli(argv + common + (["--workers", "1"] if workers else []))


KINDS = {
    "imp": ["imp", "--rounds", "1", "--trials", "1", "--reinit", "1", "--random-pruning",
            "--iterations", "20", "--eval-every", "20"],
    "deconstructing": ["imp", "--criterion", "movement", "--mask1", "signed_constant", "--mask0", "variant2",
                       "--rounds", "1", "--reinit", "0", "--iterations", "20", "--eval-every", "20"],
    "supermask-learned": ["supermask", "--method", "learned", "--weights", "signed_constant", "--dwr", "dwr",
                          "--iterations", "20", "--eval-every", "20"],
    "supermask-edgepopup": ["supermask", "--method", "edgepopup", "--keep", "0.5", "--weights", "signed_kaiming",
                            "--iterations", "20", "--eval-every", "20"],
    "supermask-at-init": ["supermask", "--method", "at_init", "--keep", "0.5", "--iterations", "20",
                          "--eval-every", "20"],
    "jackpot": ["jackpot", "--sparsity", "0.9", "--iterations", "10", "--eval-every", "10",
                "--pretrain-iterations", "20", "--finetune-iterations", "10"],
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_experiment_kind_runs_stores_and_reports_on_the_device(device, kind, tmp_path, mirror, capsys):
    out, js = tmp_path / "e.h5", tmp_path / "e.json"
    argv = KINDS[kind] + ["--out", str(out)] + (["--json", str(js)] if kind.startswith(("super", "jack")) else [])
    assert _cli(tmp_path, mirror, argv) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "test" in text and out.with_suffix(".png").exists() or "plot" not in text
    from minilottery.store import ExperimentStore
    store = ExperimentStore.open_readonly(out)
    assert store.read_config(str(out))["kind"] in ("imp", "supermask", "jackpot")
    assert cli(["report", str(out), "--no-plot"]) == 0               # the report reads the host files
    assert "|" in capsys.readouterr().out
    if js.exists():
        assert json.loads(js.read_text())["config"]


def test_bench_runs_on_the_device(device, capsys):
    assert cli(["bench", "--backend", "cupy", "--repeats", "1", "--warmup", "1", "--cases", "lenet",
                "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "backend cupy" in out and any(line.startswith("| lenet |") for line in out.splitlines())


# -- the synchronisation budget ----------------------------------------------------------------
def _syncs_of_training(syncs, model, iterations, eval_every, net_of=None):
    data = tiny_mnist(60, 20)
    cfg = TrainConfig(iterations=iterations, eval_every=eval_every, batch_size=10, eval_batch=10)
    net = build_model(model, Streams.from_seed(0), dataset="mnist")
    net = net_of(net) if net_of else net
    with syncs.counting() as window:
        train(net, data, cfg, Streams.from_seed(1), progress=False)
    return window


@pytest.mark.parametrize("model", ["lenet_300_100", "conv2"])
def test_one_synchronisation_per_evaluation_interval_and_none_per_step(syncs, model):
    """Counted by the stand-in: each evaluation interval reads its training sums and both evaluations
    in one transfer, whatever eval_every is; a training step reads nothing; the end of a run reads the
    training split's accuracy once."""
    two = _syncs_of_training(syncs, model, 4, 2)           # 2 intervals of 2 steps
    four = _syncs_of_training(syncs, model, 8, 4)          # 2 intervals of 4 steps
    eight = _syncs_of_training(syncs, model, 8, 2)         # 4 intervals of 2 steps
    assert two.total == four.total == 2 + 1, two.where      # steps add nothing
    assert eight.total == 4 + 1, eight.where                 # one per interval
    assert set(two.kinds) == {"get"}


def test_supermask_and_mask_search_steps_read_nothing_back(syncs):
    """DWR's Σg, edge-popup's top-k and the jackpot's swap rule stay on the device: still one read per
    evaluation interval (the learned supermask's evaluation sample is drawn on the device too)."""
    from minilottery.lottery.edgepopup import EdgePopup
    from minilottery.lottery.jackpot import Jackpot, layer_budgets
    from minilottery.lottery.supermask import LearnedSupermask
    makers = {
        "dwr": lambda net: LearnedSupermask(net, np.random.default_rng(0), dwr=True),
        "edgepopup": lambda net: EdgePopup(net, 0.5, np.random.default_rng(0)),
        "jackpot": lambda net: Jackpot(net, layer_budgets(net.get_weights(), 0.5, kinds=net.weight_kinds())),
    }
    for name, make in makers.items():
        short = _syncs_of_training(syncs, "lenet_300_100", 4, 2, make)
        long = _syncs_of_training(syncs, "lenet_300_100", 8, 4, make)
        assert short.total == long.total == 2 + 1, (name, long.where)


def test_device_top_k_and_swap_rule_match_the_host_reference(device):
    """drop_lowest and swap_update decide on the device exactly as the host code does, ties included."""
    from minilottery.lottery.edgepopup import drop_lowest
    from minilottery.lottery.jackpot import swap_update
    rng = np.random.default_rng(7)
    for _ in range(20):
        a = rng.integers(0, 5, size=(6, 7)).astype(np.float32)        # many ties
        j = int(rng.integers(0, a.size))
        np.testing.assert_array_equal(to_numpy(drop_lowest(backend.asarray(a), j)), drop_lowest(a, j))
        scores = rng.integers(0, 6, size=40).astype(np.float32)
        mask = np.ones(40, np.float32)
        mask[rng.choice(40, 15, replace=False)] = 0
        host, n = swap_update(scores, mask, 15)
        dev, n_dev = swap_update(backend.asarray(scores), backend.asarray(mask), 15)
        np.testing.assert_array_equal(to_numpy(dev), host)
        assert int(n_dev) == n


@pytest.mark.parametrize("name,kw", [("adam", {"weight_decay": 1e-3}), ("adam", {}),
                                     ("momentum", {}), ("momentum", {"nesterov": True, "weight_decay": 1e-2})])
def test_fused_device_update_is_the_reference_rule(syncs, name, kw):
    """On the device each parameter's update is one fused kernel (nn/fused.py); on the stand-in that
    kernel runs as plain NumPy, so it must give optim.py's reference update bit for bit, frozen
    entries (holding an inf that must not leak) included."""
    from minilottery.nn.optim import make_optimizer
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((50, 30)).astype(np.float32)
    mask = (rng.random(w0.shape) < 0.6).astype(np.float32)
    w0.reshape(-1)[np.flatnonzero(mask == 0)[:3]] = np.inf
    grads = [rng.standard_normal(w0.shape).astype(np.float32) for _ in range(4)]

    def run(to):
        w = to(w0.copy())
        opt = make_optimizer(name, {"w": w}, 1e-2, **kw)
        for g in grads:
            opt.step({"w": to(g)}, {"w": to(mask)})
        return to_numpy(w), opt.state_dict()

    with np.errstate(invalid="ignore"):
        set_backend("numpy")
        host = run(np.asarray)
        set_backend("cupy")
        dev = run(backend.asarray)
    assert np.isinf(host[0]).sum() == 3
    assert dev[0].tobytes() == host[0].tobytes()
    assert all(dev[1][k].tobytes() == host[1][k].tobytes() for k in host[1] if k != "t")
