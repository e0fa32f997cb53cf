"""Mask-aware SGD, SGD with momentum, and Adam.

Every optimiser works on a model's live parameters (``model.params()``) and
gradients, in place. Masked entries are handled so that, after every step,
a pruned weight is exactly 0 and so is its optimiser state; every unpruned
entry evolves exactly as the unmasked optimiser on the same gradient would:
  g ← g ⊙ mask  (before the update)   and   θ ← θ ⊙ mask  (after it).
State is zeroed under a mask whenever a new mask is installed, and
``reset()`` starts it afresh (each IMP round does).
"""
import math

import numpy as np

from minilottery.backend import asarray, to_numpy, xp_of


class Optimizer:
    buffers = ()  # names of per-parameter state arrays

    def __init__(self, model, lr):
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.model, self.lr = model, float(lr)
        self.reset()

    def reset(self):
        """Forget all state: step count 0, buffers zero."""
        self.t = 0
        self.state = {b: {k: None for k in self.model.params()} for b in self.buffers}
        self._mask_seen = {}

    def _buffer(self, name, key, like):
        buf = self.state[name][key]
        if buf is None:
            buf = self.state[name][key] = xp_of(like).zeros_like(like)
        return buf

    def step(self):
        self.t += 1
        params, grads, masks = self.model.params(), self.model.grads(), self.model.masks()
        for key, p in params.items():
            g, mask = grads[key], masks.get(key)
            if mask is not None:
                if self._mask_seen.get(key) is not mask:     # a new mask: clear state under it
                    self._mask_seen[key] = mask
                    for b in self.buffers:
                        if self.state[b][key] is not None:
                            self.state[b][key] *= mask
                g = g * mask                                 # g ← g ⊙ mask
            self.update(key, p, g)
            if mask is not None:
                p *= mask                                    # θ ← θ ⊙ mask: exactly 0 when pruned

    def update(self, key, p, g):
        raise NotImplementedError

    # -- saving ----------------------------------------------------------------
    def state_dict(self):
        """Host copies of the step count and every buffer."""
        out = {"t": self.t}
        for b in self.buffers:
            for k, v in self.state[b].items():
                if v is not None:
                    out[f"{b}/{k}"] = to_numpy(v).copy()
        return out

    def load_state_dict(self, state):
        self.reset()
        self.t = int(state["t"])
        for name, v in state.items():
            if name != "t":
                b, k = name.split("/", 1)
                self.state[b][k] = asarray(np.array(v, copy=True))


class SGD(Optimizer):
    """θ ← θ − lr·g."""

    def update(self, key, p, g):
        p -= self.lr * g


class Momentum(Optimizer):
    """Heavy ball, PyTorch's convention: v ← μv + g ; θ ← θ − lr·v.

    With ``nesterov=True``: θ ← θ − lr·(g + μv).
    """
    buffers = ("velocity",)

    def __init__(self, model, lr, momentum=0.9, nesterov=False):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.mu, self.nesterov = float(momentum), bool(nesterov)
        super().__init__(model, lr)

    def update(self, key, p, g):
        v = self._buffer("velocity", key, p)
        v *= self.mu
        v += g
        if self.nesterov:
            p -= self.lr * (g + self.mu * v)
        else:
            p -= self.lr * v


class Adam(Optimizer):
    """Kingma & Ba, PyTorch's form:
    m ← β1 m + (1−β1) g ; v ← β2 v + (1−β2) g² ;
    θ ← θ − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
    """
    buffers = ("m", "v")

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam betas must be in [0, 1), got {betas}")
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        super().__init__(model, lr)

    def update(self, key, p, g):
        xp = xp_of(p)
        m, v = self._buffer("m", key, p), self._buffer("v", key, p)
        m *= self.b1
        m += (1.0 - self.b1) * g
        v *= self.b2
        v += (1.0 - self.b2) * (g * g)
        bc1 = 1.0 - self.b1 ** self.t
        bc2 = 1.0 - self.b2 ** self.t
        denom = xp.sqrt(v)
        denom /= math.sqrt(bc2)
        denom += self.eps
        p -= (self.lr / bc1) * (m / denom)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name, model, lr, **kw):
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimiser {name!r}; choose one of {tuple(OPTIMIZERS)}")
    return OPTIMIZERS[name](model, lr, **kw)
