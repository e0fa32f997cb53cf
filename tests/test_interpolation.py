"""Linear interpolation and instability (Frankle et al. 2020), and the data-order seed that
gives two copies of one network different SGD noise."""
import numpy as np
import pytest

from minilottery import backend
from minilottery.errors import ConfigError
from minilottery.lottery.interpolation import alphas, error_curve, instability, interpolate
from minilottery.nn import Dense, Sequential
from minilottery.nn.models import build_model
from minilottery.rng import Streams
from minilottery.train import TrainConfig, train
from tests.helpers_data import tiny_mnist


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield


def test_the_path_has_thirty_points_and_exact_endpoints():
    a = alphas()
    assert a.size == 30 and a[0] == 0.0 and a[-1] == 1.0 and np.all(np.diff(a) > 0)
    rng = np.random.default_rng(0)
    w1 = {"fc.W": rng.standard_normal((3, 2)).astype(np.float32)}
    w2 = {"fc.W": rng.standard_normal((3, 2)).astype(np.float32)}
    np.testing.assert_array_equal(interpolate(w1, w2, 0.0)["fc.W"], w1["fc.W"])
    np.testing.assert_array_equal(interpolate(w1, w2, 1.0)["fc.W"], w2["fc.W"])
    mid = interpolate(w1, w2, 0.25)["fc.W"]
    assert mid.dtype == np.float32
    np.testing.assert_allclose(mid, 0.75 * w1["fc.W"] + 0.25 * w2["fc.W"], rtol=1e-6)


def test_a_barrier_between_two_opposite_classifiers():
    # logits (w·x + c, 0): W₁ (w = 1) classifies x > 0 as class 0, W₂ (w = −1) the opposite; on
    # labels that W₁ gets right the error is 0 for α < 1/2 and 1 beyond (the tie at w = 0 is never hit)
    net = Sequential([("fc", Dense(1, 2, np.random.default_rng(0), np.float64))], (1,))
    x = np.array([[1.0], [2.0], [-1.0], [-3.0]])
    y = np.array([0, 0, 1, 1])
    w1 = {"fc.W": np.array([[1.0], [0.0]]), "fc.b": np.zeros(2)}
    w2 = {"fc.W": np.array([[-1.0], [0.0]]), "fc.b": np.zeros(2)}
    err = error_curve(net, w1, w2, {"test": (x, y)})["test"]
    np.testing.assert_array_equal(err, (alphas() > 0.5).astype(float))
    assert instability(err) == pytest.approx(0.5)          # max 1 − (0 + 1)/2
    same = error_curve(net, w1, w1, {"test": (x, y)})["test"]
    assert instability(same) == 0.0


def test_masks_stay_shared_along_the_path_and_prepare_runs_at_every_point():
    net = build_model("lenet_300_100", Streams.from_seed(0))
    data = tiny_mnist(n_train=100, n_eval=50)
    w1 = net.get_weights()
    w2 = build_model("lenet_300_100", Streams.from_seed(1)).get_weights()
    mask = {k: np.zeros_like(v) for k, v in w1.items() if k == "fc3.W"}
    net.set_masks(mask)                                    # no path to the logits but the bias
    seen = []
    err = error_curve(net, w1, w2, {"test": data.test, "train": data.train}, points=5,
                      prepare=lambda m: seen.append(1))
    assert len(seen) == 5 and set(err) == {"test", "train"} and err["test"].shape == (5,)
    # with fc3 masked out every point predicts from the zero bias: class 0 everywhere
    for name, (_, yy) in (("test", data.test), ("train", data.train)):
        np.testing.assert_allclose(err[name], np.mean(yy != 0))


def _trained(cfg, seed=0):
    rngs = Streams.from_seed(seed)
    model = build_model("lenet_300_100", rngs)
    train(model, tiny_mnist(), cfg, rngs, progress=False)
    return model.get_weights()


def test_data_order_seed_changes_the_batches_alone_and_none_is_todays_order():
    base = TrainConfig(iterations=20, eval_every=10, lr=1e-3)
    default = _trained(base)
    again = _trained(TrainConfig(iterations=20, eval_every=10, lr=1e-3, data_order_seed=None))
    a = _trained(TrainConfig(iterations=20, eval_every=10, lr=1e-3, data_order_seed=7))
    b = _trained(TrainConfig(iterations=20, eval_every=10, lr=1e-3, data_order_seed=7))
    c = _trained(TrainConfig(iterations=20, eval_every=10, lr=1e-3, data_order_seed=8))
    for k in default:
        np.testing.assert_array_equal(default[k], again[k])
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert any(not np.array_equal(a[k], default[k]) for k in a)
    # the data order of seed d is the data stream of Streams.from_seed(d): seed 0's own run
    zero = _trained(TrainConfig(iterations=20, eval_every=10, lr=1e-3, data_order_seed=0))
    for k in default:
        np.testing.assert_array_equal(zero[k], default[k])


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_data_order_seed_is_refused(bad):
    with pytest.raises(ConfigError, match="--data-order-seed"):
        TrainConfig(data_order_seed=bad)
