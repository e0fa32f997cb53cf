"""The paper's networks: parameter counts, shapes, dropout placement, seeding,
and Sequential's masks and weight copies."""
import numpy as np
import pytest

from minilottery.backend import asarray, to_numpy
from minilottery.nn.layers import Dense, Dropout, ReLU
from minilottery.nn.models import MODELS, OUTPUT_LAYER, build_model
from minilottery.rng import Streams

DATASETS = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
CONV_WIDTHS = {"conv2": (64,), "conv4": (64, 128), "conv6": (64, 128, 256)}


def expected_counts(name, input_shape):
    """({"layer.W": weights}, total biases) worked out from the architecture alone."""
    weights, biases = {}, 0
    if name == "lenet_300_100":
        features = int(np.prod(input_shape))
        hidden = (300, 100)
    else:
        c, h, w = input_shape
        i = 0
        for width in CONV_WIDTHS[name]:
            for _ in range(2):                 # 3×3, stride 1, 'same' padding keeps h, w
                i += 1
                weights[f"conv{i}.W"] = c * width * 3 * 3
                biases += width
                c = width
            h, w = h // 2, w // 2              # 2×2 max-pool after each pair
        features = c * h * w
        hidden = (256, 256)
    sizes = (features,) + hidden + (10,)
    for j in range(3):
        weights[f"fc{j + 1}.W"] = sizes[j] * sizes[j + 1]
        biases += sizes[j + 1]
    return weights, biases


def bias_total(model):
    return sum(int(v.size) for k, v in model.params().items() if k.endswith(".b"))


def test_lenet_counts_pinned():
    model = build_model("lenet_300_100", Streams.from_seed(0), "mnist")
    assert model.weight_counts() == {"fc1.W": 784 * 300, "fc2.W": 300 * 100, "fc3.W": 100 * 10}
    assert sum(model.weight_counts().values()) == 266_200
    assert bias_total(model) == 410


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("name", MODELS)
def test_parameter_counts_follow_the_architecture(name, dataset):
    model = build_model(name, Streams.from_seed(0), dataset)
    weights, biases = expected_counts(name, DATASETS[dataset])
    assert model.weight_counts() == weights
    assert bias_total(model) == biases
    # every parameter is a prunable weight or its bias
    assert set(model.params()) == set(weights) | {k[:-2] + ".b" for k in weights}


def test_cifar_conv_totals_match_the_paper():
    """Figure 2 of the paper: Conv-2 4.3M and Conv-4 2.4M weights.

    (The paper lists Conv-6 as 1.7M; its stated architecture gives 2.26M.)
    """
    totals = {n: sum(expected_counts(n, DATASETS["cifar10"])[0].values()) for n in CONV_WIDTHS}
    assert round(totals["conv2"] / 1e6, 1) == 4.3
    assert round(totals["conv4"] / 1e6, 1) == 2.4
    assert totals["conv6"] == 2_261_184
    for n, total in totals.items():
        model = build_model(n, Streams.from_seed(0), "cifar10")
        assert sum(model.weight_counts().values()) == total


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("name", MODELS)
def test_output_layer_and_forward_shape(name, dataset):
    model = build_model(name, Streams.from_seed(1), dataset)
    assert OUTPUT_LAYER == "fc3"
    assert list(model.prunable())[-1] == "fc3"
    assert model.layers[-1][0] == "fc3"
    assert tuple(model.params()["fc3.W"].shape)[0] == 10
    x = np.random.default_rng(0).standard_normal((2,) + DATASETS[dataset]).astype(np.float32)
    y = model.forward(asarray(x))
    assert tuple(y.shape) == (2, 10)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(to_numpy(y)))


@pytest.mark.parametrize("name", MODELS)
def test_float64_model(name):
    model = build_model(name, Streams.from_seed(1), "mnist", dtype=np.float64)
    assert all(v.dtype == np.float64 for v in model.params().values())
    y = model.forward(asarray(np.zeros((2, 1, 28, 28))))
    assert y.dtype == np.float64 and tuple(y.shape) == (2, 10)


@pytest.mark.parametrize("name", MODELS)
def test_dropout_only_after_hidden_fc_layers(name):
    dataset = "mnist" if name == "lenet_300_100" else "cifar10"
    model = build_model(name, Streams.from_seed(2), dataset, dropout=0.5)
    layers = model.layers
    drops = [i for i, (_, l) in enumerate(layers) if isinstance(l, Dropout)]
    assert len(drops) == 2
    for i in drops:
        assert layers[i][1].p == 0.5
        assert isinstance(layers[i - 1][1], ReLU)
        fc_name, fc = layers[i - 2]
        assert isinstance(fc, Dense) and fc_name in ("fc1", "fc2")
    assert layers[-1][0] == "fc3"              # nothing after the output layer
    plain = build_model(name, Streams.from_seed(2), dataset)
    assert not any(isinstance(l, Dropout) for _, l in plain.layers)
    # dropout draws no initial weights: same seed, same weights as the plain model
    for k, v in plain.get_weights().items():
        assert np.array_equal(v, model.get_weights()[k]), k


@pytest.mark.parametrize("name", ["lenet_300_100", "conv2"])
def test_dropout_is_identity_in_eval_mode(name):
    dataset = "mnist"
    model = build_model(name, Streams.from_seed(3), dataset, dropout=0.5)
    plain = build_model(name, Streams.from_seed(3), dataset)
    x = asarray(np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32))
    y_eval = to_numpy(model.forward(x, train=False))
    assert np.array_equal(y_eval, to_numpy(plain.forward(x, train=False)))
    assert np.array_equal(y_eval, to_numpy(model.forward(x, train=False)))   # repeatable
    assert not np.array_equal(y_eval, to_numpy(model.forward(x, train=True)))


def test_unknown_model_lists_choices():
    with pytest.raises(ValueError) as e:
        build_model("resnet18", Streams.from_seed(0), "mnist")
    for choice in MODELS:
        assert choice in str(e.value)


def test_unknown_dataset_lists_choices():
    for name in ("lenet_300_100", "conv2"):
        with pytest.raises(ValueError) as e:
            build_model(name, Streams.from_seed(0), "imagenet")
        for choice in DATASETS:
            assert choice in str(e.value)


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_weights_different_seed_different(name):
    a = build_model(name, Streams.from_seed(7), "mnist").get_weights()
    b = build_model(name, Streams.from_seed(7), "mnist").get_weights()
    c = build_model(name, Streams.from_seed(8), "mnist").get_weights()
    assert a.keys() == b.keys() == c.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
        if k.endswith(".W"):
            assert not np.array_equal(a[k], c[k]), k
        else:
            assert not np.any(a[k]) and not np.any(c[k]), k   # zero biases


def test_initialisation_is_gaussian_glorot():
    w = build_model("lenet_300_100", Streams.from_seed(0), "mnist").get_weights()
    for k, (fan_out, fan_in) in {"fc1.W": (300, 784), "fc2.W": (100, 300)}.items():
        assert w[k].std() == pytest.approx(np.sqrt(2 / (fan_in + fan_out)), rel=0.05)
        assert abs(w[k].mean()) < 0.01


# -- Sequential: masks ---------------------------------------------------------------
def lenet(seed=0):
    return build_model("lenet_300_100", Streams.from_seed(seed), "mnist")


def test_set_masks_zeroes_pruned_weights_only():
    model = lenet()
    before = model.get_weights()
    rng = np.random.default_rng(0)
    masks = {"fc1.W": (rng.random((300, 784)) < 0.5).astype(np.float32),
             "fc3.W": (rng.random((10, 100)) < 0.9).astype(np.float32)}
    model.set_masks(masks)
    after = model.get_weights()
    assert set(model.masks()) == {"fc1.W", "fc3.W"}
    for k, m in masks.items():
        assert np.all(after[k][m == 0] == 0)
        assert np.array_equal(after[k][m == 1], before[k][m == 1])
        assert np.array_equal(to_numpy(model.masks()[k]), m)
    for k in ("fc2.W", "fc1.b", "fc2.b", "fc3.b"):
        assert np.array_equal(after[k], before[k])
    masks["fc1.W"][...] = 0                    # the model holds its own copy
    assert np.any(to_numpy(model.masks()["fc1.W"]))


@pytest.mark.parametrize("key", ["fc9.W", "relu_fc1.W", "flatten.W", "fc1.b"])
def test_set_masks_refuses_unknown_or_unprunable_layer(key):
    model = lenet()
    shape = (300, 784) if key == "fc1.W" else (300,)
    with pytest.raises((KeyError, ValueError)):
        model.set_masks({key: np.ones(shape, np.float32)})
    assert model.masks() == {}


@pytest.mark.parametrize("shape", [(784, 300), (300, 785), (300 * 784,), (1, 300, 784)])
def test_set_masks_refuses_wrong_shape(shape):
    model = lenet()
    before = model.get_weights()
    with pytest.raises(ValueError):
        model.set_masks({"fc1.W": np.zeros(shape, np.float32)})
    assert model.masks() == {}
    assert np.array_equal(model.get_weights()["fc1.W"], before["fc1.W"])


# -- Sequential: weights in and out by copy ---------------------------------------------
def test_get_weights_returns_copies():
    model = lenet()
    w = model.get_weights()
    assert all(isinstance(v, np.ndarray) for v in w.values())
    w["fc1.W"][...] = 123.0
    w["fc3.b"] += 1.0
    fresh = model.get_weights()
    assert not np.any(fresh["fc1.W"] == 123.0)
    assert not np.any(fresh["fc3.b"])


def test_set_weights_copies_in():
    model, other = lenet(0), lenet(1)
    live = dict(model.params())
    w = other.get_weights()
    model.set_weights(w)
    for k, v in model.params().items():
        assert v is live[k]                    # the live arrays are filled, not replaced
        assert np.array_equal(to_numpy(v), w[k])
    snapshot = {k: v.copy() for k, v in w.items()}
    for v in w.values():
        v[...] = 7.0                           # mutating the caller's dict later ...
    for k, v in model.get_weights().items():
        assert np.array_equal(v, snapshot[k])  # ... does not reach the model


def test_set_weights_checks_keys_and_shapes():
    model = lenet()
    w = model.get_weights()
    del w["fc2.b"]
    with pytest.raises(KeyError):
        model.set_weights(w)
    w = model.get_weights()
    w["fc2.W"] = np.zeros((300, 100), np.float32)
    with pytest.raises(ValueError):
        model.set_weights(w)


def test_set_masks_zeroes_an_infinite_pruned_weight():
    model = lenet()
    model.params()["fc2.W"][0, 0] = np.inf
    mask = np.ones((100, 300), np.float32)
    mask[0, 0] = 0
    with np.errstate(invalid="ignore"):
        model.set_masks({"fc2.W": mask})
    assert to_numpy(model.params()["fc2.W"])[0, 0] == 0
