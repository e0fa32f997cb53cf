"""im2col against a naive gather, col2im as its adjoint, dtypes kept."""
import numpy as np
from hypothesis import given, settings, strategies as st

from minilottery.nn.im2col import col2im, im2col
from tests.reference import im2col_gather
from tests.strategies import conv_geometries, window_geometries


def _out_len(x_shape, window):
    kh, kw, sh, sw, ph, pw = window
    h, w = x_shape[2:]
    return ((h + 2 * ph - kh) // sh + 1) * ((w + 2 * pw - kw) // sw + 1)


@settings(max_examples=60, deadline=None)
@given(geo=window_geometries(), seed=st.integers(0, 2**16))
def test_im2col_matches_naive_gather(geo, seed):
    x_shape, window = geo
    x = np.random.default_rng(seed).standard_normal(x_shape)
    cols = im2col(x, *window)
    kh, kw = window[:2]
    assert cols.shape == (x_shape[0], x_shape[1] * kh * kw, _out_len(x_shape, window))
    np.testing.assert_array_equal(cols, im2col_gather(x, *window))


@settings(max_examples=60, deadline=None)
@given(geo=window_geometries(), seed=st.integers(0, 2**16))
def test_col2im_is_the_adjoint_of_im2col(geo, seed):
    """<im2col(x), c> = <x, col2im(c)> for random x and c."""
    x_shape, window = geo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    c = rng.standard_normal((x_shape[0], x_shape[1] * window[0] * window[1], _out_len(x_shape, window)))
    back = col2im(c.copy(), x_shape, *window)
    assert back.shape == x_shape
    lhs = float(np.sum(im2col(x, *window) * c))
    rhs = float(np.sum(x * back))
    scale = float(np.sum(np.abs(im2col(x, *window) * c))) or 1.0
    assert abs(lhs - rhs) <= 1e-10 * scale, (lhs, rhs)


@settings(max_examples=30, deadline=None)
@given(g=conv_geometries(), seed=st.integers(0, 2**16))
def test_col2im_of_im2col_multiplies_by_window_count(g, seed):
    """col2im ∘ im2col = x · (number of windows covering each pixel)."""
    x = np.random.default_rng(seed).standard_normal(g.x_shape)
    count = col2im(im2col(np.ones(g.x_shape), *g.window), g.x_shape, *g.window)
    np.testing.assert_allclose(col2im(im2col(x, *g.window), g.x_shape, *g.window), x * count,
                               rtol=1e-12, atol=1e-12)
    assert np.all(count >= 0) and np.all(count == np.round(count))


def test_col2im_inverts_im2col_for_tiling_windows():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 4))
    window = (3, 2, 3, 2, 0, 0)              # stride == kernel, tiles 6x4 exactly
    np.testing.assert_array_equal(col2im(im2col(x, *window), x.shape, *window), x)


def test_col2im_drops_padding_and_skipped_pixels():
    # 5x5 input padded to 7x7, 2x2 kernel, stride 3: windows cover padded rows {0,1} and
    # {3,4}, i.e. input rows {-1 (padding), 0} and {2, 3}; rows 1 and 4 are never read
    x_shape, window = (1, 1, 5, 5), (2, 2, 3, 3, 1, 1)
    c = np.ones((1, 4, _out_len(x_shape, window)))
    back = col2im(c, x_shape, *window)
    assert back.shape == x_shape
    covered = np.array([[1, 0, 1, 1, 0]], dtype=float)
    np.testing.assert_array_equal(back[0, 0], covered.T @ covered)


@settings(max_examples=25, deadline=None)
@given(geo=window_geometries(), seed=st.integers(0, 2**16))
def test_float32_preserved(geo, seed):
    x_shape, window = geo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    cols = im2col(x, *window)
    assert cols.dtype == np.float32
    np.testing.assert_array_equal(cols, im2col_gather(x, *window))
    back = col2im(rng.standard_normal(cols.shape).astype(np.float32), x_shape, *window)
    assert back.dtype == np.float32 and back.shape == x_shape


def test_im2col_does_not_modify_input_and_col2im_does_not_modify_cols():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 5))
    x0 = x.copy()
    cols = im2col(x, 3, 3, 1, 1, 1, 1)
    np.testing.assert_array_equal(x, x0)
    c0 = cols.copy()
    col2im(cols, x.shape, 3, 3, 1, 1, 1, 1)
    np.testing.assert_array_equal(cols, c0)
