"""Seeded host random streams, one per purpose (SeedSequence.spawn).

Every random number in the project comes from one of these streams, drawn on
the host with ``numpy.random.Generator`` and then moved to the device, so a
seed fixes a run on NumPy and CuPy alike.
"""
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
