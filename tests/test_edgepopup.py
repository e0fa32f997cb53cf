"""edge-popup: exact top-k counts and the tie rule, the straight-through gradient through |s|,
frozen weights, the score and weight initialisations."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minilottery import backend
from minilottery.errors import ConfigError
from minilottery.lottery.edgepopup import DEFAULTS, EdgePopup, drop_lowest, kaiming_weights, pruned_count
from minilottery.lottery.select import _UINT, Near, smallest
from minilottery.nn import Conv2d, Dense, Flatten, ReLU, Sequential, softmax_cross_entropy
from minilottery.nn.optim import Momentum
from minilottery.rng import Streams
from minilottery.train import TrainConfig, train
from tests.helpers_data import tiny_mnist
from tests.reference import rel_error


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield
    backend.set_backend("numpy")


def mlp(rng, dtype=np.float64, sizes=(6, 5, 3)):
    layers = [("fc1", Dense(sizes[0], sizes[1], rng, dtype)), ("relu", ReLU()),
              ("fc2", Dense(sizes[1], sizes[2], rng, dtype))]
    layers[-1][1].output = True
    return Sequential(layers, (sizes[0],))


def conv_net(rng, dtype=np.float64):
    return Sequential([("conv1", Conv2d(2, 3, 3, rng, dtype=dtype)), ("relu", ReLU()), ("flat", Flatten()),
                       ("fc1", Dense(27, 4, rng, dtype))], (2, 5, 5))


def stable_oracle(a, j):
    """Mask dropping the first j of a stable ascending sort of a (the documented rule, written plainly)."""
    m = np.ones(a.size)
    m[np.argsort(a.ravel(), kind="stable")[:j]] = 0
    return m.reshape(a.shape)


# -- top-k ---------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 60), k=st.floats(0.01, 1.0), levels=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_drop_lowest_keeps_exact_count_highest_and_breaks_ties_by_flat_index(n, k, levels, seed):
    # invariant: n − ⌊(1 − k)n⌋ kept; every kept value ≥ every dropped one; among equal values the
    # lower flat index is dropped first (few distinct levels force ties at the cut)
    rng = np.random.default_rng(seed)
    a = rng.integers(-levels, levels + 1, n).astype(np.float32)
    j = min(pruned_count(k, n), n)
    m = drop_lowest(np.abs(a), j)
    assert m.dtype == np.float32
    assert int(m.sum()) == n - j
    kept, dropped = np.abs(a)[m == 1], np.abs(a)[m == 0]
    if kept.size and dropped.size:
        assert kept.min() >= dropped.max()
    np.testing.assert_array_equal(m, stable_oracle(np.abs(a), j))


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(1 << 13, 1 << 16),
       levels=st.sampled_from([0, 3, 1000]), signed=st.booleans(), specials=st.booleans(),
       at=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_the_radix_select_is_numpys_partition(dtype, n, levels, signed, specials, at, seed):
    # invariant: smallest(a, i) is np.partition(a, i)[i] bit for bit, on vectors long enough for the
    # radix path: ties (few levels), negatives (which fall back), zeros, inf and NaN (sorted last)
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 0.05, n) if levels == 0 else rng.integers(0, levels, n) * 0.01
    a = (a * rng.choice([-1, 1], n) if signed else a).astype(dtype)
    if specials:
        a[rng.integers(0, n, 5)] = [np.nan, np.inf, 0.0, np.nan, np.finfo(dtype).tiny]
    i = min(int(at * n), n - 1)
    got, want = smallest(a, i), np.partition(a, i)[i]
    assert got.dtype == want.dtype
    assert got.tobytes() == want.tobytes() or (np.isnan(got) and np.isnan(want))


@settings(max_examples=80, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(1 << 13, 1 << 15),
       levels=st.sampled_from([0, 3, 1000, "ulps"]), moves=st.lists(st.sampled_from([0.0, 1e-7, 1e-5, 1e-3, 1.0, -1.0]),
                                                            min_size=1, max_size=6),
       specials=st.booleans(), at=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_the_bracketed_select_is_numpys_partition_as_the_vector_moves(dtype, n, levels, moves, specials, at, seed):
    # invariant: one Near carried over a sequence of vectors, each the last moved by a step of any size (a
    # negative step makes entries negative, where the select must fall back), at one rank (a layer's
    # pruned count), gives np.partition(a, i)[i] bit for bit at every call: the hint changes only the speed
    rng, near = np.random.default_rng(seed), Near()
    if levels == "ulps":             # bit patterns a few bracket widths apart: entries at its very ends
        bits = np.dtype(dtype).type(0.03).view(_UINT[np.dtype(dtype)])
        width = 1 << (np.finfo(dtype).nmant - 10)
        a = (bits + rng.integers(0, 3, n) * width + rng.integers(-2499, 2500, n)).astype(bits.dtype).view(dtype)
    else:
        a = np.abs(rng.uniform(0.0, 0.05, n) if levels == 0 else rng.integers(0, levels, n) * 0.01)
    i = min(int(at * n), n - 1)
    for move in moves:
        a = a + move * rng.standard_normal(n) if move >= 0 else a - 0.01
        a = (np.abs(a) if move >= 0 else a).astype(dtype)
        if specials:
            a[rng.integers(0, n, 4)] = [np.nan, np.inf, 0.0, np.finfo(dtype).tiny]
        want = np.partition(a, i)[i]
        for _ in range(2):                                   # the second call brackets the first's answer
            got = smallest(a, i, near)
            assert got.dtype == want.dtype
            assert got.tobytes() == want.tobytes() or (np.isnan(got) and np.isnan(want))


def test_pruned_count_is_the_released_float_floor():
    assert pruned_count(0.5, 45) == 22                       # ⌊22.5⌋
    assert pruned_count(0.9, 100) == 9                       # (1 − 0.9)·100 = 9.999999999999998 in float64
    assert pruned_count(1.0, 7) == 0


@settings(max_examples=25, deadline=None)
@given(k=st.floats(0.05, 1.0), seed=st.integers(0, 2**32 - 1))
def test_every_forward_keeps_top_k_of_abs_scores_per_layer(k, seed):
    rng = np.random.default_rng(seed)
    net = EdgePopup(conv_net(rng), k, rng)
    net.forward(rng.standard_normal((2, 2, 5, 5)))
    for key, s in net.scores.items():
        m = net.model.prunable()[key[:-2]].mask
        j = int((1 - k) * s.size)
        assert int(m.sum()) == s.size - j == net.kept_counts()[key]
        np.testing.assert_array_equal(m, stable_oracle(np.abs(s), j))


def test_masks_follow_the_scores_after_each_step_and_stay_for_evaluation():
    rng = np.random.default_rng(3)
    net = EdgePopup(mlp(rng), 0.4, rng)
    x, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    opt = Momentum(net.params(), 1.0)
    for _ in range(4):
        _, d = softmax_cross_entropy(net.forward(x, train=True), y)
        net.backward(d)
        opt.step(net.grads())
        net.after_step()                                     # as train: the new top-k
        net.forward(x)                                       # evaluation after the step
        for key, s in net.scores.items():
            np.testing.assert_array_equal(net.masks_now[key], stable_oracle(np.abs(s), net.pruned[key]))


# -- straight-through gradient -------------------------------------------------
def derivative(f, h=1e-4):
    """f'(0) by the five-point central stencil (error O(h⁴) + rounding ~1e-16/h), float64."""
    return (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h)


def loss_at(model, masks, x, y):
    model.set_masks(masks)
    return float(softmax_cross_entropy(model.forward(x), y)[0])


def test_score_gradient_is_the_derivative_of_the_abs_relaxation_at_the_fixed_mask():
    """What is checked: with the mask m of the forward held fixed, the relaxed network
    W_eff(s') = W ⊙ (m + |s'| − |s|) equals the real one at s' = s, and straight-through says
    ∂L/∂s = ∂L/∂W_eff ⊙ W ⊙ sign(s) is its derivative; central differences of L(W_eff(s + ε e_ij))
    in float64 give that derivative entry by entry (weights and inputs fixed)."""
    rng = np.random.default_rng(0)
    net = EdgePopup(mlp(rng), 0.5, rng)
    x, y = rng.standard_normal((7, 6)), rng.integers(0, 3, 7)
    _, d = softmax_cross_entropy(net.forward(x, train=True), y)
    net.backward(d, input_grad=True)
    analytic = {k: g.copy() for k, g in net.grads().items()}
    fixed = {k: m.copy() for k, m in net.masks_now.items()}
    for key, s in net.scores.items():
        assert analytic[key].dtype == np.float64
        assert np.all(s != 0)
        numeric = np.zeros_like(s)
        for idx in np.ndindex(s.shape):
            def loss(eps):
                bump = np.zeros_like(s)
                bump[idx] = abs(s[idx] + eps) - abs(s[idx])                # |s'| − |s| at s' = s + ε e_ij
                return loss_at(net.model, {**fixed, key: fixed[key] + bump}, x, y)
            numeric[idx] = derivative(loss, min(1e-4, abs(s[idx]) / 3))  # s' keeps the sign of s
        assert rel_error(analytic[key], numeric) < 1e-6, key
        assert np.any(analytic[key][fixed[key] == 0] != 0)               # pruned weights get gradient too


def test_score_gradient_keeps_float32():
    rng = np.random.default_rng(1)
    net = EdgePopup(mlp(rng, np.float32), 0.5, rng)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    _, d = softmax_cross_entropy(net.forward(x, train=True), rng.integers(0, 3, 3))
    net.backward(d)
    assert all(g.dtype == np.float32 for g in net.grads().values())
    assert all(s.dtype == np.float32 for s in net.scores.values())


# -- frozen weights ------------------------------------------------------------
def test_weights_and_biases_bitwise_unchanged_by_training():
    streams = Streams.from_seed(0)
    model = Sequential([("flat", Flatten()), ("fc1", Dense(784, 16, streams.init)), ("relu", ReLU()),
                        ("fc2", Dense(16, 10, streams.init))], (1, 28, 28))
    kaiming_weights(model, streams.init, signed=True)
    model.params()["fc1.b"][...] = 0.25                      # a non-zero bias must not move either
    before = model.get_weights()
    net = EdgePopup(model, 0.5, streams.init)
    s0 = net.get_weights()
    cfg = TrainConfig(iterations=30, lr=0.1, batch_size=20, optimizer="momentum", weight_decay=5e-4,
                      schedule="cosine", eval_every=10)
    train(net, tiny_mnist(200, 40), cfg, streams, progress=False, keep_best=True)
    after = model.get_weights()
    for k in before:
        assert before[k].tobytes() == after[k].tobytes(), k
    assert any(not np.array_equal(s0[k], v) for k, v in net.get_weights().items())


# -- initialisation ------------------------------------------------------------
def test_score_init_is_uniform_within_one_over_sqrt_fan_in():
    rng = np.random.default_rng(5)
    model = Sequential([("conv1", Conv2d(4, 30, 3, rng)), ("flat", Flatten()),
                        ("fc1", Dense(30 * 3 * 3, 200, rng))], (4, 5, 5))
    net = EdgePopup(model, 0.5, np.random.default_rng(6))
    for key, fan_in in (("conv1.W", 4 * 3 * 3), ("fc1.W", 270)):
        s, bound = net.scores[key], 1 / math.sqrt(fan_in)
        assert s.dtype == np.float32
        assert np.abs(s).max() <= np.float32(bound)
        assert np.abs(s).max() > 0.98 * bound                # fills the interval
        # U(−b, b): mean 0 and variance b²/3, each within 5 standard errors
        assert abs(s.mean()) < 5 * bound / math.sqrt(3 * s.size)
        assert abs(s.var() / (bound ** 2 / 3) - 1) < 5 * math.sqrt(0.8 / s.size)


def test_kaiming_normal_std_and_signed_constant_values():
    model = Sequential([("conv1", Conv2d(8, 40, 3, np.random.default_rng(0))), ("flat", Flatten()),
                        ("fc1", Dense(40 * 9, 300, np.random.default_rng(0)))], (8, 5, 5))
    kaiming_weights(model, np.random.default_rng(1))
    normal = model.get_weights()
    kaiming_weights(model, np.random.default_rng(1), signed=True)
    signed = model.get_weights()
    for key, fan_in in (("conv1.W", 8 * 9), ("fc1.W", 360)):
        std = math.sqrt(2 / fan_in)
        w = normal[key]
        assert w.dtype == np.float32
        assert abs(w.std() / std - 1) < 5 / math.sqrt(2 * w.size)    # sample std within 5 standard errors
        assert set(np.unique(np.abs(signed[key]))) == {np.float32(std)}
        np.testing.assert_array_equal(np.sign(signed[key]), np.where(w < 0, -1, 1))  # sign of the same draw
    for key in ("conv1.b", "fc1.b"):
        assert not normal[key].any() and not signed[key].any()


def test_bad_k_is_refused():
    rng = np.random.default_rng(0)
    for k in (0, -0.1, 1.5, True, "0.5"):
        with pytest.raises(ConfigError):
            EdgePopup(mlp(rng), k, rng)
    with pytest.raises(ConfigError, match="keeps no weight"):
        EdgePopup(mlp(rng), 1e-17, rng)                      # (1 − k)·n rounds to n: nothing kept


def test_defaults_make_a_train_config():
    cfg = TrainConfig(**{k: v for k, v in DEFAULTS.items() if k in TrainConfig.names()})
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.schedule) == ("momentum", 0.1, 0.9, 5e-4,
                                                                                     "cosine")
