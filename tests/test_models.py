"""The paper's networks: parameter counts, shapes, the output layer and weight
kinds, dropout placement, seeding, and Sequential's masks and weight copies."""
import numpy as np
import pytest

from minilottery.backend import asarray, to_numpy
from minilottery.nn.layers import Dense, Dropout, ReLU
from minilottery.nn.conv import Conv2d
from minilottery.nn.models import DEEP, MODELS, build_model
from minilottery.rng import Streams

DATASETS = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
CONV_WIDTHS = {"conv2": (64,), "conv4": (64, 128), "conv6": (64, 128, 256)}
FIGURE2 = tuple(m for m in MODELS if m not in DEEP)   # the deeper networks: tests/test_deep_models.py


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
@pytest.mark.parametrize("name", FIGURE2)
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
@pytest.mark.parametrize("name", FIGURE2)
def test_output_layer_and_forward_shape(name, dataset):
    """The last Dense (fc3) is marked ``output=True``, and it alone (this replaces the
    old module constant OUTPUT_LAYER: layers now say what they are)."""
    model = build_model(name, Streams.from_seed(1), dataset)
    prunable = model.prunable()
    assert list(prunable)[-1] == "fc3"
    assert model.layers[-1][0] == "fc3"
    assert [n for n, l in prunable.items() if l.output] == ["fc3"]
    assert all(isinstance(l.output, bool) for l in prunable.values())
    last_dense = [n for n, l in model.layers if isinstance(l, Dense)][-1]
    assert last_dense == "fc3" and prunable[last_dense].output is True
    assert tuple(model.params()["fc3.W"].shape)[0] == 10
    x = np.random.default_rng(0).standard_normal((2,) + DATASETS[dataset]).astype(np.float32)
    y = model.forward(asarray(x))
    assert tuple(y.shape) == (2, 10)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(to_numpy(y)))


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("name", FIGURE2)
def test_weight_kinds(name, dataset):
    """weight_kinds(): every prunable weight, in order, as "conv", "fc" or "output"."""
    model = build_model(name, Streams.from_seed(1), dataset)
    kinds = model.weight_kinds()
    weights, _ = expected_counts(name, DATASETS[dataset])
    assert list(kinds) == list(weights) == list(model.weight_counts())
    for key, kind in kinds.items():
        layer = model.prunable()[key[:-2]]
        want = "output" if key == "fc3.W" else ("conv" if key.startswith("conv") else "fc")
        assert kind == want, (key, kind)
        assert layer.kind == ("conv" if isinstance(layer, Conv2d) else "fc")
    assert list(kinds.values()).count("output") == 1
    n_conv = 2 * len(CONV_WIDTHS.get(name, ()))
    assert list(kinds.values()) == ["conv"] * n_conv + ["fc", "fc", "output"]


def test_weight_kinds_follow_the_output_flag():
    """The kinds are read from the layers, not from names: moving the flag moves "output"."""
    model = build_model("lenet_300_100", Streams.from_seed(0), "mnist")
    model.prunable()["fc3"].output = False
    model.prunable()["fc2"].output = True
    assert model.weight_kinds() == {"fc1.W": "fc", "fc2.W": "output", "fc3.W": "fc"}


@pytest.mark.parametrize("name", FIGURE2)
def test_float64_model(name):
    model = build_model(name, Streams.from_seed(1), "mnist", dtype=np.float64)
    assert all(v.dtype == np.float64 for v in model.params().values())
    y = model.forward(asarray(np.zeros((2, 1, 28, 28))))
    assert y.dtype == np.float64 and tuple(y.shape) == (2, 10)


@pytest.mark.parametrize("name", FIGURE2)
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


@pytest.mark.parametrize("name", FIGURE2)
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


def test_set_masks_installs_copies_and_changes_no_weight():
    """Installing masks changes no parameter (it used to zero the pruned weights; the
    LTH's zero action is now resets.reset's); the forward uses W ⊙ m."""
    model = lenet()
    before = model.get_weights()
    rng = np.random.default_rng(0)
    masks = {"fc1.W": (rng.random((300, 784)) < 0.5).astype(np.float32),
             "fc3.W": (rng.random((10, 100)) < 0.9).astype(np.float32)}
    model.set_masks(masks)
    after = model.get_weights()
    assert set(model.masks()) == set(model.frozen()) == {"fc1.W", "fc3.W"}
    for k, v in after.items():
        assert v.tobytes() == before[k].tobytes(), k
    for k, m in masks.items():
        assert np.array_equal(to_numpy(model.masks()[k]), m)
        layer = model.prunable()[k[:-2]]
        np.testing.assert_array_equal(to_numpy(layer.effective_weight()), before[k] * m)
    masks["fc1.W"][...] = 0                    # the model holds its own copy
    assert np.any(to_numpy(model.masks()["fc1.W"]))


def test_set_masks_none_removes_a_mask_and_the_weights_come_back():
    """Removing a mask restores the dense forward exactly: the weights were never touched."""
    model = lenet()
    x = asarray(np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32))
    dense = to_numpy(model.forward(x)).copy()
    model.set_masks({"fc1.W": np.zeros((300, 784), np.float32), "fc2.W": np.zeros((100, 300), np.float32)})
    assert not np.array_equal(to_numpy(model.forward(x)), dense)
    model.set_masks({"fc1.W": None})
    assert set(model.masks()) == {"fc2.W"}
    model.set_masks({"fc2.W": None})
    assert model.masks() == {}
    assert np.array_equal(to_numpy(model.forward(x)), dense)


def test_set_masks_with_fills():
    """A frozen fill shows where m = 0: W_eff = W ⊙ m + (1 − m) ⊙ F; W is untouched."""
    model = lenet()
    before = model.get_weights()
    rng = np.random.default_rng(2)
    m = (rng.random((100, 300)) < 0.5).astype(np.float32)
    f = rng.standard_normal((100, 300)).astype(np.float32)
    model.set_masks({"fc2.W": m}, fills={"fc2.W": f})
    w_eff = to_numpy(model.prunable()["fc2"].effective_weight())
    np.testing.assert_array_equal(w_eff[m == 0], f[m == 0])
    np.testing.assert_array_equal(w_eff[m == 1], before["fc2.W"][m == 1])
    for k, v in model.get_weights().items():
        assert v.tobytes() == before[k].tobytes(), k
    with pytest.raises(KeyError):
        model.set_masks({}, fills={"fc9.W": f})
    with pytest.raises(ValueError, match="fill"):
        model.set_masks({"fc2.W": m}, fills={"fc2.W": np.ones((300, 100), np.float32)})
    with pytest.raises(ValueError, match="without a mask"):
        model.set_masks({"fc2.W": None}, fills={"fc2.W": f})
    with pytest.raises(ValueError, match="without a mask"):
        model.set_masks({}, fills={"fc2.W": f})                  # a fill is never silently ignored


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


def test_set_masks_leaves_an_infinite_pruned_weight_alone():
    """Installing a mask no longer zeroes anything, not even an inf under it (it used
    to assign 0 there); the zero action of resets.reset assigns 0, so inf becomes 0, not nan."""
    from minilottery.lottery.resets import reset
    model = lenet()
    model.params()["fc2.W"][0, 0] = np.inf
    mask = np.ones((100, 300), np.float32)
    mask[0, 0] = 0
    model.set_masks({"fc2.W": mask})
    assert to_numpy(model.params()["fc2.W"])[0, 0] == np.inf
    theta = model.get_weights()
    reset(model, theta, {"fc2.W": mask})
    w = to_numpy(model.params()["fc2.W"])
    assert w[0, 0] == 0 and not np.signbit(w[0, 0])
    np.testing.assert_array_equal(w[mask == 1], theta["fc2.W"][mask == 1])
