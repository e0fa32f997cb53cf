"""Conv2d (im2col on the flattened padded grid, gridconv.py, or on the output positions
only, colconv.py) and MaxPool2d, NCHW.

Arrays keep PyTorch's (N, C, H, W) shapes at every layer boundary; a Conv2d
output is a view whose memory is channels-last, which the next layers keep.

- Forward: on the output positions (colconv.py). Its rows are exactly the
  (n, ho, wo) the layer returns, a compact array over which ReLU, BatchNorm and
  pooling then run contiguously; each row is the grid's dot product without the
  padding rows the grid computes in vain (the same bits wherever BLAS computes
  a row alike in blocks of any height, as OpenBLAS does at Conv-2's and
  ResNet-20's full widths; layers of a few channels can differ in the last bit).
- Weight gradient: on the grid for stride 1 on maps of at least GRID_MIN_SIDE,
  on the output positions otherwise (strided convolutions, small maps).
- Input gradient: for stride 1 and "same" padding (k − 1 = 2p, every stride-1
  convolution of these models) the grid's padded gradient G is dy padded for
  the full correlation, gathered on the input positions only (on large maps
  the grid's sums, the same bits as above, without its padding rows; on small
  maps instead of col2im's kh·kw strided adds). Otherwise the grid on large
  maps and col2im on small or strided ones.
"""
import numpy as np

from minilottery.backend import xp_of
from minilottery.nn import colconv
from minilottery.nn.gridconv import Grid, correlate, flipped_matrix, weight_grad, weight_matrix
from minilottery.nn.im2col import out_size, windows
from minilottery.nn.init import glorot_normal
from minilottery.nn.layers import Layer, Prunable, check_dtype

GRID_MIN_SIDE = 12   # output sides from which a stride-1 Conv2d's backward runs on the padded grid


def pair(v, name):
    """An int or a 2-tuple as (h, w), refusing non-integers."""
    t = (v, v) if np.isscalar(v) else tuple(v)
    if len(t) != 2 or not all(isinstance(i, (int, np.integer)) for i in t):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(t[0]), int(t[1])


def check_geometry(cls, in_shape, channels, k, s, p):
    """Validate an input (C, H, W) against a window; return (Ho, Wo)."""
    if len(in_shape) != 3 or (channels is not None and in_shape[0] != channels):
        want = f"(N, {channels if channels is not None else 'C'}, H, W)"
        raise ValueError(f"{cls} expected input of shape {want}, got (N, {', '.join(map(str, in_shape))})")
    h, w = in_shape[1:]
    if h + 2 * p[0] < k[0] or w + 2 * p[1] < k[1]:
        raise ValueError(f"{cls} kernel {k} is larger than the padded input {(h + 2 * p[0], w + 2 * p[1])}")
    return out_size(h, k[0], s[0], p[0]), out_size(w, k[1], s[1], p[1])


def check_window(cls, k, s, p):
    if min(k) < 1:
        raise ValueError(f"{cls} kernel size must be positive, got {k}")
    if min(s) < 1:
        raise ValueError(f"{cls} stride must be positive, got {s}")
    if min(p) < 0:
        raise ValueError(f"{cls} padding must be non-negative, got {p}")


class Conv2d(Prunable):
    """y[n, o] = Σ_c W_eff[o, c] ⋆ x[n, c] + b[o], W (out, in, kh, kw).

    ``input_shape`` (C, H, W), when given, is validated at construction;
    ``bias=False`` leaves b out (a conv followed by BatchNorm); ``init`` draws W.
    """
    kind = "conv"
    runs = 1            # R runs stacked in one layer (nn/stacked.py)

    def __init__(self, in_channels, out_channels, kernel_size, rng, stride=1, padding=0,
                 dtype=np.float32, input_shape=None, bias=True, init=glorot_normal):
        self.k, self.s, self.p = pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding")
        check_window("Conv2d", self.k, self.s, self.p)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv2d needs positive channels, got in={in_channels}, out={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        if input_shape is not None:
            self.output_shape(input_shape)
        super().__init__((out_channels, in_channels) + self.k, (out_channels,) if bias else None, rng, dtype, init)

    def output_shape(self, in_shape):
        return (self.out_channels,) + check_geometry("Conv2d", tuple(in_shape), self.in_channels, self.k, self.s, self.p)

    def forward(self, x, train=False):                        # x (N, C, H, W)
        if x.ndim != 4:
            raise ValueError(f"Conv2d expected input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        self.output_shape(x.shape[1:])
        check_dtype(self, x)
        self.X = None                                          # drop the last cache before making one
        grid = self.grid = Grid(x.shape, self.k, self.s, self.p, self.runs)
        self.X = grid.pad_input(x)                             # (N·Hp·Wp + lead, C) padded rows
        self.w_eff = self.effective_weight()                   # (O, C, kh, kw)
        self.columns = self.s != (1, 1) or min(grid.ho, grid.wo) < GRID_MIN_SIDE   # the backward's path
        y = colconv.correlate(grid, self.X, weight_matrix(self.w_eff), self.params.get("b"))  # (N·Ho·Wo, O)
        return y.reshape(grid.n, grid.ho, grid.wo, -1).transpose(0, 3, 1, 2)               # (N, O, Ho, Wo)

    def backward(self, dy, input_grad=True):                   # dy (N, O, Ho, Wo)
        # dW_eff = Σ_p dy[p]ᵀ im2col(x)[p] ; db = Σ_{n,h,w} dy ; dx = im2col(dy')·W_flip (full correlation)
        grid = self.grid
        if self.columns:
            return self._columns_backward(dy, input_grad)
        G = grid.pad_grad(dy)                                  # (lead + N·Hp·Wp, O)
        dw = weight_grad(grid, G[grid.lead:], self.X)          # (R, O, kh·kw·C), columns (i, j, c)
        self._weight_grad(self._kernel_order(dw))
        if "b" in self.params:
            self.grads["b"] = self._bias_grad(dy, (0, 2, 3))
        if not input_grad:                                     # the first layer: nobody needs dL/dx
            return None
        full = grid.full_grid(G)
        if full is not None:
            return self._full_correlation(full)
        dx = correlate(grid, G, flipped_matrix(self.w_eff), grid.input_rows())  # (N·Hp·Wp, C), padded
        return grid.input_of(dx)                               # (N, C, H, W)

    def _full_correlation(self, full):
        # dx = im2col(dy')·W_flip on the input positions only (dy' = dy padded by k − 1 − p, gridconv.full_grid)
        grid = self.grid
        dx = colconv.correlate(*full, flipped_matrix(self.w_eff), None)               # (N·H·W, C)
        return dx.reshape(grid.n, grid.h, grid.w, -1).transpose(0, 3, 1, 2)       # (N, C, H, W)

    def _columns_backward(self, dy, input_grad):
        # the same three gradients on the output positions only (colconv.py)
        grid, xp = self.grid, xp_of(dy)
        dY = xp.ascontiguousarray(dy.transpose(0, 2, 3, 1)).reshape(-1, self.out_channels)  # (N·Ho·Wo, O)
        dw = colconv.weight_grad(grid, dY, self.X)             # (R, O, kh·kw·C), columns (i, j, c)
        self._weight_grad(self._kernel_order(dw))
        if "b" in self.params:
            self.grads["b"] = self._bias_grad(dY, 0)
        if not input_grad:
            return None
        full = None if self.s != (1, 1) else grid.full_grid(grid.pad_grad(dy))
        if full is not None:                                   # stride 1, "same" padding: no col2im
            return self._full_correlation(full)
        dX = colconv.input_grad(grid, dY, weight_matrix(self.w_eff))  # (N, Hp, Wp, C)
        return dX[:, grid.ph:grid.ph + grid.h, grid.pw:grid.pw + grid.w].transpose(0, 3, 1, 2)  # (N, C, H, W)

    def _kernel_order(self, dw):
        """(R, O, kh·kw·C) columns (i, j, c) -> W's shape, (O, C, kh, kw) or (R, O, C, kh, kw)."""
        (o, c), (kh, kw) = self.params["W"].shape[-4:-2], self.k
        dw = dw.reshape(self.runs, o, kh, kw, c).transpose(0, 1, 4, 2, 3)
        return xp_of(dw).ascontiguousarray(dw.reshape(self.params["W"].shape))

    def _bias_grad(self, dy, axes):
        # db = Σ dy over the batch (and positions), per run: each run's rows summed as alone
        if self.runs == 1:
            return dy.sum(axis=axes)
        n = dy.shape[0] // self.runs
        return xp_of(dy).stack([dy[r * n:(r + 1) * n].sum(axis=axes) for r in range(self.runs)])

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.k}, "
                f"stride={self.s}, padding={self.p})")


def _max_of_four(xp, s0, s1, s2, s3):
    """y = max(s0, s1, s2, s3) as a tree, and which of them holds the first maximum:
    the pair (0, 1) when max(s0, s1) ≥ max(s2, s3), then the first of the pair when it is ≥."""
    a, b = xp.maximum(s0, s1), xp.maximum(s2, s3)
    y = xp.maximum(a, b)                                       # the values of the chained max, bit for bit
    left, first_a, first_b = a >= b, s0 >= s1, s2 >= s3
    none_left = left | first_b
    return y, [left & first_a, left > first_a, first_b > left, ~none_left]


class MaxPool2d(Layer):
    """y = max over each kh×kw window; the gradient goes to the first maximum in each window."""

    def __init__(self, kernel_size, stride=None, input_shape=None):
        super().__init__()
        self.k = pair(kernel_size, "kernel_size")
        self.s = self.k if stride is None else pair(stride, "stride")
        check_window("MaxPool2d", self.k, self.s, (0, 0))
        if input_shape is not None:
            self.output_shape(input_shape)

    def output_shape(self, in_shape):
        return (in_shape[0],) + check_geometry("MaxPool2d", tuple(in_shape), None, self.k, self.s, (0, 0))

    def forward(self, x, train=False):                        # x (N, C, H, W)
        if x.ndim != 4:
            raise ValueError(f"MaxPool2d expected input of shape (N, C, H, W), got {tuple(x.shape)}")
        self.output_shape(x.shape[1:])
        xp, (kh, kw) = xp_of(x), self.k
        v = windows(x, *self.k, *self.s)                       # (N, C, Ho, Wo, kh, kw) view
        offsets = [v[..., i, j] for i in range(kh) for j in range(kw)]  # kh·kw views (N, C, Ho, Wo)
        if (kh, kw) == (2, 2):
            y, self.first = _max_of_four(xp, *offsets)
        else:
            y = xp.array(offsets[0], order="K")                # in x's memory order
            for s in offsets[1:]:
                xp.maximum(y, s, out=y)                        # y = max over the window
            # first[k]: offset k holds the window's first maximum (ties go to the first)
            self.first, taken = [], xp.zeros_like(y, dtype=bool)   # kh·kw masks (N, C, Ho, Wo), y's order
            for s in offsets:
                hit = s == y
                hit &= ~taken
                taken |= hit
                self.first.append(hit)
        self.x_shape = x.shape
        self.channels_last = x.shape[1] > 1 and x.strides[1] == x.itemsize  # as a Conv2d output is
        return y

    def backward(self, dy):                                    # dy (N, C, Ho, Wo)
        # ∂y/∂x = 1 at the (first) arg-max of each window, 0 elsewhere
        xp = xp_of(dy)
        (kh, kw), (sh, sw) = self.k, self.s
        n, c, h, w = self.x_shape
        ho, wo = dy.shape[2:]
        tiled = (sh, sw) == (kh, kw) and h == kh * ho and w == kw * wo  # each x in exactly one window
        alloc = xp.empty if tiled else xp.zeros
        if self.channels_last:                                 # all operands in x's memory order
            dy = xp.ascontiguousarray(dy.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
            dx = alloc((n, h, w, c), dy.dtype).transpose(0, 3, 1, 2)
        else:
            dx = alloc(self.x_shape, dy.dtype)                 # (N, C, H, W)
        for k in range(kh * kw):
            i, j = divmod(k, kw)
            part = dx[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw]
            if tiled:
                xp.multiply(dy, self.first[k], out=part)
            else:
                part += dy * self.first[k]
        return dx

    def __repr__(self):
        return f"MaxPool2d(kernel_size={self.k}, stride={self.s})"
