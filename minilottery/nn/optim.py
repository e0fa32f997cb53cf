"""SGD, SGD with momentum, and Adam over any dict of arrays (weights or scores).

An optimiser is built over ``{name: array}`` (live arrays, updated in place) and
stepped with ``{name: gradient}`` and an optional ``{name: mask}`` that freezes
the entries where the mask is 0. A frozen entry does not change and its
optimiser state is 0; every other entry evolves exactly as the unmasked
optimiser on the same gradient would (a float multiplier mask only says which
entries are frozen: the layer has already scaled the gradient by it):
  g ← g + λθ ;  Δ and state from the update rule ;  state, Δ ← +0 where m = 0 ;  θ ← θ − Δ
(+0 by clearing the bits, never by multiplying, so an inf or nan at a frozen entry
cannot leak into the state), so a weight pruned to 0 stays exactly 0 with zero
state, and one frozen at a value keeps it bit for bit (θ − (+0) is θ, −0 included).
Masks may change between steps: each step compares the frozen entries with the
last step's, except for a sealed mask (a read-only NumPy array owning its memory,
as every layer installs one), which cannot change while it is the same object.
``reset()`` starts afresh (each IMP round does). ``lr`` may be changed between
steps (learning-rate schedules).

Speed: a step allocates nothing (``out=`` and in-place operators into reused
work arrays); on NumPy a parameter is updated in ``CHUNK``-element slices, so
the dozen passes of an update hit the cache. Frozen entries cost the keep bits
(all ones where m ≠ 0, two passes) and one bitwise AND per state array and Δ:
a boolean ``where=`` assignment is 20–40× slower than a multiply on a random
mask. A mask of all ones (an IMP dense run) skips them after one comparison (on
NumPy: CuPy would have to synchronise to know); a sealed mask seen before skips
the comparison too. Keep bits may be given as the mask (an unsigned integer of
the parameter's width): the caller vouches that g is already +0 where frozen
(a layer makes ∂L/∂W with them, ``Sequential.frozen``), so without weight
decay g is not cleared again. Scalars are Python floats (no dtype changes).
"""
import math

import numpy as np

from minilottery.backend import asarray, is_device, to_numpy, xp_of
from minilottery.nn import fused

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


_BITS = {}  # float dtype -> the unsigned integer of its width


def _bits(dtype):
    """The unsigned integer of a float's width (looked up once a dtype: every step asks)."""
    got = _BITS.get(dtype)
    if got is None:
        got = _BITS[dtype] = np.dtype(f"u{np.dtype(dtype).itemsize}")
    return got


def _clear(a, keep, out=None):
    """out ← a with +0 where ``keep`` is 0 and a's bits where it is all ones (an inf or nan cleared too)."""
    out = a if out is None else out
    xp_of(a).bitwise_and(a.view(keep.dtype), keep, out=out.view(keep.dtype))
    return out


def _is_sealed(mask):
    """A host mask that cannot change while it is the same object: read-only, owning its memory."""
    return mask is not None and not mask.flags.writeable and mask.flags.owndata


def _same(a, b):
    """Two contiguous host bool arrays are equal (compared eight bytes at a time where the size allows)."""
    a, b = a.reshape(-1), b.reshape(-1)
    if a.size % 8 == 0:
        a, b = a.view(np.uint64), b.view(np.uint64)
    return bool((a == b).all())


class _Frozen:
    """What the last step froze in one parameter: ``kept`` (its m ≠ 0), ``keep`` (its keep bits; None
    when the mask is them), ``valid`` (both hold the last step's), ``mask`` (that mask, if sealed)
    and ``dense`` (per slice: nothing frozen in it)."""
    __slots__ = ("kept", "keep", "valid", "mask", "dense")

    def __init__(self, kept, keep):
        self.kept, self.keep, self.valid, self.mask, self.dense = kept, keep, False, None, []


class Optimizer:
    buffers = ()  # names of per-parameter state arrays
    fused_update = None  # (p, g, mask, state): the update as one device kernel, where written

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
        self._work, self._views = {}, {}
        self._frozen = {}   # key -> _Frozen: what the last step froze

    def _buffer(self, name, key, like):
        buf = self.state[name][key]
        if buf is None:
            buf = self.state[name][key] = xp_of(like).zeros_like(like)
        return buf

    def _scratch(self, like):
        """Work arrays shaped like ``like`` (views of flat buffers shared by all parameters):
        g + λθ, Δ, and this step's m ≠ 0; the views are made once per shape."""
        xp = xp_of(like)
        shaped = (xp.__name__, like.dtype, like.shape)
        views = self._views.get(shaped)
        if views is None:
            n, key = like.size, shaped[:2]
            work = self._work.get(key)
            if work is None or work[0].size < n:
                work = self._work[key] = (xp.empty(n, like.dtype), xp.empty(n, like.dtype), xp.empty(n, bool))
                self._views = {}                             # views of the smaller buffers go with them
            views = self._views[shaped] = tuple(w[:n].reshape(like.shape) for w in work)
        return views

    def _last_frozen(self, key, p, bits):
        got = self._frozen.get(key)
        if got is None or (got.keep is None) != bits:
            xp = xp_of(p)
            got = self._frozen[key] = _Frozen(xp.empty(p.shape, bool),
                                              None if bits else xp.empty(p.shape, _bits(p.dtype)))
        return got

    def step(self, grads, masks=None):
        """One update of every array from ``grads``; entries where ``masks[name]`` is 0 stay frozen."""
        self.t += 1
        masks = masks or {}
        for key, p in self.params.items():
            mask = masks.get(key)
            state = [self._buffer(b, key, p) for b in self.buffers]
            if self.fused_update is not None and is_device(p):   # the same rule in one kernel (nn/fused.py)
                self.fused_update(p, grads[key], mask, state)
                continue
            bits = mask is not None and mask.dtype == _bits(p.dtype)    # keep bits, g +0 where 0
            last = _Frozen(None, None) if mask is None else self._last_frozen(key, p, bits)
            vouched = bits and not self.weight_decay          # g is +0 at the frozen entries already
            if mask is None:
                self._frozen.pop(key, None)                  # unmasked: state may grow anywhere
            on_host = xp_of(p) is np                          # (CuPy would synchronise for every check)
            unchanged = on_host and last.valid and mask is last.mask  # the same sealed mask as last step
            dense = last.dense if unchanged else []           # per slice: nothing frozen in it
            for i, (pp, g, mm, was, keep, *st) in enumerate(_parts([p, grads[key], mask, last.kept, last.keep]
                                                                   + state)):
                xp, keep = xp_of(pp), mm if bits else keep
                gm, tmp, kept = self._scratch(pp)
                if self.weight_decay:
                    g = xp.add(g, xp.multiply(pp, self.weight_decay, out=tmp), out=gm)  # g + λθ
                if mm is None:
                    self.update(pp, g, st, tmp)
                    pp -= tmp
                    continue
                if unchanged:                                # as last step, known without reading the mask
                    self.update(pp, g if dense[i] or vouched else _clear(g, keep, out=gm), st, tmp)
                    pp -= tmp
                    continue
                xp.not_equal(mm, 0, out=kept)                # this step's m ≠ 0
                dense.append(on_host and bool(kept.all()))
                if dense[-1]:                                # nothing frozen in this slice
                    was[...] = kept                          # (all kept: never equal to a later frozen set)
                    self.update(pp, g, st, tmp)
                elif on_host and last.valid and _same(kept, was):
                    # the frozen entries as last step, whose state is still +0: g ← +0 there, and
                    # every update maps state 0 and g 0 to state +0 and Δ +0
                    self.update(pp, g if vouched else _clear(g, keep, out=gm), st, tmp)
                else:                                        # new frozen entries: clear state and Δ
                    was[...] = kept
                    if not bits:                             # keep bits: all ones where m ≠ 0, 0 where frozen
                        xp.multiply(kept, keep.dtype.type(np.iinfo(keep.dtype).max), out=keep)
                    self.update(pp, g, st, tmp)
                    for s in st:
                        _clear(s, keep)                      # state ← +0 where frozen
                    _clear(tmp, keep)                        # Δ ← +0 where frozen: θ − 0 is θ bit for bit
                pp -= tmp                                    # θ ← θ − Δ
            last.valid, last.dense = mask is not None, dense
            last.mask = mask if on_host and _is_sealed(mask) else None

    def update(self, p, g, state, tmp):
        """Write the step Δ into ``tmp`` from g (θ ← θ − Δ follows); ``state`` holds this slice of each buffer.

        Elementwise, and an entry with state +0 and g +0 must get Δ +0 and keep state +0
        (``step`` relies on it to leave frozen entries alone once their state is cleared)."""
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

    def fused_update(self, p, g, mask, state):
        fused.apply("nesterov" if self.nesterov else "momentum", p, g, mask, state,
                    self.mu, self.lr, self.weight_decay)

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

    def fused_update(self, p, g, mask, state):
        bc1, bc2 = 1.0 - self.b1 ** self.t, 1.0 - self.b2 ** self.t
        fused.apply("adam", p, g, mask, state, self.b1, 1.0 - self.b1, self.b2, 1.0 - self.b2, self.eps,
                    self.lr / bc1, math.sqrt(bc2), self.weight_decay)

    def update(self, p, g, state, tmp):
        xp, (m, v) = xp_of(p), state
        m *= self.b1
        m += xp.multiply(g, 1.0 - self.b1, out=tmp)          # m ← β1 m + (1−β1) g
        v *= self.b2
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.b2
        v += tmp                                             # v ← β2 v + (1−β2) g²
        bc1, bc2 = 1.0 - self.b1 ** self.t, 1.0 - self.b2 ** self.t
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
