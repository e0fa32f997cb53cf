"""The optimisers' updates as one fused element-wise kernel per parameter, for the device.

On a GPU a step of a small network is launch-bound: optim.py's readable update makes about
a dozen element-wise passes (and kernel launches) per parameter. Here the same rule, frozen
entries included, is one ``cupy.fuse`` kernel that returns the new θ and state, copied back
in place (4 launches in all). NumPy keeps optim.py's code, the reference; the results agree
to float32 rounding (tests/test_backend.py: the masked optimiser step parity).

    frozen (m = 0): θ, state unchanged / 0 ;  else: g ← g + λθ, then the optimiser's rule
"""
from minilottery.backend import fuse, get_backend

_KERNELS = {}


def _adam(xp):
    def step(p, g, mask, m, v, b1, one_b1, b2, one_b2, eps, lr_bc1, sqrt_bc2, wd):
        keep = mask != 0
        g = g + p * wd                                                  # g + λθ
        m = xp.where(keep, m * b1 + g * one_b1, 0)                      # m ← β1 m + (1−β1) g
        v = xp.where(keep, v * b2 + g * g * one_b2, 0)                  # v ← β2 v + (1−β2) g²
        p = xp.where(keep, p - m / (xp.sqrt(v) / sqrt_bc2 + eps) * lr_bc1, p)
        return p, m, v
    return step


def _momentum(xp, nesterov):
    def step(p, g, mask, vel, mu, lr, wd):
        keep = mask != 0
        g = g + p * wd
        vel = xp.where(keep, vel * mu + g, 0)                           # v ← μv + g
        p = xp.where(keep, p - ((vel * mu + g) * lr if nesterov else vel * lr), p)
        return p, vel
    return step


def kernel(name):
    """The fused update ``name`` ("adam", "momentum", "nesterov") for the active backend, made once."""
    xp = get_backend()
    key = (name, id(xp))
    if key not in _KERNELS:
        fn = _adam(xp) if name == "adam" else _momentum(xp, nesterov=name == "nesterov")
        _KERNELS[key] = fuse(fn)
    return _KERNELS[key]


def apply(name, p, g, mask, state, *scalars):
    """One fused step of parameter ``p`` (in place) and its ``state`` buffers; scalars in p's dtype."""
    t = p.dtype.type
    new = kernel(name)(p, g, t(1) if mask is None else mask, *state, *(t(s) for s in scalars))
    for dst, src in zip([p] + list(state), new):
        dst[...] = src
