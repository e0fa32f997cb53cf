"""im2col / col2im for NCHW convolutions and pooling windows.

``im2col`` gathers every kh×kw patch with a strided view (no Python loop);
``col2im`` is its adjoint, ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩, computed by one
strided ``+=`` per kernel offset (kh·kw iterations, no scatter, deterministic
on CuPy too).

This is the textbook convolution, y = W₂ · im2col(x), kept as the readable
form and as the oracle that the faster grid convolution (gridconv.py, which
Conv2d uses) is tested against; MaxPool2d uses ``windows``.
"""

from minilottery.backend import xp_of


def out_size(size, k, s, p):
    """Output length of a window k, stride s, padding p over ``size`` inputs."""
    return (size + 2 * p - k) // s + 1


def pad(x, ph, pw):
    if ph == 0 and pw == 0:
        return x
    return xp_of(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def windows(x, kh, kw, sh, sw):
    """View (N, C, Ho, Wo, kh, kw) of all windows of an (already padded) x."""
    xp = xp_of(x)
    v = xp.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return v[:, :, ::sh, ::sw]


def im2col(x, kh, kw, sh, sw, ph, pw):
    """x (N, C, H, W) -> cols (N, C·kh·kw, Ho·Wo), one contiguous copy."""
    n, c = x.shape[:2]
    v = windows(pad(x, ph, pw), kh, kw, sh, sw)             # (N, C, Ho, Wo, kh, kw)
    ho, wo = v.shape[2:4]
    cols = v.transpose(0, 1, 4, 5, 2, 3)                      # (N, C, kh, kw, Ho, Wo)
    return xp_of(x).ascontiguousarray(cols).reshape(n, c * kh * kw, ho * wo)


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """Adjoint of im2col: cols (N, C·kh·kw, Ho·Wo) -> x (N, C, H, W)."""
    n, c, h, w = x_shape
    ho, wo = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    xp = xp_of(cols)
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    dx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):                                       # kernel offsets, not pixels
        for j in range(kw):
            dx[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += cols[:, :, i, j]
    return dx[:, :, ph:ph + h, pw:pw + w] if (ph or pw) else dx
