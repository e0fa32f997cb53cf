"""SGD, SGD with momentum, and Adam over any dict of arrays (weights or scores).

An optimiser is built over ``{name: array}`` (live arrays, updated in place) and
stepped with ``{name: gradient}`` and an optional ``{name: mask}`` that freezes
the entries where the mask is 0. A frozen entry does not change and its
optimiser state is 0; every other entry evolves exactly as the unmasked
optimiser on the same gradient would (a float multiplier mask only says which
entries are frozen: the layer has already scaled the gradient by it):
  g ← g + λθ ;  state, g ← 0 where m = 0 ;  Δ from the update rule ;  Δ ← +0 where m = 0 ;  θ ← θ − Δ
(0 is assigned, never multiplied in, so an inf or nan at a frozen entry cannot leak into the state)
so a weight pruned to 0 stays exactly 0 with zero state, and one frozen at a
value keeps it bit for bit. Masks may change between steps (nothing is keyed on
array identity); ``reset()`` starts afresh (each IMP round does). ``lr`` may be
changed between steps (learning-rate schedules).

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

    def __init__(self, params, lr, weight_decay=0.0):
        """params: {name: array} updated in place; weight_decay λ adds λθ to the gradient."""
        if not 0 < lr < math.inf:
            raise ValueError(f"learning rate must be positive and finite, got {lr}")
        if not 0 <= weight_decay < math.inf:
            raise ValueError(f"weight decay must be non-negative and finite, got {weight_decay}")
        if not params:
            raise ValueError("an optimiser needs at least one array to train")
        self.params, self.lr, self.weight_decay = dict(params), float(lr), float(weight_decay)
        self.reset()

    def reset(self):
        """Forget all state: step count 0, buffers zero."""
        self.t = 0
        self.state = {b: {k: None for k in self.params} for b in self.buffers}
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

    def step(self, grads, masks=None):
        """One update of every array from ``grads``; entries where ``masks[name]`` is 0 stay frozen."""
        self.t += 1
        masks = masks or {}
        for key, p in self.params.items():
            mask = masks.get(key)
            state = [self._buffer(b, key, p) for b in self.buffers]
            for pp, g, mm, *st in _parts([p, grads[key], mask] + state):
                xp = xp_of(pp)
                gm, tmp = self._scratch(pp)
                if self.weight_decay:
                    g = xp.add(g, xp.multiply(pp, self.weight_decay, out=tmp), out=gm)  # g + λθ
                frozen = None if mm is None else mm == 0
                if frozen is not None:
                    for s in st:
                        xp.copyto(s, 0, where=frozen)        # state ← 0 where frozen
                    if g is not gm:
                        xp.copyto(gm, g)
                    g = gm
                    xp.copyto(g, 0, where=frozen)            # g ← 0 where frozen
                self.update(pp, g, st, tmp)                  # tmp ← Δ
                if frozen is not None:
                    xp.copyto(tmp, 0, where=frozen)          # Δ ← +0 where frozen: θ − 0 is θ bit for bit
                pp -= tmp                                    # θ ← θ − Δ

    def update(self, p, g, state, tmp):
        """Write the step Δ into ``tmp`` from g (θ ← θ − Δ follows); ``state`` holds this slice of each buffer."""
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
        xp_of(p).multiply(g, self.lr, out=tmp)               # Δ = lr·g


class Momentum(Optimizer):
    """Heavy ball, PyTorch's convention: v ← μv + g ; θ ← θ − lr·v.

    With ``nesterov=True``: θ ← θ − lr·(g + μv).
    """
    buffers = ("velocity",)

    def __init__(self, params, lr, momentum=0.9, nesterov=False, weight_decay=0.0):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.mu, self.nesterov = float(momentum), bool(nesterov)
        super().__init__(params, lr, weight_decay)

    def update(self, p, g, state, tmp):
        xp, (v,) = xp_of(p), state
        v *= self.mu
        v += g                                               # v ← μv + g
        if self.nesterov:
            xp.multiply(v, self.mu, out=tmp)
            tmp += g
            tmp *= self.lr                                   # Δ = lr·(g + μv)
        else:
            xp.multiply(v, self.lr, out=tmp)                 # Δ = lr·v


class Adam(Optimizer):
    """Kingma & Ba, PyTorch's form:
    m ← β1 m + (1−β1) g ; v ← β2 v + (1−β2) g² ;
    θ ← θ − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
    """
    buffers = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam betas must be in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"Adam eps must be positive (0 gives 0/0 under pruned weights), got {eps}")
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        super().__init__(params, lr, weight_decay)

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
        tmp *= self.lr / bc1                                 # Δ = lr/(1−β1ᵗ) · m / (…)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name, params, lr, **kw):
    """An optimiser by name over ``params`` ({name: array})."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimiser {name!r}; choose one of {tuple(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr, **kw)
