"""Mask-aware SGD, SGD with momentum, and Adam.

Every optimiser works on a model's live parameters (``model.params()``) and
gradients, in place. Masked entries are handled so that, after every step,
a pruned weight is exactly 0 and so is its optimiser state; every unpruned
entry evolves exactly as the unmasked optimiser on the same gradient would:
  g ← g ⊙ mask  (before the update)   and   θ ← θ ⊙ mask  (after it).
Weights and state are set to 0 under a mask whenever a new mask array is
installed (masks are replaced, never edited in place: ``Sequential.set_masks``
installs read-only copies), and ``reset()`` starts afresh (each IMP round does).

Speed: updates are written with ``out=`` and in-place operators into two
reused work arrays, so a step allocates nothing; on NumPy each parameter is
updated in slices of ``CHUNK`` elements, so that the dozen passes an update
makes over its arrays hit the CPU cache instead of streaming from memory.
Scalars are Python floats, which never change an array's dtype.
"""
import math

import numpy as np

from minilottery.backend import asarray, to_numpy, xp_of

CHUNK = 1 << 17  # elements per slice on NumPy: six float32 slices (3 MB) stay in the L3 cache


def _parts(arrays):
    """Equal slices of the flattened arrays (None stays None): CHUNK-sized on NumPy when the
    first (the parameter, written in place) is contiguous, else the whole arrays once."""
    p = arrays[0]
    if xp_of(p) is not np or not p.flags.c_contiguous or p.size <= CHUNK:
        yield arrays
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]  # views; a copy only for a
    for s in range(0, p.size, CHUNK):                               # non-contiguous gradient
        yield [None if f is None else f[s:s + CHUNK] for f in flat]


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
        self._work = {}

    def _buffer(self, name, key, like):
        buf = self.state[name][key]
        if buf is None:
            buf = self.state[name][key] = xp_of(like).zeros_like(like)
        return buf

    def _scratch(self, like):
        """Two work arrays shaped like ``like``, views of flat buffers shared by all parameters."""
        xp, n = xp_of(like), like.size
        key = (xp.__name__, like.dtype)
        work = self._work.get(key)
        if work is None or work[0].size < n:
            work = self._work[key] = (xp.empty(n, like.dtype), xp.empty(n, like.dtype))
        return tuple(w[:n].reshape(like.shape) for w in work)

    def step(self):
        self.t += 1
        params, grads, masks = self.model.params(), self.model.grads(), self.model.masks()
        for key, p in params.items():
            mask = masks.get(key)
            if mask is not None and self._mask_seen.get(key) is not mask:
                self._mask_seen[key] = mask                  # a new mask: θ and state ← 0 under it
                pruned = mask == 0                           # by assignment: an inf becomes 0, not nan
                for a in [p] + [self.state[b][key] for b in self.buffers]:
                    if a is not None:
                        xp_of(a).copyto(a, 0, where=pruned)
            state = [self._buffer(b, key, p) for b in self.buffers]
            for pp, g, mm, *st in _parts([p, grads[key], mask] + state):
                gm, tmp = self._scratch(pp)
                if mm is not None:
                    g = xp_of(pp).multiply(g, mm, out=gm)   # g ← g ⊙ mask
                self.update(pp, g, st, tmp)
                if mm is not None:
                    pp *= mm                                 # θ ← θ ⊙ mask: exactly 0 when pruned

    def update(self, p, g, state, tmp):
        """Update p in place from g; ``state`` holds this slice of each buffer, ``tmp`` is scratch."""
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

    def update(self, p, g, state, tmp):
        p -= xp_of(p).multiply(g, self.lr, out=tmp)


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

    def update(self, p, g, state, tmp):
        xp, (v,) = xp_of(p), state
        v *= self.mu
        v += g                                               # v ← μv + g
        if self.nesterov:
            xp.multiply(v, self.mu, out=tmp)
            tmp += g
            tmp *= self.lr
            p -= tmp                                         # θ ← θ − lr·(g + μv)
        else:
            p -= xp.multiply(v, self.lr, out=tmp)            # θ ← θ − lr·v


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
        if not eps > 0:
            raise ValueError(f"Adam eps must be positive (0 gives 0/0 under pruned weights), got {eps}")
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        super().__init__(model, lr)

    def update(self, p, g, state, tmp):
        xp, (m, v) = xp_of(p), state
        m *= self.b1
        m += xp.multiply(g, 1.0 - self.b1, out=tmp)          # m ← β1 m + (1−β1) g
        v *= self.b2
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.b2
        v += tmp                                             # v ← β2 v + (1−β2) g²
        bc1 = 1.0 - self.b1 ** self.t
        bc2 = 1.0 - self.b2 ** self.t
        xp.sqrt(v, out=tmp)
        tmp /= math.sqrt(bc2)
        tmp += self.eps                                      # √v / √(1−β2ᵗ) + ε
        xp.divide(m, tmp, out=tmp)
        tmp *= self.lr / bc1
        p -= tmp                                             # θ ← θ − lr/(1−β1ᵗ) · m / (…)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name, model, lr, **kw):
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimiser {name!r}; choose one of {tuple(OPTIMIZERS)}")
    return OPTIMIZERS[name](model, lr, **kw)
