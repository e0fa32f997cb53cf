"""The one place that knows about CuPy.

The active backend is ``"numpy"`` (CPU) or ``"cupy"`` (GPU). It is chosen by
the environment variable ``MINILOTTERY_BACKEND`` at import time, by
:func:`set_backend`, or by the ``--backend`` flag of the command line.
Initial weights, data order and every mask decision are drawn on the host
(NumPy generators) and moved with :func:`asarray`, so the same seed gives the
same θ0 and the same batches on both backends. Per-step noise (dropout keep
masks, supermask samples) is drawn where the arrays live, from a device stream
seeded by the host stream (:func:`device_rng`): on NumPy it *is* the host
stream, on CuPy a ``cupy.random`` generator, so those draws differ between
backends and agree between runs of one backend.
"""
import os
import weakref

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


STACK = {"numpy": 1, "cupy": 16}   # runs stacked into one network by default (plan.make_executor)


def default_stack():
    """How many runs of one architecture the active backend trains as one network by default:
    1 on NumPy (a CPU gains little, tests/test_stack.py's bench), 16 on CuPy (a launch-bound
    step of one small network leaves most of a GPU idle)."""
    return STACK[backend_name()]


def xp_of(a):
    """The array module an array belongs to (numpy for host arrays and scalars)."""
    if isinstance(a, (np.ndarray, np.generic)) or np.isscalar(a):
        return np
    xp = _active
    return xp if xp is not None and xp is not np and isinstance(a, xp.ndarray) else np


def is_device(a):
    """True for an array of the active device backend (never on NumPy)."""
    return xp_of(a) is not np


def asarray(a, dtype=None):
    """Move a host array to the active backend (no copy on NumPy when possible)."""
    return get_backend().asarray(a, dtype=dtype)


_RESIDENT = {}   # (id of the host array, id of the backend) -> (weak reference to it, device copy)


def resident(a):
    """``a`` on the active backend, uploaded once and kept while the host array lives.

    Datasets stay on the device this way: every run, batch and evaluation of a process
    uses the same device copy (NumPy: ``a`` itself). Do not change ``a`` after its upload."""
    xp = get_backend()
    if xp is np or not isinstance(a, np.ndarray):
        return xp.asarray(a)
    key = (id(a), id(xp))
    hit = _RESIDENT.get(key)
    if hit is not None and hit[0]() is a:
        return hit[1]
    dev = xp.asarray(a)
    _RESIDENT[key] = (weakref.ref(a, lambda _, k=key: _RESIDENT.pop(k, None)), dev)
    return dev


def to_numpy(a):
    """Bring an array back to the host; the explicit boundary for HDF5, plots, tests.

    On a device array this is a synchronisation: the host waits for the device."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    return get() if get is not None else np.asarray(a)


def expit(a):
    """σ(a) = 1 / (1 + e^(−a)) in a's dtype: NumPy's vectorised exp on the host (SciPy's ``expit`` is a
    scalar loop, 5× slower on float32; the two differ by at most an ulp), cupyx.scipy's on the device."""
    if xp_of(a) is np:
        out = np.negative(a)
        with np.errstate(over="ignore"):                     # e^(−a) = inf for a ≪ 0: σ = 0, as it should
            np.exp(out, out=out)
        out += 1
        return np.reciprocal(out, out=out)
    from cupyx.scipy.special import expit as device_expit
    return device_expit(a)


def fuse(fn):
    """``fn`` compiled into one element-wise kernel on CuPy (``cupy.fuse``); on NumPy ``fn`` itself."""
    xp = get_backend()
    return fn if xp is np else xp.fuse()(fn)


def device_rng(host_rng):
    """The stream per-step noise is drawn from, where the arrays live, seeded by ``host_rng``.

    NumPy: ``host_rng`` itself (draws unchanged). CuPy: a ``cupy.random`` generator seeded with
    one 63-bit draw of ``host_rng``, so a seed fixes it and nothing is uploaded per step."""
    xp = get_backend()
    if xp is np:
        return host_rng
    return xp.random.default_rng(int(host_rng.integers(2 ** 63)))


def synchronize():
    """Wait for queued GPU work (a no-op on NumPy); used by timers."""
    if get_backend() is not np:
        get_backend().cuda.get_current_stream().synchronize()
