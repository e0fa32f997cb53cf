"""How many threads numpy's BLAS uses, read and set through ctypes.

NumPy wheels ship OpenBLAS (``scipy_openblas``) without an API for its thread
count; this finds the loaded library and calls its own getter and setter.
Returns None where that is not possible (another BLAS, another platform).
"""
import ctypes

import numpy as np  # noqa: F401  (loads numpy's BLAS before we look for it)

_NAMES = ("scipy_openblas_{}_num_threads64_", "scipy_openblas_{}_num_threads",
          "openblas_{}_num_threads64_", "openblas_{}_num_threads")


def _library():
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _NAMES:
            if hasattr(lib, name.format("get")):
                return lib, name
    return None


def blas_threads():
    """numpy's BLAS thread count, or None when it cannot be read."""
    found = _library()
    if found is None:
        return None
    lib, name = found
    return int(getattr(lib, name.format("get"))())


def set_blas_threads(n):
    """Set numpy's BLAS thread count; returns False when it cannot be set."""
    found = _library()
    if found is None:
        return False
    lib, name = found
    getattr(lib, name.format("set"))(ctypes.c_int(int(n)))
    return True
