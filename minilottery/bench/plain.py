"""The yardstick of the speed guard: LeNet-300-100 and Conv-2 training steps in plain NumPy.

The same work as our step (forward, softmax cross-entropy, backward without the
data gradient, Adam with masked weights), on the same shapes, weights, masks and
batch, written straight: the textbook expressions, with temporaries, no layer
objects, no optimiser class. The convolution is the textbook im2col (a
``sliding_window_view`` copied into columns, one matmul), its input gradient a
col2im of nine strided adds; max-pooling reshapes 2×2 windows. Pruned weights
are kept at 0 as the early code did: gradient and weight multiplied by the mask;
Adam updates in place through one scratch array, as any careful NumPy code would.
Nothing here is used for training; ``guard`` times it against the real step.
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

B1, B2, EPS = 0.9, 0.999, 1e-8


def adam(p, g, m, v, tmp, t, lr, mask=None):
    """θ ← θ − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε) in place (tmp: scratch); pruned entries back to 0."""
    if mask is not None:
        g *= mask
    m *= B1
    m += np.multiply(g, 1 - B1, out=tmp)
    v *= B2
    np.multiply(g, g, out=tmp)
    tmp *= 1 - B2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp /= math.sqrt(1 - B2 ** t)
    tmp += EPS
    np.divide(m, tmp, out=tmp)
    tmp *= lr / (1 - B1 ** t)
    p -= tmp
    if mask is not None:
        p *= mask


def softmax_grad(z, y):
    """∂L/∂z of the mean cross-entropy: (softmax(z) − onehot(y)) / N."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    e[np.arange(len(y)), y] -= 1
    e /= len(y)
    return e


def conv3x3(x, w, b):
    """Stride 1, padding 1: x (N, C, H, W), w (O, C, 3, 3) -> y (N, O, H, W) and the columns."""
    n, c, h, wd = x.shape
    win = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * wd, c * 9)       # (N·H·W, C·9) copy
    y = cols @ w.reshape(w.shape[0], -1).T + b
    return y.reshape(n, h, wd, -1).transpose(0, 3, 1, 2), cols


def conv3x3_backward(dy, cols, w, x_shape, input_grad):
    """dW = dYᵀ cols ; db = Σ dY ; dx = col2im(dY W) when asked."""
    n, c, h, wd = x_shape
    dY = dy.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])                 # (N·H·W, O)
    gw, gb = (dY.T @ cols).reshape(w.shape), dY.sum(axis=0)
    if not input_grad:
        return gw, gb, None
    dcols = (dY @ w.reshape(w.shape[0], -1)).reshape(n, h, wd, c, 3, 3)
    dxp = np.zeros((n, c, h + 2, wd + 2), dtype=dy.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + wd] += dcols[..., i, j].transpose(0, 3, 1, 2)
    return gw, gb, dxp[:, :, 1:-1, 1:-1]


class PlainStep:
    """One training step of a LeNet / Conv-2 in plain NumPy; ``weights``/``masks`` by our keys."""

    def __init__(self, weights, masks, x, y, lr=1.2e-3):
        self.p = {k: np.array(v, copy=True) for k, v in weights.items()}
        self.masks = {k: np.array(v, copy=True) for k, v in masks.items()}
        for k, m in self.masks.items():
            self.p[k] *= m                                         # pruned weights are 0
        self.state = {k: (np.zeros_like(v), np.zeros_like(v), np.empty_like(v)) for k, v in self.p.items()}
        self.x, self.y, self.lr, self.t = x, y, lr, 0
        self.convs = sorted(k[:-2] for k in self.p if k.startswith("conv") and k.endswith(".W"))
        self.fcs = sorted(k[:-2] for k in self.p if k.startswith("fc") and k.endswith(".W"))

    def w(self, name):
        w = self.p[name + ".W"]
        return w * self.masks[name + ".W"] if name + ".W" in self.masks else w

    def __call__(self):
        self.t += 1
        grads, h, saved = {}, self.x, []
        for name in self.convs:                                    # conv, ReLU
            z, cols = conv3x3(h, self.w(name), self.p[name + ".b"])
            saved.append((name, cols, h.shape, z > 0))
            h = np.maximum(z, 0)
        if self.convs:                                             # 2×2 max-pool, flatten
            n, c, hh, ww = h.shape
            win = h.reshape(n, c, hh // 2, 2, ww // 2, 2)
            pooled = win.max(axis=(3, 5))
            hit = win == pooled[:, :, :, None, :, None]
            h = pooled.reshape(n, -1)
        h, acts = h.reshape(len(h), -1), []
        for i, name in enumerate(self.fcs):                        # dense, ReLU
            acts.append(h)
            h = h @ self.w(name).T + self.p[name + ".b"]
            if i < len(self.fcs) - 1:
                acts[-1] = (acts[-1], h > 0)
                h = np.maximum(h, 0)
        d = softmax_grad(h, self.y)
        for i in reversed(range(len(self.fcs))):
            name = self.fcs[i]
            a, _ = acts[i] if isinstance(acts[i], tuple) else (acts[i], None)
            grads[name + ".W"], grads[name + ".b"] = d.T @ a, d.sum(axis=0)
            if i > 0 or self.convs:
                d = d @ self.w(name)
                if i > 0:
                    d *= acts[i - 1][1]
        if self.convs:
            d = hit * d.reshape(pooled.shape)[:, :, :, None, :, None]
            d = d.reshape(n, c, hh, ww)
            for k, (name, cols, shape, positive) in reversed(list(enumerate(saved))):
                d = d * positive
                grads[name + ".W"], grads[name + ".b"], d = conv3x3_backward(
                    d, cols, self.w(name), shape, input_grad=k > 0)
        for key, g in grads.items():
            adam(self.p[key], g, *self.state[key], self.t, self.lr, self.masks.get(key))
