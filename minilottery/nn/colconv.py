"""Convolution on im2col rows of the output positions only: strided convolutions and small maps.

The grid convolution (gridconv.py) computes every row of the padded grid and
keeps the output positions: for a stride s it throws away all but about 1/s² of
its products, and on a small map (8×8 and below, where images share a block)
the padding rows outnumber the real ones. Here the rows are exactly the output
positions p = (n, ho, wo), gathered from X, the padded channels-last input
(N, Hp, Wp, C) that the layer keeps for its backward:

    cols[p] = [X[n, s·ho + i, s·wo + j, :] for i < kh, j < kw]    (kh·kw·C), order (i, j, c)
    Y[p] = cols[p] W₂ + b                                        W₂ (kh·kw·C, O), gridconv.weight_matrix
    dW₂ᵀ = Σ_p dY[p]ᵀ cols[p]                                    (O, kh·kw·C)
    dcols[p] = dY[p] W₂ᵀ ;  dX[n, s·ho + i, s·wo + j] += dcols[p, i, j]   (col2im: kh·kw strided adds)

Blocks of whole images (about BLOCK_BYTES of columns each) are gathered with one
strided copy and multiplied at once, so the (N·Ho·Wo, kh·kw·C) column matrix is
never materialised; blocks write disjoint rows of Y and disjoint images of dX,
so on NumPy they are shared out to Python threads (``blas.thread_map``).
Stacked runs (R runs' N/R images one run after another, weights (R, K, O)):
a block of a run's images is gathered and multiplied for each run in turn on
NumPy, for all R at once on CuPy (gridconv.run_groups), per run the shapes it
has alone.
"""
import numpy as np

from minilottery.backend import xp_of
from minilottery.nn.gridconv import BLOCK_BYTES, _map, per_run, run_groups, summed


def _padded(grid, X):
    """The grid's padded rows X (rows + lead, C) as an (N, Hp, Wp, C) view."""
    return X[:grid.rows].reshape(grid.n, grid.hp, grid.wp, X.shape[1])


def image_blocks(grid, width, itemsize):
    """[(n0, n1)] ranges of a run's images, about BLOCK_BYTES of (Ho·Wo, width) columns each."""
    per_image, n = grid.ho * grid.wo * width * itemsize, grid.run_images
    step = max(1, BLOCK_BYTES // per_image)
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def gather(grid, X4, n0, n1, out, runs):
    """The im2col rows of images [n0, n1) of the runs in the slice ``runs``: (runs, (n1 − n0)·Ho·Wo,
    kh·kw·C), one strided copy into out."""
    sn, sh, sw, sc = X4.strides
    windows = xp_of(X4).lib.stride_tricks.as_strided(           # [r, n, ho, wo, i, j, c]
        X4[runs.start * grid.run_images + n0:],
        shape=(runs.stop - runs.start, n1 - n0, grid.ho, grid.wo, grid.kh, grid.kw, X4.shape[3]),
        strides=(grid.run_images * sn, sn, grid.sh * sh, grid.sw * sw, sh, sw, sc))
    out.reshape(windows.shape)[...] = windows
    return out


def _blocks(grid, X4, width):
    return image_blocks(grid, width, X4.itemsize) if xp_of(X4) is np else [(0, grid.run_images)]


def correlate(grid, X, wmat, bias):
    """Y = cols(X) W₂ + b over the output positions: (N·Ho·Wo, O) rows, (n, ho, wo) order."""
    xp, X4, per, (wmat, bias) = xp_of(X), _padded(grid, X), grid.ho * grid.wo, per_run(grid, wmat, bias)
    k, o = wmat.shape[1:]
    out = xp.empty((grid.runs, grid.run_images * per, o), dtype=X.dtype)

    def block(images):
        n0, n1 = images
        for rs in run_groups(xp, grid.runs):
            work = xp.empty((rs.stop - rs.start, (n1 - n0) * per, k), dtype=X.dtype)
            y = xp.matmul(gather(grid, X4, n0, n1, work, rs), wmat[rs], out=out[rs, n0 * per:n1 * per])
            if bias is not None:                               # a conv before BatchNorm has none
                y += bias[rs]
    _map(xp, block, _blocks(grid, X4, k))
    return out.reshape(grid.n * per, o)


def weight_grad(grid, dY, X):
    """dW₂ᵀ = Σ_p dY[p]ᵀ cols[p]: (R, O, kh·kw·C), columns ordered (i, j, c)."""
    xp, X4, per, r = xp_of(X), _padded(grid, X), grid.ho * grid.wo, grid.runs
    width, o = grid.kh * grid.kw * X.shape[1], dY.shape[1]
    dY3 = dY.reshape(r, -1, o)

    def product(images, rs, out):                              # dY[block]ᵀ cols[block], runs rs
        n0, n1 = images
        work = xp.empty((rs.stop - rs.start, (n1 - n0) * per, width), dtype=X.dtype)
        return xp.matmul(dY3[rs, n0 * per:n1 * per].swapaxes(1, 2), gather(grid, X4, n0, n1, work, rs), out=out)
    return summed(xp, _blocks(grid, X4, width), (r, o, width), X.dtype, product)


def input_grad(grid, dY, wmat):
    """dX = col2im(dY W₂ᵀ) on the padded grid: (N, Hp, Wp, C), padding included."""
    xp, per, r, (wmat, _) = xp_of(dY), grid.ho * grid.wo, grid.runs, per_run(grid, wmat, None)
    c = wmat.shape[1] // (grid.kh * grid.kw)
    dX = xp.zeros((grid.n, grid.hp, grid.wp, c), dtype=dY.dtype)
    dX5, dY3 = dX.reshape((r, -1) + dX.shape[1:]), dY.reshape(r, -1, dY.shape[1])   # a run axis in front
    hi, wi = grid.sh * (grid.ho - 1) + 1, grid.sw * (grid.wo - 1) + 1   # extent of one offset's positions

    def block(images):
        n0, n1 = images
        for rs in run_groups(xp, r):
            dcols = xp.matmul(dY3[rs, n0 * per:n1 * per], wmat[rs].swapaxes(1, 2))   # (runs, rows, kh·kw·C)
            dcols = dcols.reshape(-1, n1 - n0, grid.ho, grid.wo, grid.kh, grid.kw, c)
            for i in range(grid.kh):                                   # kernel offsets, not pixels
                for j in range(grid.kw):
                    dX5[rs, n0:n1, i:i + hi:grid.sh, j:j + wi:grid.sw] += dcols[..., i, j, :]
    _map(xp, block, _blocks(grid, dX, wmat.shape[1]))
    return dX
