"""Layers with explicit forward and hand-derived backward passes.

Contract: ``forward(x, train)`` caches what ``backward(dy)`` needs;
``backward(dy)`` returns ``dx`` and fills ``grads`` with the keys of ``params``.

Masks (every prunable weight W; never biases): the forward uses the effective
weight W_eff = W ⊙ m + (1 − m) ⊙ F, with m a 0/1 mask (or a float multiplier)
and F a frozen fill (0 unless pruned weights are frozen at a value). Installing,
replacing or removing a mask or a fill never changes W. The backward keeps
∂L/∂W_eff in ``grad_effective`` (a score-trained mask turns it into its scores'
gradient without any layer code) and puts ∂L/∂W = ∂L/∂W_eff ⊙ m in ``grads["W"]``:
for a 0/1 mask on NumPy as a bitwise AND with its keep bits (all ones where m = 1),
which is the product where m = 1 and +0 where m = 0, an inf or nan there included.
An installed mask is a sealed (read-only) copy: a new mask is installed, never
edited in place, so the optimiser may know it by identity.
"""
import numpy as np

from minilottery.backend import asarray, device_rng, xp_of
from minilottery import blas
from minilottery.nn.init import glorot_normal, zeros


class Layer:
    """A layer without parameters (ReLU, Flatten, pooling, dropout)."""
    params: dict
    grads: dict

    def __init__(self):
        self.params, self.grads = {}, {}

    def output_shape(self, in_shape):
        """Shape of one example's output, (C, H, W) or (F,); validates the input."""
        return tuple(in_shape)

    def __repr__(self):
        return type(self).__name__ + "()"


def check_dtype(layer, x):
    if x.dtype != layer.dtype:
        raise TypeError(f"{type(layer).__name__} holds {layer.dtype} weights but got "
                        f"{x.dtype} input; convert the input (nothing is cast silently)")


class Prunable(Layer):
    """A layer with a weight W that can be masked: forward uses W ⊙ m + (1 − m) ⊙ F.

    ``kind`` says what pruning sees ("fc" or "conv"); ``output`` marks the
    network's output layer, which the papers prune at their own rate.
    ``backward(dy, input_grad=True)``: with ``input_grad=False`` only the parameter
    gradients are made and None is returned (for a network's first layer).
    """
    kind = "fc"

    def __init__(self, w_shape, bias_shape, rng, dtype, init=glorot_normal):
        """bias_shape None: no bias (a conv followed by BatchNorm); init(shape, rng, dtype) draws W."""
        super().__init__()
        self.dtype = np.dtype(dtype)
        self.params = {"W": init(w_shape, rng, self.dtype)}
        if bias_shape is not None:
            self.params["b"] = zeros(bias_shape, self.dtype)
        self.output = False         # set by the model builder on the output layer
        self.mask = None            # None means dense; else an array shaped like W
        self.keep = None            # a 0/1 mask's keep bits (all ones where m = 1), sealed, on NumPy
        self.fill = None            # (1 − m) ⊙ F, the frozen part of W_eff; None means F = 0
        self.grad_effective = None  # ∂L/∂W_eff, for score-trained masks
        self.trains_weight = True   # False under a score-trained mask (ScoreNet): no ∂L/∂W, W is frozen

    def effective_weight(self):
        """W ⊙ m + (1 − m) ⊙ F, the weight the forward pass uses."""
        w = self.params["W"]
        if self.mask is None:
            return w
        w_eff = w * self.mask
        if self.fill is not None:
            w_eff += self.fill
        return w_eff

    def set_mask(self, mask, fill=None):
        """Install a mask m shaped like W (None removes it) and optionally a frozen fill F.

        Copies both (never aliasing the caller's arrays) in W's dtype, the mask read-only;
        W itself is untouched.
        """
        w = self.params["W"]
        for name, a in (("mask", mask), ("fill", fill)):
            if a is not None and tuple(a.shape) != tuple(w.shape):
                raise ValueError(f"{name} shape {tuple(a.shape)} does not match weight shape {tuple(w.shape)}")
        if mask is None and fill is not None:
            raise ValueError("a frozen fill needs a mask (F shows only where m = 0)")
        self.install_mask(None if mask is None else asarray(mask, dtype=self.dtype).copy())
        self.fill = None
        if fill is not None:
            one = self.dtype.type(1)
            self.fill = (one - self.mask) * asarray(fill, dtype=self.dtype)  # (1 − m) ⊙ F

    def install_mask(self, mask):
        """Take ``mask`` (this layer's own array, or None) as the mask, sealed, with its keep bits."""
        self.mask = None if mask is None else sealed(mask)
        self.keep = keep_bits(self.mask)

    def use_mask(self, mask):
        """Install ``mask`` without a copy (a score-trained mask: its owner makes it anew or leaves it
        be until the next forward, and never writes it between a forward and its backward)."""
        if tuple(mask.shape) != tuple(self.params["W"].shape):
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match weight shape "
                             f"{tuple(self.params['W'].shape)}")
        self.mask, self.fill, self.keep = asarray(mask, dtype=self.dtype), None, None

    def _weight_grad(self, d_eff):
        # ∂L/∂W = ∂L/∂W_eff ⊙ m ; frozen and pruned weights get exactly zero gradient
        self.grad_effective = d_eff
        if self.trains_weight and self.keep is not None and d_eff.flags.c_contiguous:
            # a 0/1 mask by its bits: ∂L/∂W_eff where m = 1, +0 where m = 0 (an inf or nan there too)
            self.grads["W"] = np.bitwise_and(d_eff.view(self.keep.dtype), self.keep).view(d_eff.dtype)
        elif self.trains_weight:
            self.grads["W"] = d_eff if self.mask is None else d_eff * self.mask
        else:
            self.grads.pop("W", None)                     # W never trains here: only ∂L/∂W_eff is kept


def sealed(a):
    """a made read-only on NumPy: nothing changes an installed mask in place, so the optimiser
    may know it by identity (optim.py); a new mask is installed by ``set_mask``."""
    if isinstance(a, np.ndarray):
        a.flags.writeable = False
    return a


def keep_bits(mask):
    """A host 0/1 mask's bits: an unsigned integer of its width, all ones where m = 1, 0 where
    m = 0, sealed; None for another mask (a float multiplier) and off NumPy."""
    if not isinstance(mask, np.ndarray) or not ((mask == 0) | (mask == 1)).all():
        return None
    ones = np.iinfo(f"u{mask.itemsize}").max
    return sealed(np.multiply(mask != 0, ones, dtype=f"u{mask.itemsize}"))


def _matmul(a, b):
    """a @ b; on NumPy through blas.matmul (one thread when small, split by rows when big)."""
    return blas.matmul(a, b) if xp_of(a) is np else a @ b


class Dense(Prunable):
    """y = x W_effᵀ + b with W (out, in), PyTorch's layout."""

    def __init__(self, in_features, out_features, rng, dtype=np.float32, init=glorot_normal):
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Dense needs positive sizes, got in={in_features}, out={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        super().__init__((out_features, in_features), (out_features,), rng, dtype, init)

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.in_features,):
            raise ValueError(f"Dense expected input of shape (N, {self.in_features}), "
                             f"got (N, {', '.join(map(str, in_shape))})")
        return (self.out_features,)

    def forward(self, x, train=False):                    # x (N, in)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Dense expected input of shape (N, {self.in_features}), got {tuple(x.shape)}")
        check_dtype(self, x)
        self.x, self.w_eff = x, self.effective_weight()
        y = _matmul(x, self.w_eff.T)                       # (N, out)
        y += self.params["b"]
        return y

    def backward(self, dy, input_grad=True):              # dy (N, out)
        # dW_eff = dyᵀ x ; db = Σ_n dy ; dx = dy W_eff (skipped when input_grad is False)
        self._weight_grad(_matmul(dy.T, self.x))           # (out, in)
        self.grads["b"] = dy.sum(axis=0)
        return _matmul(dy, self.w_eff) if input_grad else None  # (N, in)

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features})"


class ReLU(Layer):
    def forward(self, x, train=False):
        self.positive = x > 0
        return xp_of(x).maximum(x, 0)

    def backward(self, dy):
        # ∂relu/∂x = 1[x > 0] (subgradient 0 at x = 0)
        return dy * self.positive


class Flatten(Layer):
    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def forward(self, x, train=False):                    # (N, C, H, W) -> (N, C·H·W)
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.shape)


class Dropout(Layer):
    """Inverted dropout: keep with probability 1-p and scale by 1/(1-p) in training."""

    def __init__(self, p, rng):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {p}")
        self.p, self.rng, self.noise = float(p), rng, None

    def forward(self, x, train=False):
        if not train or self.p == 0.0:
            self.scale = None
            return x
        if self.noise is None:
            self.noise = device_rng(self.rng)                 # drawn where x lives (NumPy: rng itself)
        keep = self.noise.random(x.shape) >= self.p
        self.scale = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self.scale

    def backward(self, dy):
        return dy if self.scale is None else dy * self.scale

    def __repr__(self):
        return f"Dropout({self.p})"
