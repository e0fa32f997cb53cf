"""Seeded host random streams, one per purpose (SeedSequence.spawn).

Every random number in the project comes from one of these streams, drawn on
the host with ``numpy.random.Generator`` and then moved to the device, so a
seed fixes a run on NumPy and CuPy alike.
"""
import math
from dataclasses import dataclass

import numpy as np

PURPOSES = ("init", "data", "dropout", "mask")


@dataclass
class Streams:
    init: np.random.Generator     # weight initialisation (θ0, random reinitialisation)
    data: np.random.Generator     # mini-batch order
    dropout: np.random.Generator  # dropout masks
    mask: np.random.Generator     # random pruning, supermask sampling

    @classmethod
    def from_seed(cls, *key):
        """Independent streams for a key such as ``(seed,)`` or ``(seed, trial, level)``."""
        ss = np.random.SeedSequence([int(k) for k in key])
        return cls(*(np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(len(PURPOSES))))


def uniform(rng, shape, dtype=np.float64):
    """``rng.random(shape, dtype)``, bit for bit, leaving the stream where it leaves it.

    numpy draws a float32 as u = (w >> 8)·2⁻²⁴ from the 32-bit halves w of PCG64's 64-bit
    words, low half first, one C call per number; here the same words come in one
    ``random_raw`` call and the same conversion runs as three vector passes, 1.5× faster
    (the supermask's draw per step). Any other case (float64, a CuPy stream, another bit
    generator, a half word left over from an odd draw, a big-endian host) is ``rng.random``.
    """
    n = math.prod(shape)
    bits = getattr(rng, "bit_generator", None)
    if (np.dtype(dtype) != np.float32 or type(bits) is not np.random.PCG64 or n % 2 or n < 4096
            or not np.little_endian or bits.state["has_uint32"]):
        return rng.random(shape, dtype=dtype)
    w = bits.random_raw(n // 2).view(np.uint32)          # w: the halves, low then high, as numpy takes them
    w >>= 8                                              # the top 24 bits, < 2²⁴
    u = w.view(np.float32)
    np.copyto(u, w.view(np.int32), casting="unsafe")     # in place, element by element: exact below 2²⁴
    u *= np.float32(2.0 ** -24)                          # u = (w >> 8)·2⁻²⁴ ∈ [0, 1)
    return u.reshape(shape)
