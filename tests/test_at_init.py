"""Pruning-at-initialisation scores against their definitions (float64, central differences),
global top-k, and the sanity checks' shuffle."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minilottery import backend
from minilottery.lottery.at_init import (SCORES, grasp, hessian_vector_product, keep_top, loss_grads,
                                         prune_at_init, snip, synflow)
from minilottery.lottery.pruning import ones_masks
from minilottery.lottery.sanity_checks import shuffle_within_layers
from minilottery.nn import Dense, ReLU, Sequential, softmax_cross_entropy
from minilottery.nn.models import build_model
from minilottery.rng import Streams
from tests.reference import rel_error

F64 = np.float64


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield


def tiny(relu=True, seed=0, sizes=(4, 5, 3)):
    """A float64 4-5-3 network (ReLU between unless ``relu`` is False) with non-zero biases."""
    rng = np.random.default_rng(seed)
    layers = [("fc1", Dense(sizes[0], sizes[1], rng, F64))] + ([("relu", ReLU())] if relu else [])
    layers.append(("fc2", Dense(sizes[1], sizes[2], rng, F64)))
    layers[-1][1].output = True
    net = Sequential(layers, (sizes[0],))
    for _, layer in layers:
        if layer.params:
            layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    return net


def batch(seed=1, n=7, d=4, k=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, k, n)


def loss_at(net, weights, masks, x, y, temperature=1.0):
    net.set_weights(weights)
    net.set_masks(masks)
    return float(softmax_cross_entropy(net.forward(x) / temperature, y)[0])


def test_snip_is_the_loss_gradient_with_respect_to_the_mask_at_one():
    net, (x, y) = tiny(), batch()
    weights = net.get_weights()
    masks = ones_masks({k: weights[k] for k in ("fc1.W", "fc2.W")})
    score, h = snip(net, weights, masks, x, y), 1e-5
    for key, m in masks.items():
        numeric = np.zeros_like(m)
        for i in np.ndindex(m.shape):                  # ∂L/∂m_i by central differences at m = 1
            up, down = {k: v.copy() for k, v in masks.items()}, {k: v.copy() for k, v in masks.items()}
            up[key][i] += h
            down[key][i] -= h
            numeric[i] = (loss_at(net, weights, up, x, y) - loss_at(net, weights, down, x, y)) / (2 * h)
        assert score[key].dtype == F64
        assert rel_error(score[key], np.abs(numeric)) < 1e-6, key


def double_difference_hvp(net, weights, masks, x, y, v, temperature, h=1e-4):
    """(Hv)_i = ‖v‖ ∂²L(θ + a v̂ + b e_i)/∂a∂b at 0 (v̂ = v/‖v‖), by a four-point double central
    difference of the loss."""
    norm = np.sqrt(sum(np.sum(v[k] ** 2) for k in masks))
    v, out = {k: v[k] / norm for k in masks}, {}
    for key in sorted(masks):
        hv = np.zeros_like(weights[key])
        for i in np.ndindex(hv.shape):
            f = {}
            for a in (1, -1):
                for b in (1, -1):
                    w = {k: val.copy() for k, val in weights.items()}
                    for k in masks:
                        w[k] = w[k] + a * h * v[k]
                    w[key][i] += b * h
                    f[a, b] = loss_at(net, w, masks, x, y, temperature)
            hv[i] = norm * (f[1, 1] - f[1, -1] - f[-1, 1] + f[-1, -1]) / (4 * h * h)
        out[key] = hv
    return out


# the double difference's own error (rounding ~ ε·L/h², truncation ~ h²) sets the tolerance: at T = 200
# the loss is 200² times flatter, so its best step is larger
@pytest.mark.parametrize("temperature, h", [(1.0, 3e-4), (200.0, 3e-3)])
def test_grasp_hessian_vector_product_matches_a_double_finite_difference(temperature, h):
    net, (x, y) = tiny(), batch()
    weights = net.get_weights()
    masks = ones_masks({k: weights[k] for k in ("fc1.W", "fc2.W")})
    rng = np.random.default_rng(3)
    v = {k: rng.standard_normal(m.shape) for k, m in masks.items()}
    hv = hessian_vector_product(net, weights, masks, x, y, v, temperature)
    exact = double_difference_hvp(net, weights, masks, x, y, v, temperature, h)
    for key in masks:
        assert rel_error(hv[key], exact[key]) < 1e-4, key
    # the GraSP score is θ ⊙ Hg with g the gradient of the tempered loss
    _, g = loss_grads((net.set_weights(weights), net.set_masks(masks), net)[2], x, y, temperature)
    hg = double_difference_hvp(net, weights, masks, x, y, g, temperature, h)
    score = grasp(net, weights, masks, x, y, temperature=temperature)
    for key in masks:
        assert rel_error(score[key], weights[key] * hg[key]) < 1e-4, key


def test_synflow_of_a_two_layer_linear_network_is_the_closed_form():
    net = tiny(relu=False)
    w = net.get_weights()
    masks = ones_masks({k: w[k] for k in ("fc1.W", "fc2.W")})
    score = synflow(net, w, masks)
    a1, b1, a2 = np.abs(w["fc1.W"]), np.abs(w["fc1.b"]), np.abs(w["fc2.W"])
    # R = 1ᵀ(|W2|(|W1| 1 + |b1|) + |b2|): ∂R/∂W1 = (|W2|ᵀ 1) 1ᵀ, ∂R/∂W2 = 1 (|W1| 1 + |b1|)ᵀ
    expect1 = a1 * np.outer(a2.sum(axis=0), np.ones(a1.shape[1]))
    expect2 = a2 * np.outer(np.ones(a2.shape[0]), a1.sum(axis=1) + b1)
    np.testing.assert_allclose(score["fc1.W"], expect1, rtol=1e-12)
    np.testing.assert_allclose(score["fc2.W"], expect2, rtol=1e-12)
    # a pruned weight carries no flow, and pruning a hidden unit's inputs zeroes its outputs' scores
    masks["fc1.W"][2, :] = 0
    pruned = synflow(net, w, masks)
    assert np.all(pruned["fc1.W"][2] == 0)
    np.testing.assert_allclose(pruned["fc2.W"][:, 2], a2[:, 2] * b1[2], rtol=1e-12)


def lenet64(seed=0):
    return build_model("lenet_300_100", Streams.from_seed(seed), dtype=F64)


@pytest.mark.parametrize("method", sorted(SCORES))
def test_every_method_is_deterministic_given_the_seed_and_keeps_the_asked_count(method):
    theta = build_model("lenet_300_100", Streams.from_seed(0)).get_weights()
    x, y = np.random.default_rng(0).random((20, 1, 28, 28)), np.arange(20) % 10
    runs = [prune_at_init(method, lenet64(), theta, 0.05, x, y, np.random.default_rng(s), rounds=3)
            for s in (5, 5, 6)]
    total = sum(m.size for m in runs[0].values())
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    assert sum(int(m.sum()) for m in runs[0].values()) == round(0.05 * total)
    differs = any(not np.array_equal(runs[0][k], runs[2][k]) for k in runs[0])
    assert differs == (method == "random")          # only random draws from the seed


def test_invert_keeps_the_lowest_scores():
    theta = build_model("lenet_300_100", Streams.from_seed(0)).get_weights()
    kept = prune_at_init("magnitude", lenet64(), theta, 0.1)
    inverted = prune_at_init("magnitude", lenet64(), theta, 0.1, invert=True)
    high = min(np.abs(theta[k][kept[k] == 1]).min() for k in kept)
    low = max(np.abs(theta[k][inverted[k] == 1]).max() for k in kept)
    assert low <= high and sum(m.sum() for m in kept.values()) == sum(m.sum() for m in inverted.values())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=3), st.data())
def test_keep_top_keeps_exactly_the_highest_alive_scores(sizes, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    masks = {f"l{i}.W": (rng.random(n) < 0.7).astype(np.float32) for i, n in enumerate(sizes)}
    scores = {k: rng.integers(0, 4, m.shape).astype(F64) for k, m in masks.items()}   # many ties
    alive = int(sum(m.sum() for m in masks.values()))
    keep = data.draw(st.integers(0, alive))
    new = keep_top(scores, masks, keep, rng)
    assert sum(int(m.sum()) for m in new.values()) == keep
    for k in masks:
        assert np.all(new[k] <= masks[k])                          # masks only shrink
    kept = [s for k in masks for s in scores[k][new[k] == 1]]
    gone = [s for k in masks for s in scores[k][(masks[k] == 1) & (new[k] == 0)]]
    if kept and gone:
        assert min(kept) >= max(gone)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=3), st.data())
def test_shuffle_keeps_each_layers_count_and_changes_the_mask(shapes, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    masks = {f"l{i}.W": (rng.random(s) < data.draw(st.floats(0, 1))).astype(np.float32)
             for i, s in enumerate(shapes)}
    new = shuffle_within_layers(masks, rng)
    for k, m in masks.items():
        assert new[k].shape == m.shape and new[k].dtype == m.dtype
        assert new[k].sum() == m.sum()                             # the per-layer density stays
        if 0 < m.sum() < m.size:
            assert not np.array_equal(new[k], m)                   # and the mask truly moved
    assert set(new) == set(masks)
