"""The one place that knows about CuPy.

The active backend is ``"numpy"`` (CPU) or ``"cupy"`` (GPU). It is chosen by
the environment variable ``MINILOTTERY_BACKEND`` at import time, by
:func:`set_backend`, or by the ``--backend`` flag of the command line.
All randomness is drawn on the host (NumPy generators) and moved with
:func:`asarray`, so the same seed gives the same numbers on both backends.
"""
import os

import numpy as np

from minilottery.errors import BackendError, ConfigError

BACKENDS = ("numpy", "cupy")
ENV_VAR = "MINILOTTERY_BACKEND"
_active = None


def _cupy():
    """Import CuPy and check that a GPU exists; raise a clear error otherwise."""
    try:
        import cupy
    except ImportError as e:
        raise BackendError(
            "backend 'cupy' asked for, but CuPy is not installed "
            "(pip install 'minilottery[gpu]' or a cupy-cudaXX wheel)") from e
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken
        raise BackendError(f"backend 'cupy' asked for, but no GPU is usable: {e}") from e
    if n < 1:
        raise BackendError("backend 'cupy' asked for, but no GPU is present (device count 0)")
    return cupy


def cupy_available():
    """True when CuPy imports *and* sees at least one GPU."""
    try:
        _cupy()
        return True
    except BackendError:
        return False


def set_backend(name):
    """Select ``"numpy"`` or ``"cupy"``; returns the array module."""
    global _active
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    _active = _cupy() if name == "cupy" else np
    return _active


def default_name():
    """The backend named by $MINILOTTERY_BACKEND, else numpy."""
    return os.environ.get(ENV_VAR, "numpy").strip().lower() or "numpy"


def get_backend():
    """The active array module (numpy or cupy)."""
    if _active is None:
        set_backend(default_name())
    return _active


def backend_name():
    return "numpy" if get_backend() is np else "cupy"


def xp_of(a):
    """The array module an array belongs to (numpy for host arrays)."""
    if isinstance(a, np.ndarray) or np.isscalar(a):
        return np
    return get_backend() if type(a).__module__.startswith("cupy") else np


def asarray(a, dtype=None):
    """Move a host array to the active backend (no copy on NumPy when possible)."""
    return get_backend().asarray(a, dtype=dtype)


def to_numpy(a):
    """Bring an array back to the host; the explicit boundary for HDF5, plots, tests."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    return get() if get is not None else np.asarray(a)


def expit(a):
    """σ(a) = 1 / (1 + e^(−a)) on the array's backend (scipy's, or CuPy's counterpart)."""
    if xp_of(a) is np:
        from scipy.special import expit as fn
    else:
        from cupyx.scipy.special import expit as fn
    return fn(a)


def synchronize():
    """Wait for queued GPU work (a no-op on NumPy); used by timers."""
    if get_backend() is not np:
        get_backend().cuda.get_current_stream().synchronize()
