"""Naive-loop oracles and a numerical-gradient helper for the engine's tests.

Everything here is deliberately slow and obvious: plain Python loops over
batch, output channel, input channel and output position, so that it can be
checked by eye against the definitions (NCHW, conv weight (out, in, kh, kw),
cross-correlation as in PyTorch).
"""
import numpy as np


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv2d_forward(x, w, b, stride=1, padding=0):
    """y[n, o, i, j] = b[o] + Σ_c Σ_{u,v} w[o, c, u, v] · xpad[n, c, i·sh + u, j·sw + v]."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n_, c_, h, wd = x.shape
    o_, c2, kh, kw = w.shape
    assert c2 == c_, (w.shape, x.shape)
    xp = np.zeros((n_, c_, h + 2 * ph, wd + 2 * pw), dtype=np.float64)
    for n in range(n_):
        for c in range(c_):
            for i in range(h):
                for j in range(wd):
                    xp[n, c, i + ph, j + pw] = x[n, c, i, j]
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n_, o_, ho, wo), dtype=np.float64)
    for n in range(n_):
        for o in range(o_):
            for i in range(ho):
                for j in range(wo):
                    acc = float(b[o])
                    for c in range(c_):
                        for u in range(kh):
                            for v in range(kw):
                                acc += float(w[o, c, u, v]) * float(xp[n, c, i * sh + u, j * sw + v])
                    y[n, o, i, j] = acc
    return y


def maxpool2d_forward(x, kernel, stride=None):
    """y[n, c, i, j] = max_{u<kh, v<kw} x[n, c, i·sh + u, j·sw + v] (no padding)."""
    kh, kw = _pair(kernel)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    n_, c_, h, wd = x.shape
    ho, wo = (h - kh) // sh + 1, (wd - kw) // sw + 1
    y = np.zeros((n_, c_, ho, wo), dtype=np.float64)
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    best = x[n, c, i * sh, j * sw]
                    for u in range(kh):
                        for v in range(kw):
                            best = max(best, x[n, c, i * sh + u, j * sw + v])
                    y[n, c, i, j] = best
    return y


def maxpool2d_backward_first_max(x, dy, kernel, stride=None):
    """Subgradient rule: each window's dy goes to its FIRST maximum in row-major order."""
    kh, kw = _pair(kernel)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    n_, c_, ho, wo = dy.shape
    dx = np.zeros(x.shape, dtype=np.float64)
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    best, at = None, None
                    for u in range(kh):            # row-major scan; strict '>' keeps the first
                        for v in range(kw):
                            val = x[n, c, i * sh + u, j * sw + v]
                            if best is None or val > best:
                                best, at = val, (i * sh + u, j * sw + v)
                    dx[n, c, at[0], at[1]] += dy[n, c, i, j]
    return dx


def im2col_gather(x, kh, kw, sh, sw, ph, pw):
    """cols[n, (c·kh + u)·kw + v, i·Wo + j] = xpad[n, c, i·sh + u, j·sw + v]."""
    n_, c_, h, wd = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    cols = np.zeros((n_, c_ * kh * kw, ho * wo), dtype=x.dtype)
    for n in range(n_):
        for c in range(c_):
            for u in range(kh):
                for v in range(kw):
                    for i in range(ho):
                        for j in range(wo):
                            r, s = i * sh + u - ph, j * sw + v - pw
                            if 0 <= r < h and 0 <= s < wd:
                                cols[n, (c * kh + u) * kw + v, i * wo + j] = x[n, c, r, s]
    return cols


def numerical_grad(f, arr, upstream, h=1e-5):
    """Central-difference gradient of L = Σ f() · upstream with respect to ``arr``.

    ``f`` takes no arguments and reads ``arr`` (perturbed in place, float64), so
    it works for inputs and for live parameter arrays alike. The difference is
    taken on the outputs before contracting with ``upstream``
    (Σ (f(a+h) − f(a−h)) · U / 2h): mathematically the central difference of L,
    with less cancellation error than subtracting two large sums.
    """
    assert arr.dtype == np.float64, arr.dtype
    grad = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = arr[idx]
        arr[idx] = old + h
        plus = np.array(f(), dtype=np.float64, copy=True)
        arr[idx] = old - h
        minus = np.array(f(), dtype=np.float64, copy=True)
        arr[idx] = old
        grad[idx] = np.sum((plus - minus) * upstream) / (2 * h)
    return grad


def rel_error(analytic, numeric, scale_floor=1e-3, floor=1e-12):
    """Largest element-wise relative error max_i |a_i − n_i| / d_i.

    d_i = max(|a_i|, |n_i|, scale_floor · max_j max(|a_j|, |n_j|), floor): entries
    that happen to lie near zero (a sum that nearly cancels) are judged at a
    thousandth of the array's scale rather than at their own, where the
    central difference's rounding (~1e-11 absolute) would dominate. Exact zeros
    on both sides count as 0.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    assert a.shape == n.shape, (a.shape, n.shape)
    if a.size == 0:
        return 0.0
    mag = np.maximum(np.abs(a), np.abs(n))
    denom = np.maximum(mag, max(scale_floor * float(mag.max()), floor))
    return float(np.max(np.abs(a - n) / denom))


def complex_step_grad(f, x, h=1e-20):
    """Complex-step gradient of the real-analytic scalar ``f`` at float64 ``x``.

    ∂f/∂x_i = Im f(x + i·h·e_i) / h, free of subtractive cancellation, so it is
    accurate to machine precision even for tiny gradient entries. Only for
    functions written with analytic operations (exp, log, sums, products).
    """
    assert x.dtype == np.float64, x.dtype
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        z = x.astype(np.complex128)
        z[idx] += 1j * h
        grad[idx] = np.imag(f(z)) / h
    return grad
