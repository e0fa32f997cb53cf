"""Layer forward passes against naive oracles, dtypes, errors, initialisation, dropout."""
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minilottery import backend
from minilottery.nn import (Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU, Sequential,
                            softmax_cross_entropy)
from minilottery.rng import Streams
from tests.reference import conv2d_forward, maxpool2d_forward
from tests.strategies import conv_geometries, pool_geometries

F32, F64 = np.float32, np.float64


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield
    backend.set_backend("numpy")


# -- forward passes against the naive oracles ----------------------------------------
@settings(max_examples=50, deadline=None)
@given(g=conv_geometries(), seed=st.integers(0, 2**16))
def test_conv2d_forward_matches_naive_loops(g, seed):
    rng = np.random.default_rng(seed)
    layer = g.conv(rng)
    x = rng.standard_normal(g.x_shape)
    y = layer.forward(x)
    assert y.shape == (g.n, g.c_out) + g.out_hw
    assert layer.output_shape(g.x_shape[1:]) == (g.c_out,) + g.out_hw
    expected = conv2d_forward(x, layer.params["W"], layer.params["b"], (g.sh, g.sw), (g.ph, g.pw))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(g=conv_geometries(), seed=st.integers(0, 2**16))
def test_masked_conv2d_forward_uses_effective_weight(g, seed):
    rng = np.random.default_rng(seed)
    layer = g.conv(rng)
    mask = (rng.random(g.w_shape) < 0.5).astype(F64)
    layer.set_mask(mask)
    x = rng.standard_normal(g.x_shape)
    expected = conv2d_forward(x, layer.params["W"] * mask, layer.params["b"], (g.sh, g.sw), (g.ph, g.pw))
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(g=conv_geometries(), seed=st.integers(0, 2**16))
def test_filled_conv2d_forward_uses_effective_weight(g, seed):
    """W_eff = W ⊙ m + (1 − m) ⊙ F against the naive loops; W itself is untouched."""
    rng = np.random.default_rng(seed)
    layer = g.conv(rng)
    w = layer.params["W"].copy()
    mask = (rng.random(g.w_shape) < 0.5).astype(F64)
    fill = rng.standard_normal(g.w_shape)
    layer.set_mask(mask, fill)
    assert layer.params["W"].tobytes() == w.tobytes()
    x = rng.standard_normal(g.x_shape)
    expected = conv2d_forward(x, w * mask + (1 - mask) * fill, layer.params["b"], (g.sh, g.sw), (g.ph, g.pw))
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_filled_dense_forward_and_float32_fill():
    """A float64 fill given to a float32 layer is held in float32; the forward is x W_effᵀ + b."""
    rng = np.random.default_rng(9)
    layer = Dense(5, 3, rng)
    mask = (rng.random((3, 5)) < 0.5).astype(F64)
    fill = rng.standard_normal((3, 5))
    layer.set_mask(mask, fill)
    assert layer.mask.dtype == F32 and layer.fill.dtype == F32
    w_eff = layer.effective_weight()
    assert w_eff.dtype == F32
    np.testing.assert_array_equal(w_eff[mask == 0], fill[mask == 0].astype(F32))
    np.testing.assert_array_equal(w_eff[mask == 1], layer.params["W"][mask == 1])
    x = rng.standard_normal((4, 5)).astype(F32)
    y = layer.forward(x)
    assert y.dtype == F32
    np.testing.assert_allclose(y, x.astype(F64) @ w_eff.astype(F64).T, rtol=1e-5, atol=1e-6)


def test_conv2d_forward_known_values():
    # 1 channel, 3x3 input, 2x2 all-ones kernel, padding 1, stride 2: corner sums
    rng = np.random.default_rng(0)
    layer = Conv2d(1, 1, 2, rng, stride=2, padding=1, dtype=F64)
    layer.params["W"][...] = 1.0
    layer.params["b"][...] = 0.5
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, [[[[1.5, 5.5], [11.5, 28.5]]]])


@settings(max_examples=50, deadline=None)
@given(g=pool_geometries(), seed=st.integers(0, 2**16))
def test_maxpool2d_forward_matches_naive_loops(g, seed):
    rng = np.random.default_rng(seed)
    layer = MaxPool2d((g.kh, g.kw), stride=(g.sh, g.sw))
    x = rng.standard_normal(g.x_shape)
    y = layer.forward(x)
    assert y.shape == (g.n, g.c) + g.out_hw
    np.testing.assert_array_equal(y, maxpool2d_forward(x, (g.kh, g.kw), (g.sh, g.sw)))


def test_maxpool2d_default_stride_is_kernel():
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    y = MaxPool2d(3).forward(x)
    np.testing.assert_array_equal(y, [[[[14.0, 17.0], [32.0, 35.0]]]])


def test_dense_forward_matches_definition():
    rng = np.random.default_rng(1)
    layer = Dense(4, 3, rng, dtype=F64)
    layer.params["b"][...] = rng.standard_normal(3)
    x = rng.standard_normal((5, 4))
    w, b = layer.params["W"], layer.params["b"]
    expected = np.array([[sum(x[n, i] * w[o, i] for i in range(4)) + b[o] for o in range(3)]
                         for n in range(5)])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-13)


def test_relu_forward_and_subgradient_at_zero():
    x = np.array([[-2.0, -0.0, 0.0, 1e-300, 3.0]])
    layer = ReLU()
    np.testing.assert_array_equal(layer.forward(x), [[0.0, 0.0, 0.0, 1e-300, 3.0]])
    np.testing.assert_array_equal(layer.backward(np.full_like(x, 7.0)), [[0.0, 0.0, 0.0, 7.0, 7.0]])


# -- float32 stays float32 ------------------------------------------------------------
def _f32_cases():
    rng = np.random.default_rng(2)
    x4 = rng.standard_normal((2, 3, 6, 5)).astype(F32)
    return [
        ("Dense", lambda r: Dense(7, 4, r), rng.standard_normal((3, 7)).astype(F32)),
        ("Conv2d", lambda r: Conv2d(3, 4, (3, 2), r, stride=(2, 1), padding=1), x4),
        ("MaxPool2d", lambda r: MaxPool2d((2, 3), stride=(1, 2)), x4),
        ("ReLU", lambda r: ReLU(), x4),
        ("Flatten", lambda r: Flatten(), x4),
        ("Dropout", lambda r: Dropout(0.3, r), x4),
    ]


def _f32_params():
    out = []
    for name, make, x in _f32_cases():
        for masked in ((False, True) if name in ("Dense", "Conv2d") else (False,)):
            out.append(pytest.param(name, make, x, masked, id=f"{name}{'-masked' if masked else ''}"))
    return out


@pytest.mark.parametrize("name,make,x,masked", _f32_params())
@pytest.mark.parametrize("train", [False, True])
def test_float32_preserved_everywhere(name, make, x, masked, train):
    rng = np.random.default_rng(3)
    layer = make(rng)
    for k, p in layer.params.items():
        assert p.dtype == F32, (name, k, p.dtype)
    if masked:
        layer.set_mask((rng.random(layer.params["W"].shape) < 0.5).astype(F64))  # float64 mask given
        assert layer.mask.dtype == F32
    y = layer.forward(x, train)
    assert y.dtype == F32, (name, y.dtype)
    dy = rng.standard_normal(y.shape).astype(F32)
    dx = layer.backward(dy)
    assert dx.dtype == F32 and dx.shape == x.shape, (name, dx.dtype, dx.shape)
    assert set(layer.grads) == set(layer.params)
    for k, g in layer.grads.items():
        assert g.dtype == F32 and g.shape == layer.params[k].shape, (name, k, g.dtype)
    if "W" in layer.params:
        assert layer.grad_effective.dtype == F32
        for k, p in layer.params.items():
            assert p.dtype == F32, (name, k, p.dtype)


@pytest.mark.parametrize("make,shape", [
    (lambda r, d: Dense(6, 3, r, dtype=d), (4, 6)),
    (lambda r, d: Conv2d(2, 3, 3, r, padding=1, dtype=d), (2, 2, 5, 4)),
])
def test_float32_values_agree_with_float64(make, shape):
    """Same weights in both precisions: float32 results within float32 rounding of float64."""
    r32, r64 = np.random.default_rng(4), np.random.default_rng(4)
    l32, l64 = make(r32, F32), make(r64, F64)
    np.testing.assert_array_equal(l32.params["W"], l64.params["W"].astype(F32))
    l64.params["W"][...] = l32.params["W"]          # exactly the float32 values
    x = np.random.default_rng(5).standard_normal(shape).astype(F32)
    y32, y64 = l32.forward(x), l64.forward(x.astype(F64))
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
    dy = np.random.default_rng(6).standard_normal(y32.shape).astype(F32)
    np.testing.assert_allclose(l32.backward(dy), l64.backward(dy.astype(F64)), rtol=1e-5, atol=1e-5)
    for k in l32.grads:
        np.testing.assert_allclose(l32.grads[k], l64.grads[k], rtol=1e-5, atol=1e-5)


def test_softmax_cross_entropy_float32():
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((5, 10)).astype(F32)
    labels = rng.integers(0, 10, size=5)
    loss, grad = softmax_cross_entropy(logits, labels)
    assert np.asarray(loss).dtype == F32 and np.asarray(loss).shape == ()
    assert grad.dtype == F32 and grad.shape == logits.shape
    loss64, grad64 = softmax_cross_entropy(logits.astype(F64), labels)
    np.testing.assert_allclose(float(loss), float(loss64), rtol=1e-6)
    np.testing.assert_allclose(grad, grad64, rtol=1e-5, atol=1e-7)


def test_softmax_cross_entropy_shape_errors():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2,\)"):
        softmax_cross_entropy(np.zeros((3, 4)), np.zeros(2, dtype=int))


def test_sequential_float32_end_to_end():
    rng = np.random.default_rng(8)
    net = Sequential([("conv", Conv2d(1, 2, 3, rng, padding=1)), ("relu", ReLU()),
                      ("pool", MaxPool2d(2)), ("flatten", Flatten()),
                      ("fc", Dense(2 * 2 * 2, 3, rng)), ("drop", Dropout(0.5, rng))],
                     input_shape=(1, 4, 4))
    x = rng.standard_normal((2, 1, 4, 4)).astype(F32)
    y = net.forward(x, train=True)
    loss, dlogits = softmax_cross_entropy(y, np.array([0, 2]))
    assert y.dtype == F32 and dlogits.dtype == F32
    assert net.backward(dlogits).dtype == F32
    assert all(g.dtype == F32 for g in net.grads().values())


# -- dtype mismatch ---------------------------------------------------------------------
@pytest.mark.parametrize("layer_dtype,input_dtype", [(F32, F64), (F64, F32)])
def test_dense_dtype_mismatch_raises(layer_dtype, input_dtype):
    layer = Dense(3, 2, np.random.default_rng(0), dtype=layer_dtype)
    with pytest.raises(TypeError, match=np.dtype(input_dtype).name):
        layer.forward(np.zeros((2, 3), dtype=input_dtype))


@pytest.mark.parametrize("layer_dtype,input_dtype", [(F32, F64), (F64, F32), (F32, np.float16)])
def test_conv2d_dtype_mismatch_raises(layer_dtype, input_dtype):
    layer = Conv2d(2, 2, 3, np.random.default_rng(0), dtype=layer_dtype)
    with pytest.raises(TypeError, match=np.dtype(input_dtype).name):
        layer.forward(np.zeros((1, 2, 4, 4), dtype=input_dtype))


# -- shape errors name what was expected and what was given --------------------------
def _msg(excinfo):
    return str(excinfo.value)


def test_dense_wrong_features_message():
    layer = Dense(5, 3, np.random.default_rng(0))
    with pytest.raises(ValueError) as e:
        layer.forward(np.zeros((2, 4), dtype=F32))
    assert re.search(r"\b5\b", _msg(e)) and "(2, 4)" in _msg(e), _msg(e)


def test_dense_wrong_rank_message():
    layer = Dense(6, 3, np.random.default_rng(0))
    with pytest.raises(ValueError) as e:
        layer.forward(np.zeros((2, 2, 3), dtype=F32))
    assert re.search(r"\b6\b", _msg(e)) and "(2, 2, 3)" in _msg(e), _msg(e)


def test_conv2d_wrong_channels_message():
    layer = Conv2d(3, 4, 3, np.random.default_rng(0))
    with pytest.raises(ValueError) as e:
        layer.forward(np.zeros((4, 2, 6, 7), dtype=F32))
    assert re.search(r"\b3\b", _msg(e)) and "2, 6, 7" in _msg(e), _msg(e)


def test_conv2d_three_dimensional_input_message():
    layer = Conv2d(3, 4, 3, np.random.default_rng(0))
    with pytest.raises(ValueError) as e:
        layer.forward(np.zeros((3, 6, 7), dtype=F32))
    assert re.search(r"\b3\b", _msg(e)) and "(3, 6, 7)" in _msg(e), _msg(e)


def test_maxpool2d_three_dimensional_input_message():
    with pytest.raises(ValueError) as e:
        MaxPool2d(2).forward(np.zeros((3, 6, 7), dtype=F32))
    assert "(3, 6, 7)" in _msg(e), _msg(e)


def test_input_smaller_than_kernel_at_forward_raises():
    with pytest.raises(ValueError, match="kernel"):
        Conv2d(1, 1, 5, np.random.default_rng(0), padding=1).forward(np.zeros((1, 1, 2, 6), dtype=F32))
    with pytest.raises(ValueError, match="kernel"):
        MaxPool2d((1, 4)).forward(np.zeros((1, 1, 6, 3), dtype=F32))


def test_sequential_validates_chain_and_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fc"):
        Sequential([("flatten", Flatten()), ("fc", Dense(10, 2, rng))], input_shape=(1, 3, 3))
    net = Sequential([("flatten", Flatten()), ("fc", Dense(9, 2, rng))], input_shape=(1, 3, 3))
    assert net.output_shape == (2,)
    with pytest.raises(ValueError) as e:
        net.forward(np.zeros((2, 1, 3, 4), dtype=F32))
    assert "1, 3, 3" in _msg(e) and "(2, 1, 3, 4)" in _msg(e), _msg(e)
    with pytest.raises(ValueError, match="unique"):
        Sequential([("a", ReLU()), ("a", ReLU())], input_shape=(3,))


# -- construction-time refusals -----------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    dict(stride=0), dict(stride=(1, 0)), dict(stride=(-1, 1)),
    dict(padding=-1), dict(padding=(0, -2)),
    dict(kernel_size=0), dict(kernel_size=(3, 0)),
    dict(kernel_size=1.5), dict(stride=(1, 2, 3)),
    dict(kernel_size=6, input_shape=(1, 4, 4)),                  # 6 > 4 (no padding)
    dict(kernel_size=(3, 7), padding=1, input_shape=(1, 8, 4)),  # 7 > 4 + 2
    dict(input_shape=(2, 8, 8)),                                 # wrong channels
])
def test_conv2d_refuses_bad_geometry(kwargs):
    args = dict(kernel_size=3)
    args.update(kwargs)
    k = args.pop("kernel_size")
    with pytest.raises(ValueError):
        Conv2d(1, 2, k, np.random.default_rng(0), **args)


def test_conv2d_accepts_kernel_that_fits_thanks_to_padding():
    layer = Conv2d(1, 2, (3, 6), np.random.default_rng(0), padding=1, input_shape=(1, 1, 4))
    assert layer.output_shape((1, 1, 4)) == (2, 1, 1)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2, stride=0), dict(kernel_size=0), dict(kernel_size=(2, 2), stride=(1, -1)),
    dict(kernel_size=5, input_shape=(1, 4, 6)), dict(kernel_size=(2, 7), input_shape=(3, 8, 6)),
])
def test_maxpool2d_refuses_bad_geometry(kwargs):
    with pytest.raises(ValueError):
        MaxPool2d(**kwargs)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_refuses_rate_outside_unit_interval(p):
    with pytest.raises(ValueError):
        Dropout(p, np.random.default_rng(0))


def test_dropout_accepts_rate_zero_and_just_below_one():
    Dropout(0.0, np.random.default_rng(0))
    Dropout(0.999, np.random.default_rng(0))


@pytest.mark.parametrize("fin,fout", [(0, 3), (3, 0), (-1, 2)])
def test_dense_refuses_non_positive_sizes(fin, fout):
    with pytest.raises(ValueError):
        Dense(fin, fout, np.random.default_rng(0))


# -- initialisation ---------------------------------------------------------------------
@pytest.mark.parametrize("make,fan_in,fan_out", [
    (lambda r: Dense(400, 200, r), 400, 200),
    (lambda r: Conv2d(16, 32, (3, 5), r), 16 * 15, 32 * 15),
    (lambda r: Conv2d(64, 64, 3, r, dtype=F64), 64 * 9, 64 * 9),
])
def test_glorot_normal_statistics_and_zero_biases(make, fan_in, fan_out):
    layer = make(np.random.default_rng(11))
    w = np.asarray(layer.params["W"], dtype=F64).ravel()
    std = np.sqrt(2.0 / (fan_in + fan_out))
    n = w.size
    assert abs(w.mean()) < 5 * std / np.sqrt(n)
    assert abs(w.std() / std - 1) < 5 / np.sqrt(2 * n)    # ~5 standard errors of a sample std
    inside = np.mean(np.abs(w) < std)                      # normal, not uniform (0.683 vs 0.577)
    assert abs(inside - 0.6827) < 5 * np.sqrt(0.6827 * 0.3173 / n)
    b = np.asarray(layer.params["b"])
    assert b.shape == (layer.params["W"].shape[0],) and np.all(b == 0)


def test_same_streams_seed_gives_identical_initial_weights():
    def build(seed):
        s = Streams.from_seed(seed)
        return [Dense(20, 10, s.init), Conv2d(3, 4, (3, 2), s.init), Dense(10, 5, s.init)]

    a, b, c = build(123), build(123), build(124)
    for la, lb, lc in zip(a, b, c):
        np.testing.assert_array_equal(la.params["W"], lb.params["W"])
        assert not np.array_equal(la.params["W"], lc.params["W"])


def test_streams_are_independent_per_purpose():
    s = Streams.from_seed(5)
    draws = [getattr(s, p).random(8) for p in ("init", "data", "dropout", "mask")]
    assert len({d.tobytes() for d in draws}) == 4
    t = Streams.from_seed(5)
    t.data.random(100)                 # consuming one stream leaves the others untouched
    np.testing.assert_array_equal(Streams.from_seed(5).init.random(8), t.init.random(8))


# -- dropout ---------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_eval_mode_is_identity(p):
    x = np.random.default_rng(0).standard_normal((4, 7)).astype(F32)
    layer = Dropout(p, np.random.default_rng(1))
    y = layer.forward(x, train=False)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(layer.forward(x), x)      # train defaults to False


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_train_mode_statistics(p):
    layer = Dropout(p, np.random.default_rng(2))
    x = np.full((400, 250), 3.0, dtype=F32)
    y = layer.forward(x, train=True)
    n = x.size
    zeros = np.mean(y == 0)
    assert abs(zeros - p) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[y != 0], 3.0 / (1 - p), rtol=1e-6)
    assert abs(y.mean() - 3.0) < 5 * 3.0 * np.sqrt(p / (1 - p) / n)
    # per element expectation over many draws
    small = np.array([[-1.0, 0.5, 2.0]], dtype=F32)
    mean = np.mean([layer.forward(small, train=True) for _ in range(4000)], axis=0)
    np.testing.assert_allclose(mean, small, atol=5 * 2.0 * np.sqrt(p / (1 - p) / 4000))


def test_dropout_draws_a_new_mask_each_call():
    layer = Dropout(0.5, np.random.default_rng(3))
    x = np.ones((10, 10), dtype=F32)
    assert not np.array_equal(layer.forward(x, train=True), layer.forward(x, train=True))
