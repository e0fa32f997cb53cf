"""Conv2d's ways, forced one at a time: the padded grid (gridconv.py) and the output
positions only (colconv.py) for the weight gradient; the forward on the grid (one input
channel) or the output positions; the input gradient as the full correlation on the input
positions ("same" padding), on the grid (other padding) or by col2im (strided). Each gives
the textbook im2col convolution and its adjoint (float64, strides, padding, non-square
kernels, one block or many), and passes a central-difference gradient check; Conv2d picks
the grid only for stride 1 on large maps.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minilottery.nn import conv, gridconv
from minilottery.nn.conv import Conv2d
from minilottery.nn.im2col import col2im, im2col
from tests.strategies import conv_geometries
from tests.test_gradients import check_layer

F64 = np.float64
PATHS = {"grid": 0, "columns": 10**9}   # GRID_MIN_SIDE that forces each (the grid only for stride 1)


@pytest.fixture(params=sorted(PATHS))
def path(request, monkeypatch):
    monkeypatch.setattr(conv, "GRID_MIN_SIDE", PATHS[request.param])
    return request.param


def oracle(layer, x, dy):
    """Forward, dx, dW, db by im2col + one product and col2im (nn/im2col.py)."""
    (kh, kw), (sh, sw), (ph, pw) = layer.k, layer.s, layer.p
    n, o = x.shape[0], layer.out_channels
    cols = im2col(x, kh, kw, sh, sw, ph, pw)                        # (N, C·kh·kw, Ho·Wo)
    w2 = layer.effective_weight().reshape(o, -1)
    y = w2 @ cols + layer.params["b"][:, None]
    d = dy.reshape(n, o, -1)
    dw = np.einsum("nop,nkp->ok", d, cols).reshape(layer.params["W"].shape)
    dx = col2im(np.einsum("ok,nop->nkp", w2, d), x.shape, kh, kw, sh, sw, ph, pw)
    return y.reshape(dy.shape), dx, dw, d.sum(axis=(0, 2))


@pytest.mark.parametrize("channels", [1, 4])
@pytest.mark.parametrize("k, s, p, hw", [((3, 3), (1, 1), (1, 1), (13, 14)), ((3, 3), (2, 2), (1, 1), (13, 14)),
                                         ((1, 1), (2, 2), (0, 0), (9, 8)), ((3, 2), (2, 3), (0, 2), (9, 10)),
                                         ((3, 3), (1, 1), (1, 1), (2, 2)), ((3, 3), (1, 1), (0, 0), (13, 14)),
                                         ((2, 3), (1, 1), (1, 2), (12, 13)), ((5, 3), (1, 1), (2, 1), (13, 12))])
def test_both_paths_equal_the_im2col_oracle(path, channels, k, s, p, hw):
    rng = np.random.default_rng(3)
    layer = Conv2d(channels, 5, k, rng, stride=s, padding=p, dtype=F64)
    layer.params["b"][...] = rng.standard_normal(5)
    layer.set_mask((rng.random(layer.params["W"].shape) < 0.7).astype(F64))
    x = rng.standard_normal((3, channels) + hw)
    y = layer.forward(x, train=True)
    assert layer.columns is (path == "columns" or s != (1, 1))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    want_y, want_dx, want_dw, want_db = oracle(layer, x, dy)
    np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grad_effective, want_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], want_dw * layer.mask, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], want_db, rtol=1e-12, atol=1e-12)
    assert layer.backward(dy, input_grad=False) is None


def test_columns_in_many_threaded_blocks_equal_one_block(monkeypatch):
    """One image per block (shared out to threads where BLAS has several) gives the one-block result."""
    monkeypatch.setattr(conv, "GRID_MIN_SIDE", 10**9)
    rng = np.random.default_rng(4)
    x, layer = rng.standard_normal((5, 3, 11, 9)), Conv2d(3, 4, 3, rng, stride=2, padding=1, dtype=F64)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx, dw = layer.backward(dy), layer.grads["W"].copy()
    monkeypatch.setattr(gridconv, "BLOCK_BYTES", 1)
    from minilottery.nn import colconv
    monkeypatch.setattr(colconv, "BLOCK_BYTES", 1)
    np.testing.assert_allclose(layer.forward(x), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dy), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], dw, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(g=conv_geometries(), seed=st.integers(0, 2**16), grid=st.booleans())
def test_both_paths_pass_the_gradient_check(g, seed, grid):
    rng = np.random.default_rng(seed)
    layer = g.conv(rng)
    layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    old = conv.GRID_MIN_SIDE
    conv.GRID_MIN_SIDE = 0 if grid else 10**9
    try:
        check_layer("Conv2d", layer, rng.standard_normal(g.x_shape), rng)
    finally:
        conv.GRID_MIN_SIDE = old


def test_float32_stays_float32_on_both_paths(path):
    rng = np.random.default_rng(5)
    layer = Conv2d(2, 3, 3, rng, stride=2, padding=1)
    x = rng.standard_normal((2, 2, 7, 7)).astype(np.float32)
    y = layer.forward(x, train=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert layer.grads["W"].dtype == layer.grads["b"].dtype == np.float32
