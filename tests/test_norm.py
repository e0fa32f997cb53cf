"""BatchNorm1d/2d: float64 gradient checks in train and eval mode, the forward against a naive
per-channel loop, and hypothesis properties (normalised output, the running-statistics update)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minilottery import backend
from minilottery.nn import BatchNorm1d, BatchNorm2d, Conv2d
from tests.reference import numerical_grad, rel_error

F64 = np.float64
TOL = 1e-6


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield


def naive_bn(x, gamma, beta, eps, mean=None, var=None):
    """y[n, c, ...] = γ[c]·(x − μ[c])/√(σ²[c] + ε) + β[c], μ and σ² (biased) by loops over every value of c."""
    y = np.empty_like(x)
    for c in range(x.shape[1]):
        vals = [float(v) for v in x[:, c].ravel()]
        mu = sum(vals) / len(vals) if mean is None else float(mean[c])
        s2 = sum((v - mu) ** 2 for v in vals) / len(vals) if var is None else float(var[c])
        y[:, c] = gamma[c] * (x[:, c] - mu) / np.sqrt(s2 + eps) + beta[c]
    return y


def make(kind, shape, rng, dtype=F64):
    layer = (BatchNorm2d if len(shape) == 4 else BatchNorm1d)(shape[1], dtype=dtype)
    layer.params["gamma"][...] = rng.uniform(0.5, 2.0, shape[1])
    layer.params["beta"][...] = rng.standard_normal(shape[1])
    if kind == "eval":
        layer.buffers["running_mean"][...] = rng.standard_normal(shape[1])
        layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, shape[1])
    return layer


SHAPES = [(5, 3), (2, 3, 4, 5), (3, 2, 1, 1), (2, 4, 3, 3)]


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("shape", SHAPES)
def test_gradients_against_central_differences(mode, shape):
    rng = np.random.default_rng(hash((mode, shape)) % 2 ** 32)
    layer = make(mode, shape, rng)
    x = rng.standard_normal(shape) * 3 + 1
    train = mode == "train"
    y = layer.forward(x, train)
    upstream = rng.standard_normal(y.shape)
    dx = layer.backward(upstream.copy())
    grads = {k: v.copy() for k, v in layer.grads.items()}
    assert set(grads) == set(layer.params) == {"gamma", "beta"}

    def f():
        return layer.forward(x, train)

    assert rel_error(dx, numerical_grad(f, x, upstream)) < TOL
    for key, p in layer.params.items():
        assert rel_error(grads[key], numerical_grad(f, p, upstream)) < TOL, key


def test_gradient_through_a_channels_last_conv_output():
    """A Conv2d output is a channels-last view; BN on it must give the same values and gradients."""
    rng = np.random.default_rng(3)
    conv = Conv2d(2, 3, 3, rng, padding=1, dtype=F64)
    x = conv.forward(rng.standard_normal((2, 2, 4, 4)))
    assert not x.flags.c_contiguous
    a, b = make("train", x.shape, np.random.default_rng(1)), make("train", x.shape, np.random.default_rng(1))
    up = rng.standard_normal(x.shape)
    assert np.allclose(a.forward(x, True), b.forward(np.ascontiguousarray(x), True), rtol=0, atol=1e-12)
    assert np.allclose(a.backward(up), b.backward(up.copy()), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_forward_matches_a_naive_per_channel_loop(shape, mode):
    rng = np.random.default_rng(7)
    layer = make(mode, shape, rng)
    x = rng.standard_normal(shape) * 2 - 1
    rm, rv = layer.buffers["running_mean"].copy(), layer.buffers["running_var"].copy()
    y = layer.forward(x, train=mode == "train")
    g, b = layer.params["gamma"], layer.params["beta"]
    want = naive_bn(x, g, b, 1e-5) if mode == "train" else naive_bn(x, g, b, 1e-5, rm, rv)
    assert np.allclose(y, want, rtol=1e-12, atol=1e-12)


def test_pytorch_defaults():
    layer = BatchNorm2d(4)
    assert layer.momentum == 0.1 and layer.eps == 1e-5
    assert np.array_equal(layer.params["gamma"], np.ones(4, np.float32))
    assert np.array_equal(layer.params["beta"], np.zeros(4, np.float32))
    assert np.array_equal(layer.buffers["running_mean"], np.zeros(4, np.float32))
    assert np.array_equal(layer.buffers["running_var"], np.ones(4, np.float32))
    assert all(v.dtype == np.float32 for v in (*layer.params.values(), *layer.buffers.values()))
    u = BatchNorm2d(1000, rng=np.random.default_rng(0)).params["gamma"]      # open_lth's γ ~ U(0, 1)
    assert u.min() >= 0 and u.max() < 1 and 0.45 < u.mean() < 0.55


batches = st.tuples(st.integers(2, 6), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
                    st.integers(0, 2 ** 31 - 1), st.floats(0.01, 100.0), st.floats(-50, 50))


@settings(max_examples=60, deadline=None)
@given(batches)
def test_train_mode_output_has_mean_0_and_variance_1_per_channel(b):
    """Before γ and β (γ = 1, β = 0): every channel of x̂ has mean 0 and biased variance σ²/(σ² + ε)."""
    n, c, h, w, seed, scale, shift = b
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)) * scale + shift
    y = BatchNorm2d(c, dtype=F64).forward(x, train=True)
    var = x.var(axis=(0, 2, 3))
    assert np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-9)
    assert np.allclose(y.var(axis=(0, 2, 3)), var / (var + 1e-5), rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(batches, st.integers(1, 4), st.floats(0.0, 1.0))
def test_running_statistics_follow_the_stated_update(b, steps, momentum):
    """running ← (1 − ρ)·running + ρ·stat, with the biased mean and the unbiased variance (÷(M − 1))."""
    n, c, h, w, seed, scale, shift = b
    rng = np.random.default_rng(seed)
    layer = BatchNorm2d(c, dtype=F64, momentum=momentum)
    rm, rv = np.zeros(c), np.ones(c)
    for _ in range(steps):
        x = rng.standard_normal((n, c, h, w)) * scale + shift
        layer.forward(x, train=True)
        rm = (1 - momentum) * rm + momentum * x.mean(axis=(0, 2, 3))
        rv = (1 - momentum) * rv + momentum * x.var(axis=(0, 2, 3), ddof=1)
    assert np.allclose(layer.buffers["running_mean"], rm, rtol=1e-9, atol=1e-9)
    assert np.allclose(layer.buffers["running_var"], rv, rtol=1e-9, atol=1e-9)
    before = {k: v.copy() for k, v in layer.buffers.items()}
    layer.forward(rng.standard_normal((n, c, h, w)), train=False)            # eval updates nothing
    assert all(np.array_equal(before[k], layer.buffers[k]) for k in before)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="expected input of shape"):
        BatchNorm2d(3).forward(np.zeros((2, 4, 2, 2), np.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        BatchNorm1d(3).forward(np.zeros((1, 3), np.float32), train=True)
    with pytest.raises(TypeError, match="float64"):
        BatchNorm1d(3).forward(np.zeros((2, 3)))
