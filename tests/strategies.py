"""Hypothesis strategies for convolution and pooling geometries.

Every strategy returns a consistent geometry: the kernel always fits in the
(padded) input, so the output has at least one position.
"""
from typing import NamedTuple

import numpy as np
from hypothesis import assume, strategies as st

BATCH = st.integers(1, 3)
CHANNELS = st.integers(1, 3)
SPATIAL = st.integers(1, 7)
STRIDE = st.integers(1, 3)
PADDING = st.integers(0, 2)
KMAX = 4


class ConvGeometry(NamedTuple):
    n: int
    c_in: int
    c_out: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int

    @property
    def x_shape(self):
        return (self.n, self.c_in, self.h, self.w)

    @property
    def w_shape(self):
        return (self.c_out, self.c_in, self.kh, self.kw)

    @property
    def out_hw(self):
        return ((self.h + 2 * self.ph - self.kh) // self.sh + 1,
                (self.w + 2 * self.pw - self.kw) // self.sw + 1)

    @property
    def window(self):
        """(kh, kw, sh, sw, ph, pw): the im2col/col2im argument order."""
        return (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw)

    def conv(self, rng, dtype=np.float64):
        """A Conv2d of this geometry with a non-zero bias (so the db path is exercised)."""
        from minilottery.nn.conv import Conv2d
        layer = Conv2d(self.c_in, self.c_out, (self.kh, self.kw), rng, stride=(self.sh, self.sw),
                       padding=(self.ph, self.pw), dtype=dtype)
        layer.params["b"][...] = rng.standard_normal(self.c_out)
        return layer


class PoolGeometry(NamedTuple):
    n: int
    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    @property
    def out_hw(self):
        return ((self.h - self.kh) // self.sh + 1, (self.w - self.kw) // self.sw + 1)


@st.composite
def conv_geometries(draw, square=None):
    """A Conv2d geometry; ``square=True``/``False`` forces kh == kw / kh != kw."""
    n, c_in, c_out = draw(BATCH), draw(CHANNELS), draw(CHANNELS)
    h, w = draw(SPATIAL), draw(SPATIAL)
    ph, pw = draw(PADDING), draw(PADDING)
    kh = draw(st.integers(1, min(KMAX, h + 2 * ph)))
    if square:
        kh = min(kh, w + 2 * pw)   # a square kernel must fit both padded dimensions
        kw = kh
    else:
        kw = draw(st.integers(1, min(KMAX, w + 2 * pw)))
        if square is False:
            assume(kh != kw)
    sh, sw = draw(STRIDE), draw(STRIDE)
    return ConvGeometry(n, c_in, c_out, h, w, kh, kw, sh, sw, ph, pw)


@st.composite
def pool_geometries(draw):
    """A MaxPool2d geometry (no padding), kernels up to 4 and strides up to 3."""
    n, c = draw(BATCH), draw(CHANNELS)
    h, w = draw(SPATIAL), draw(SPATIAL)
    kh = draw(st.integers(1, min(KMAX, h)))
    kw = draw(st.integers(1, min(KMAX, w)))
    sh, sw = draw(STRIDE), draw(STRIDE)
    return PoolGeometry(n, c, h, w, kh, kw, sh, sw)


@st.composite
def window_geometries(draw):
    """An im2col geometry: (x_shape, (kh, kw, sh, sw, ph, pw))."""
    g = draw(conv_geometries())
    return g.x_shape, g.window
