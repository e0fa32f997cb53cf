"""Batch normalisation with PyTorch's semantics (Ioffe & Szegedy 2015; torch.nn.BatchNorm1d/2d).

Per channel c, over the batch (and, for BatchNorm2d, every position):
    train:  μ = mean x,  σ² = mean (x − μ)²  (biased: divided by M, the values per channel)
            x̂ = (x − μ) / √(σ² + ε),  y = γ x̂ + β
            running_mean ← (1 − ρ)·running_mean + ρ·μ
            running_var  ← (1 − ρ)·running_var  + ρ·σ²·M/(M − 1)   (unbiased)
    eval:   the same with μ, σ² replaced by running_mean, running_var (nothing updated).
ρ (momentum) = 0.1, ε = 1e-5. ``gamma`` (γ, init 1) and ``beta`` (β, init 0) are parameters,
in ``params``; ``running_mean`` (init 0) and ``running_var`` (init 1) are state, in
``buffers``: the optimiser never sees them, ``Sequential.get_weights()`` keeps them and every
reset restores them. With ``rng`` given, γ ~ U(0, 1) is drawn from it instead (open_lth's
"uniform" BatchNorm initialisation for its CIFAR networks).

The work is done on rows (N, k·C), k = H·W: a BatchNorm2d input (N, C, H, W) is seen in its
channels-last order (a view when its memory is channels-last, as a Conv2d output is; the
output keeps that layout), per-channel vectors tiled k times, so that every pass over memory
is one wide vectorised operation even where C is small.
"""
import numpy as np

from minilottery.backend import asarray, xp_of
from minilottery.nn.layers import Layer, check_dtype


class _BatchNorm(Layer):
    ndim = None  # 2 for (N, C), 4 for (N, C, H, W)

    def __init__(self, num_features, dtype=np.float32, momentum=0.1, eps=1e-5, rng=None):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"{type(self).__name__} needs a positive number of features, got {num_features}")
        if not 0.0 <= momentum <= 1.0 or not eps > 0:
            raise ValueError(f"{type(self).__name__} needs momentum in [0, 1] and eps > 0, got {momentum}, {eps}")
        self.num_features, self.dtype = int(num_features), np.dtype(dtype)
        self.momentum, self.eps = float(momentum), float(eps)
        c = self.num_features
        gamma = np.ones(c) if rng is None else rng.random(c)              # γ = 1, or γ ~ U(0, 1)
        self.params = {"gamma": asarray(gamma.astype(self.dtype)), "beta": asarray(np.zeros(c, self.dtype))}
        self.buffers = {"running_mean": asarray(np.zeros(c, self.dtype)),
                        "running_var": asarray(np.ones(c, self.dtype))}

    def output_shape(self, in_shape):
        if len(in_shape) != self.ndim - 1 or in_shape[0] != self.num_features:
            rest = ", H, W" if self.ndim == 4 else ""
            raise ValueError(f"{type(self).__name__} expected input of shape (N, {self.num_features}{rest}), "
                             f"got (N, {', '.join(map(str, in_shape))})")
        return tuple(in_shape)

    def _rows(self, x):                                        # (N, C[, H, W]) -> (N, k·C), k = H·W
        if x.ndim == 2:
            return x
        n, c, h, w = x.shape
        return x.transpose(0, 2, 3, 1).reshape(n, h * w * c)  # a view of a channels-last map

    def _unrows(self, r, shape):                               # (N, k·C) -> (N, C[, H, W])
        if len(shape) == 2:
            return r
        n, c, h, w = shape
        return r.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def _sum(self, r):                                         # Σ over the M = N·k values of each channel: (C,)
        return r.sum(axis=0).reshape(-1, self.num_features).sum(axis=0)

    def _tile(self, v, r):                                     # (C,) -> (k·C,), to broadcast against rows
        k = r.shape[1] // self.num_features
        return v if k == 1 else xp_of(v).tile(v, k)

    def forward(self, x, train=False):
        self.output_shape(tuple(x.shape[1:]))
        check_dtype(self, x)
        xp, r = xp_of(x), self._rows(x)                        # (N, k·C)
        m = r.size // self.num_features                        # M values per channel
        if train:
            if m < 2:
                raise ValueError(f"{type(self).__name__} in training needs more than one value per channel, got {m}")
            mean = self._sum(r) / m                            # μ = Σ x / M
            xc = r - self._tile(mean, r)                       # x − μ
            var = self._sum(xc * xc) / m                       # σ² = Σ (x − μ)² / M (biased)
            rho = self.momentum
            for buf, stat in ((self.buffers["running_mean"], mean), (self.buffers["running_var"], var * (m / (m - 1)))):
                buf *= 1.0 - rho
                buf += rho * stat                              # running ← (1 − ρ)·running + ρ·stat (σ² unbiased)
        else:
            var = self.buffers["running_var"]
            xc = r - self._tile(self.buffers["running_mean"], r)  # x − running_mean
        self.invstd = 1.0 / xp.sqrt(var + self.eps)            # 1 / √(σ² + ε)
        xc *= self._tile(self.invstd, r)
        self.xhat, self.train, self.m = xc, bool(train), m     # x̂ = (x − μ) / √(σ² + ε)
        y = xc * self._tile(self.params["gamma"], r)
        y += self._tile(self.params["beta"], r)                # y = γ x̂ + β
        return self._unrows(y, x.shape)

    def backward(self, dy):
        # ∂L/∂β = Σ dy ; ∂L/∂γ = Σ dy·x̂ ;
        # train: ∂L/∂x = γ/√(σ²+ε) · (dy − Σdy/M − x̂·Σ(dy·x̂)/M) (μ and σ² depend on x) ; eval: ∂L/∂x = γ/√(σ²+ε) · dy
        xp, d = xp_of(dy), self._rows(dy)                      # (N, k·C)
        dbeta = self._sum(d)
        dgamma = self._sum(d * self.xhat)
        self.grads = {"gamma": dgamma, "beta": dbeta}
        scale = self._tile(self.params["gamma"] * self.invstd, d)  # γ / √(σ² + ε)
        if self.train:
            dx = self.xhat * self._tile(dgamma / self.m, d)
            xp.subtract(d, dx, out=dx)
            dx -= self._tile(dbeta / self.m, d)
            dx *= scale
        else:
            dx = d * scale
        return self._unrows(dx, dy.shape)

    def __repr__(self):
        return f"{type(self).__name__}({self.num_features}, eps={self.eps:g}, momentum={self.momentum:g})"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features, statistics over the batch."""
    ndim = 2


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) maps, statistics per channel over batch and positions."""
    ndim = 4
