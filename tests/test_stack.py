"""Stacked runs: R runs trained as one network give each run what it gets alone."""
import numpy as np
import pytest

from minilottery import backend, blas
from minilottery.nn import Conv2d, Dense, Flatten, MaxPool2d, ReLU, Sequential
from minilottery.nn.models import build_model
from minilottery.nn.stacked import StackedNet
from minilottery.rng import Streams
from minilottery.stack import train_stacked
from minilottery.train import TrainConfig, train
from tests.helpers_data import tiny_mnist

CFG = TrainConfig(iterations=12, eval_every=4, batch_size=20, lr=1.2e-3)


def small_convs(rng):
    """Every convolution path: the grid with one input channel and with four, a 2×2 pool, and a
    strided convolution on the output positions (colconv.py), then a Dense output."""
    layers = [("conv1", Conv2d(1, 4, 3, rng, padding=1)), ("relu1", ReLU()),
              ("conv2", Conv2d(4, 6, 3, rng, padding=1)), ("relu2", ReLU()), ("pool", MaxPool2d(2)),
              ("conv3", Conv2d(6, 8, 3, rng, stride=2, padding=1)), ("relu3", ReLU()), ("flat", Flatten()),
              ("fc", Dense(8 * 7 * 7, 10, rng))]
    layers[-1][1].output = True
    return Sequential(layers, (1, 28, 28))


def _nets(seeds, masked, model="lenet"):
    nets = [build_model("lenet_300_100", Streams.from_seed(s)) if model == "lenet"
            else small_convs(np.random.default_rng(s)) for s in seeds]
    if masked:
        for s, net in zip(seeds, nets):
            r = np.random.default_rng(100 + s)
            net.set_masks({k: (r.random(w.shape) < 0.6).astype(np.float32)
                           for k, w in net.get_weights().items() if k.endswith(".W")})
    return nets


def _alone_and_stacked(seeds, masked, data, model="lenet"):
    with blas.single_threaded():
        nets_alone = _nets(seeds, masked, model)
        alone = [train(n, data, CFG, Streams.from_seed(50 + s), progress=False) for s, n in zip(seeds, nets_alone)]
        stacked_nets = _nets(seeds, masked, model)
        stacked = train_stacked(stacked_nets, data, CFG, [Streams.from_seed(50 + s) for s in seeds])
    return alone, nets_alone, stacked, stacked_nets


@pytest.mark.parametrize("model", ["lenet", "convs"])
@pytest.mark.parametrize("masked", [False, True])
def test_stacked_runs_equal_the_runs_alone_bitwise(masked, model):
    """Same products per run (NumPy's batched matmul is one BLAS call per run of the same shape), the
    same element-wise code: every curve, summary and weight is bitwise the one the run gets alone;
    for convolutions too, whose blocks of rows are a run's blocks alone."""
    seeds, data = (0, 1, 2), tiny_mnist(200, 50)
    alone, nets_alone, stacked, nets_stacked = _alone_and_stacked(seeds, masked, data, model)
    for a, s, na, ns in zip(alone, stacked, nets_alone, nets_stacked):
        for k in a.curves:
            assert a.curves[k].tobytes() == s.curves[k].tobytes(), k
        assert a.summary() == s.summary()
        for k, w in na.get_weights().items():
            assert w.tobytes() == ns.get_weights()[k].tobytes(), k
    assert alone[0].curves["val_loss"].tobytes() != alone[1].curves["val_loss"].tobytes()  # runs differ
    if masked:
        for net, start in zip(nets_stacked, _nets(seeds, masked, model)):   # masked entries stay frozen per run
            for k, m in net.masks().items():
                frozen = backend.to_numpy(m) == 0
                assert net.get_weights()[k][frozen].tobytes() == start.get_weights()[k][frozen].tobytes()


@pytest.mark.parametrize("model", ["lenet", "convs"])
def test_stacked_runs_on_the_device_follow_the_runs_alone(device, model):
    """On the device the batched product may round differently from R separate ones (cuBLAS picks
    kernels by shape): the curves then agree to float32 rounding, bounded here."""
    seeds, data = (0, 1), tiny_mnist(200, 50)
    alone, _, stacked, _ = _alone_and_stacked(seeds, True, data, model)
    for a, s in zip(alone, stacked):
        np.testing.assert_allclose(s.curves["train_loss"], a.curves["train_loss"], rtol=1e-4)
        np.testing.assert_allclose(s.curves["val_loss"], a.curves["val_loss"], rtol=1e-4)


def test_stacking_refuses_what_it_cannot_stack():
    resnet = build_model("resnet20", Streams.from_seed(0), dataset="fashion_mnist", width=0.25)
    with pytest.raises(ValueError, match="does not stack"):
        StackedNet([resnet, resnet])
    a, b = _nets((0, 1), False)
    b.set_masks({"fc1.W": np.ones((300, 784), np.float32)})
    with pytest.raises(ValueError, match="mask on every run"):
        StackedNet([a, b])
    with pytest.raises(ValueError, match="streams"):
        train_stacked([a], tiny_mnist(100, 20), CFG, [])


def test_bench_prints_per_run_times_for_each_stack(capsys):
    from minilottery.__main__ import main as cli
    assert cli(["bench", "--cases", "lenet", "--stack", "1", "2", "--repeats", "1", "--warmup", "1",
                "--no-torch", "--batch", "8"]) == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| lenet |")]
    assert [r[2].strip() for r in rows] == ["1", "2"]
    assert all(float(r[3]) > 0 and float(r[4]) > 0 and float(r[5]) > 0 for r in rows)
    assert cli(["bench", "--cases", "lenet", "--stack", "0", "--no-torch"]) == 2
    assert "--stack" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["lenet_300_100", pytest.param("conv2", marks=pytest.mark.slow)])
def test_an_imp_experiment_is_bitwise_the_same_stacked(tmp_path, monkeypatch, model):
    """--stack 3: the level's ticket and controls (and the trials' dense runs) train as stacked
    networks; every array of the experiment file is the one the unstacked plan writes."""
    from minilottery.experiments.imp import IMPConfig, IMPExperiment
    from minilottery.plan import make_executor
    from minilottery.store import ExperimentStore
    from tests.helpers_data import all_arrays
    lenet = model == "lenet_300_100"                       # a Conv-2 step costs ~50 LeNet steps: fewer runs
    data = tiny_mnist(200, 50) if lenet else tiny_mnist(60, 20)
    small = {} if lenet else {"batch_size": 10, "dataset": "mnist"}
    cfg = IMPConfig.paper(model, iterations=12, eval_every=6, rounds=2, trials=2 if lenet else 1,
                          reinit=2 if lenet else 1, random_pruning=True, lr=1e-3, **small)
    from minilottery.experiments import imp_runs as imp_mod
    sizes, real = [], imp_mod.train_runs_stacked
    monkeypatch.setattr(imp_mod, "train_runs_stacked", lambda runs: sizes.append(len(runs)) or real(runs))
    files = {}
    for stack in (1, 3):
        path = tmp_path / f"s{stack}.h5"
        with ExperimentStore(path, cfg.to_dict()) as store:
            IMPExperiment(cfg, store, data, log=lambda *a: None).run(make_executor(1, stack=stack))
        files[stack] = all_arrays(path)
    assert max(sizes) == 3 and sum(sizes) >= (12 if lenet else 3)   # a lone ready run trains alone
    assert files[1].keys() == files[3].keys() and len(files[1]) > 20
    for k, v in files[1].items():
        assert np.asarray(v).tobytes() == np.asarray(files[3][k]).tobytes(), k
