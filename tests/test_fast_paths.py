"""The speed paths give the same numbers as the plain ones.

- ``Sequential.backward(dy, input_grad=False)`` skips only the data gradient.
- Conv2d and MaxPool2d give the same results for NCHW-contiguous and
  channels-last inputs (Conv2d outputs are channels-last views).
- Conv2d on the padded grid equals im2col + one matrix product, strides included,
  and gives the same numbers in one block or many (threaded) blocks.
- blas.matmul equals @ on one thread and split into row pieces.
- rng.uniform draws what Generator.random draws and leaves the stream where it leaves it.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilottery import blas
from minilottery.nn import Conv2d, MaxPool2d, gridconv
from minilottery.nn.im2col import im2col
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.models import build_model
from minilottery.rng import Streams, uniform

F64 = np.float64


@pytest.mark.parametrize("name", ["lenet_300_100", "conv2"])
def test_backward_without_input_grad_gives_the_same_parameter_grads(name):
    model = build_model(name, Streams.from_seed(0), dataset="mnist", dtype=F64)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3,) + model.input_shape)
    _, dlogits = softmax_cross_entropy(model.forward(x, train=True), rng.integers(0, 10, 3))
    assert model.backward(dlogits).shape == x.shape
    full = {k: v.copy() for k, v in model.grads().items()}
    assert model.backward(dlogits, input_grad=False) is None
    for k, g in model.grads().items():
        np.testing.assert_array_equal(g, full[k], err_msg=k)


def channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("layer", [Conv2d(3, 4, 3, np.random.default_rng(0), padding=1, dtype=F64),
                                   Conv2d(3, 4, (2, 3), np.random.default_rng(0), stride=(2, 1), dtype=F64),
                                   MaxPool2d(2), MaxPool2d(3, stride=2)])
def test_layers_do_not_depend_on_memory_layout(layer):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 8))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    np.testing.assert_allclose(layer.forward(channels_last(x)), y, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(layer.backward(channels_last(dy)), dx, rtol=1e-13, atol=1e-13)
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, grads[k], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("k, s, p", [((3, 3), (1, 1), (1, 1)), ((3, 2), (2, 3), (0, 2)), ((1, 1), (2, 2), (0, 0))])
def test_grid_convolution_equals_im2col_matmul(k, s, p):
    rng = np.random.default_rng(3)
    conv = Conv2d(4, 5, k, rng, stride=s, padding=p, dtype=F64)
    x = rng.standard_normal((3, 4, 9, 10))
    cols = im2col(x, *k, *s, *p)                               # (N, C·kh·kw, Ho·Wo)
    want = conv.params["W"].reshape(5, -1) @ cols + conv.params["b"][:, None]
    y = conv.forward(x)
    np.testing.assert_allclose(y.reshape(3, 5, -1), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k, s, p", [((3, 3), (1, 1), (1, 1)), ((2, 3), (2, 1), (1, 0))])
def test_grid_convolution_in_many_threaded_blocks_equals_one_block(monkeypatch, k, s, p):
    """Tiny blocks (shared out to threads where BLAS has several) give the one-block result."""
    rng = np.random.default_rng(4)
    x, conv = rng.standard_normal((5, 3, 11, 9)), Conv2d(3, 4, k, rng, stride=s, padding=p, dtype=F64)
    y = conv.forward(x)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv.backward(dy), conv.grads["W"].copy(), conv.grads["b"].copy()
    monkeypatch.setattr(gridconv, "BLOCK_BYTES", 1)            # 32-row blocks
    np.testing.assert_allclose(conv.forward(x), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.backward(dy), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.grads["W"], dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(conv.grads["b"], db)


def test_blas_matmul_small_and_split_products(monkeypatch):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(blas.matmul(a, b), a @ b, rtol=1e-14)
    np.testing.assert_allclose(blas.matmul(a.T.copy().T, b), a @ b, rtol=1e-14)
    monkeypatch.setattr(blas, "SMALL", 0)                      # every product is "big": row pieces
    np.testing.assert_allclose(blas.matmul(a, b), a @ b, rtol=1e-14)
    np.testing.assert_allclose(blas.matmul(b.T, a.T), (a @ b).T, rtol=1e-14)
    assert blas.matmul(a.astype(np.float32), b.astype(np.float32)).dtype == np.float32


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from([(784, 300), (300, 100), (4096,), (64, 64, 3, 3), (4097, 1), (100, 10), (5,)]),
       dtype=st.sampled_from([np.float32, np.float64]), before=st.integers(0, 3), seed=st.integers(0, 2**63))
def test_uniform_is_generator_random_bit_for_bit(shape, dtype, before, seed):
    # invariant: uniform(rng, shape, dtype) == rng.random(shape, dtype) bit for bit, and every draw after
    # it is the same too, whatever came before (an odd float32 draw leaves a half word buffered)
    ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
    for rng in (ours, numpys):
        rng.random(before, dtype=np.float32)
    got, want = uniform(ours, shape, dtype), numpys.random(shape, dtype=dtype)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    for draw in (lambda r: r.random(3, dtype=np.float32), lambda r: r.random(2), lambda r: r.integers(0, 2**40, 3)):
        assert draw(ours).tobytes() == draw(numpys).tobytes()
