"""Convolution on the flattened padded grid, one block of rows at a time.

Pad the input, lay it out channels-last and flatten it to rows: X (N·Hp·Wp, C).
The kernel offset (i, j) is then a shift of the row index by i·Wp + j, so the
im2col row of grid position p is [X[p + i·Wp + j] for i < kh, j < kw] and

    Y[p] = Σ_ij X[p + i·Wp + j] W_ij          W_ij = W[:, :, i, j]ᵀ   (C, O)

is the cross-correlation wherever the window fits (h ≤ Hp − kh, w ≤ Wp − kw);
a stride s keeps the positions (s·ho, s·wo) and the other rows are discarded.
A block of rows gathers its im2col rows with one strided copy (about 2 MB,
which stays in cache) and makes one GEMM with K = kh·kw·C, so no
(N·Ho·Wo, C·kh·kw) column matrix is ever materialised: the backward keeps X,
the padded input, instead. With G the output gradient placed on the grid
(zeros on discarded rows):

    dW = Σ_p G[p]ᵀ im2col(X)[p]                          (O, kh·kw·C)
    dX[q] = Σ_ij G[q − i·Wp − j] W_ijᵀ = Σ_ij G'[q + i·Wp + j] W_flip,ijᵀ

where G' is G behind ``lead`` zero rows and W_flip the kernel turned by 180°:
the input gradient is the same gathered product on G' with the flipped kernel.
On NumPy the blocks are shared out to Python threads, each with a
single-threaded BLAS (``blas.thread_map``). Conv2d (conv.py) takes the grid for
the weight gradient on large maps and ``full_grid``'s view of G' for the input
gradient; its forward gathers the output positions only (colconv.py).

Stacked runs (nn/stacked.py): R runs' images lie one run after another on one
grid of R·N images, with one weight matrix per run, (R, kh·kw·C, O). A block of
a run's rows is gathered and multiplied for every run in turn on NumPy (the
gathered rows stay cache-sized; one BLAS call each, as a batched matmul makes
anyway), for all R runs at once on CuPy, (R, B, kh·kw·C) in one batched product:
per run the same rows and the same shapes as alone. A run's reads past its last
image touch only discarded rows, or, in the input gradient, the zero tail of the
run before.
"""
import numpy as np

from minilottery.backend import xp_of
from minilottery.blas import thread_map
from minilottery.nn.im2col import out_size

BLOCK_BYTES = 1 << 21  # gathered im2col rows per block on NumPy (L2/L3-cache-sized)
GROUPS = 8             # partial sums of the weight gradient (blocks shared out to threads)


class Grid:
    """Geometry of an (N, C, H, W) input padded by (ph, pw) and flattened to rows."""

    def __init__(self, x_shape, k, s, p, runs=1):
        """runs R: the N images are R runs' N/R images each, one run after another."""
        self.n, self.c, self.h, self.w = x_shape
        (self.kh, self.kw), (self.sh, self.sw), (self.ph, self.pw) = k, s, p
        self.hp, self.wp = self.h + 2 * self.ph, self.w + 2 * self.pw
        self.ho, self.wo = out_size(self.h, self.kh, self.sh, self.ph), out_size(self.w, self.kw, self.sw, self.pw)
        self.rows = self.n * self.hp * self.wp
        self.runs, self.run_images, self.run_rows = runs, self.n // runs, self.rows // runs
        self.lead = (self.kh - 1) * self.wp + (self.kw - 1)      # the largest row shift

    def kept(self, rows):
        """The output positions of a (rows, F) grid array, as an (N, Ho, Wo, F) view."""
        g = rows[:self.rows].reshape(self.n, self.hp, self.wp, rows.shape[1])
        return g[:, :self.sh * (self.ho - 1) + 1:self.sh, :self.sw * (self.wo - 1) + 1:self.sw]

    def pad_input(self, x):
        """x (N, C, H, W) -> X (rows + lead, C): zero-padded, channels-last, ``lead`` zero rows after."""
        X = xp_of(x).empty((self.rows + self.lead, self.c), dtype=x.dtype)
        X[self.rows:] = 0
        g = X[:self.rows].reshape(self.n, self.hp, self.wp, self.c)
        _zero_around(g, self.ph, self.pw, self.h, self.w)          # only the padding is cleared
        g[:, self.ph:self.ph + self.h, self.pw:self.pw + self.w] = x.transpose(0, 2, 3, 1)
        return X

    def pad_grad(self, dy):
        """dy (N, O, Ho, Wo) -> G' (lead + rows, O): dy on the kept rows, zeros elsewhere."""
        xp = xp_of(dy)
        if (self.sh, self.sw) != (1, 1):
            G = xp.zeros((self.lead + self.rows, dy.shape[1]), dtype=dy.dtype)
        else:                                                      # kept rows are one block per image
            G = xp.empty((self.lead + self.rows, dy.shape[1]), dtype=dy.dtype)
            G[:self.lead] = 0
            _zero_around(G[self.lead:].reshape(self.n, self.hp, self.wp, -1), 0, 0, self.ho, self.wo)
        self.kept(G[self.lead:])[...] = dy.transpose(0, 2, 3, 1)
        return G

    def input_of(self, dX):
        """dX (rows, C) on the padded grid -> (N, C, H, W) view of the unpadded input."""
        g = dX.reshape(self.n, self.hp, self.wp, self.c)
        return g[:, self.ph:self.ph + self.h, self.pw:self.pw + self.w].transpose(0, 3, 1, 2)

    def gather(self, A, start, stop, out, runs):
        """im2col rows of grid positions [start, stop) of the runs in the slice ``runs`` of A into out
        (runs, stop − start, kh·kw·F); A holds R runs of ``run_rows`` rows and ``lead`` rows after."""
        f, it, b, n = A.shape[1], A.itemsize, stop - start, runs.stop - runs.start
        as_strided, run = xp_of(A).lib.stride_tricks.as_strided, self.run_rows * f * it
        start += runs.start * self.run_rows
        if f == 1:                                                # one channel: a column per offset is
            for k in range(self.kh * self.kw):                    # 4x faster than copying 3-wide runs
                i, j = divmod(k, self.kw)
                out[:, :, k] = as_strided(A[start + i * self.wp + j:], shape=(n, b), strides=(run, it))
            return out
        windows = as_strided(                                     # [r, p, i, j, :] = A[r·run_rows + p + i·Wp + j]
            A[start:], shape=(n, b, self.kh, self.kw, f), strides=(run, f * it, self.wp * f * it, f * it, it))
        out.reshape(windows.shape)[...] = windows
        return out                                                # (runs, stop − start, kh·kw·F)

    def full_grid(self, G):
        """G' (lead + rows, O) as the zero-padded gradient of the full correlation, dx = im2col(dy')·W_flip
        over the input positions only: (its Grid, its rows), for stride 1 and "same" padding (k − 1 = 2p),
        where dy padded by k − 1 − p has the grid's shape and is G' from row ph·Wp + pw on; else None."""
        if (self.sh, self.sw) != (1, 1) or (self.kh - 1, self.kw - 1) != (2 * self.ph, 2 * self.pw):
            return None
        dy_shape = (self.n, G.shape[1], self.ho, self.wo)
        return Grid(dy_shape, (self.kh, self.kw), (1, 1), (self.ph, self.pw), self.runs), G[self.ph * self.wp + self.pw:]

    def output_rows(self):
        """Rows [first, last) of each image that hold its output positions."""
        return 0, self.sh * (self.ho - 1) * self.wp + self.sw * (self.wo - 1) + 1

    def input_rows(self):
        """Rows [first, last) of each image that hold its unpadded input."""
        first = self.ph * self.wp + self.pw
        return first, first + (self.h - 1) * self.wp + self.w

    def blocks(self, A, width, rows):
        """Row blocks covering rows [first, last) of every image of a run, about BLOCK_BYTES of
        gathered (block, width) rows each on NumPy (all at once on CuPy); the same for every run."""
        xp, (first, last), size = xp_of(A), rows, self.hp * self.wp
        step = max(32, BLOCK_BYTES // (width * A.itemsize)) if xp is np else self.run_rows
        out = []
        for n in range(self.run_images):
            a, b = n * size + first, n * size + last
            if out and b - out[-1][0] <= step:
                out[-1] = (out[-1][0], b)                         # small images: one block, gap included
            else:
                out += [(s, min(s + step, b)) for s in range(a, b, step)]
        return out


def _zero_around(g, top, left, h, w):
    """Zero every row of g (N, Hp, Wp, F) outside the block [top, top + h) × [left, left + w)."""
    g[:, :top] = 0
    g[:, top + h:] = 0
    g[:, top:top + h, :left] = 0
    g[:, top:top + h, left + w:] = 0


def weight_matrix(w):
    """W ([R,] O, C, kh, kw) -> ([R,] kh·kw·C, O), rows in the order of gathered columns (i, j, c)."""
    o, c, kh, kw = w.shape[-4:]
    runs = tuple(range(w.ndim - 4))
    t = w.transpose(runs + tuple(a + len(runs) for a in (2, 3, 1, 0)))
    return xp_of(w).ascontiguousarray(t).reshape(w.shape[:-4] + (kh * kw * c, o))


def flipped_matrix(w):
    """W ([R,] O, C, kh, kw) -> ([R,] kh·kw·O, C): the kernel turned by 180°, for the input gradient."""
    o, c, kh, kw = w.shape[-4:]
    runs = tuple(range(w.ndim - 4))
    t = w[..., ::-1, ::-1].transpose(runs + tuple(a + len(runs) for a in (2, 3, 0, 1)))
    return xp_of(w).ascontiguousarray(t).reshape(w.shape[:-4] + (kh * kw * o, c))


def run_groups(xp, runs):
    """The runs whose blocks are gathered and multiplied at once: one at a time on NumPy (cache-sized
    blocks), all R on CuPy (one batched product)."""
    return [slice(r, r + 1) for r in range(runs)] if xp is np else [slice(0, runs)]


def per_run(grid, wmat, bias):
    """The weight matrices as (R, K, O) and the bias as (R, 1, O) (or None): one of each per run."""
    return (wmat.reshape((grid.runs,) + wmat.shape[-2:]),
            None if bias is None else bias.reshape(grid.runs, 1, -1))


def _map(xp, fn, items):
    """fn over items: in Python threads with single-threaded BLAS on NumPy (blas.thread_map)."""
    return thread_map(fn, items) if xp is np else [fn(item) for item in items]


def correlate(grid, A, wmat, rows):
    """Out[p] = im2col(A)[p] @ wmat for the grid rows p in ``rows`` of every image: (N·Hp·Wp, wmat
    columns); the other rows are left unset (the input gradient, G' ⋆ W_flip). Stacked: wmat (R, K, O)."""
    xp, (wmat, _) = xp_of(A), per_run(grid, wmat, None)
    k, o = wmat.shape[1:]
    out = xp.empty((grid.runs, grid.run_rows, o), dtype=A.dtype)

    def block(rows):
        start, stop = rows
        for rs in run_groups(xp, grid.runs):
            work = xp.empty((rs.stop - rs.start, stop - start, k), dtype=A.dtype)
            xp.matmul(grid.gather(A, start, stop, work, rs), wmat[rs], out=out[rs, start:stop])  # (·,B,K)(·,K,O)
    _map(xp, block, grid.blocks(A, k, rows))
    return out.reshape(grid.rows, o)


def weight_grad(grid, G, X):
    """dW = Σ_p G[p]ᵀ im2col(X)[p] over the output rows: (R, O, kh·kw·C), columns ordered (i, j, c)."""
    xp, r = xp_of(X), grid.runs
    width, o = grid.kh * grid.kw * X.shape[1], G.shape[1]
    G3 = G[:grid.rows].reshape(r, grid.run_rows, o)

    def product(rows, rs, out):                                # G[block]ᵀ im2col(X)[block], runs rs
        start, stop = rows
        work = xp.empty((rs.stop - rs.start, stop - start, width), dtype=X.dtype)
        return xp.matmul(G3[rs, start:stop].swapaxes(1, 2), grid.gather(X, start, stop, work, rs), out=out)
    return summed(xp, grid.blocks(X, width, grid.output_rows()), (r, o, width), X.dtype, product)


def summed(xp, blocks, shape, dtype, product):
    """Σ over blocks of ``product(block, runs, out)``, a weight gradient ``shape`` (R, O, width):
    GROUPS partial sums (shared out to threads on NumPy), each of its blocks in order, then added."""
    groups = [blocks[i::GROUPS] for i in range(min(GROUPS, len(blocks)))]  # one partial sum each

    def partial(group):
        dw, part = xp.zeros(shape, dtype=dtype), xp.empty(shape, dtype=dtype)
        for block in group:
            for rs in run_groups(xp, shape[0]):
                dw[rs] += product(block, rs, part[rs])
        return dw
    parts = _map(xp, partial, groups)
    for p in parts[1:]:
        parts[0] += p
    return parts[0]
