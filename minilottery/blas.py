"""numpy's BLAS threads: read and set them, or share work out in Python threads instead.

NumPy wheels ship OpenBLAS (``scipy_openblas``) without an API for its thread
count; this finds the loaded library and calls its own getter and setter
through ctypes. Where that is not possible (another BLAS, another platform)
the getters return None and ``thread_map`` runs its items in order.

``matmul`` runs a small matrix product on the calling thread alone: splitting
60×784×300 over two threads saves little on an idle machine and costs 10–50x
on a busy one, where the second thread waits to be scheduled; a big product
it splits by rows over ``thread_map``.

``thread_map`` runs independent pieces of work (blocks of one big product) in
as many Python threads as BLAS has, each with a single-threaded BLAS. NumPy
releases the GIL in matmul and in copies, so the threads run in parallel, and
they only meet at the end: a GEMM split by BLAS itself synchronises its threads
at every panel, which on a busy machine (a thread descheduled) cost 10x.
"""
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np  # noqa: F401  (loads numpy's BLAS before we look for it)

_NAMES = ("scipy_openblas_{}_num_threads64_", "scipy_openblas_{}_num_threads",
          "openblas_{}_num_threads64_", "openblas_{}_num_threads")
_found = []          # [(library, name pattern) or None], filled on first use
_getter = []         # the library's thread-count getter, once found
_pool, _lock = {}, threading.Lock()
SMALL = 1 << 25      # multiply-adds below which a product runs on one BLAS thread


def _library():
    if _found:
        return _found[0]
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        paths = set()
    for path in sorted(paths, key=lambda p: ("numpy" not in p, p)):  # numpy's own first
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _NAMES:
            if hasattr(lib, name.format("get")):
                _found.append((lib, name))
                return _found[0]
    _found.append(None)
    return None


def blas_threads():
    """numpy's BLAS thread count, or None when it cannot be read."""
    if _getter:
        return int(_getter[0]())
    found = _library()
    if found is None:
        return None
    lib, name = found
    _getter.append(getattr(lib, name.format("get")))    # looked up once: every matmul asks
    return int(_getter[0]())


def set_blas_threads(n):
    """Set numpy's BLAS thread count; returns False when it cannot be set."""
    found = _library()
    if found is None:
        return False
    lib, name = found
    getattr(lib, name.format("set"))(ctypes.c_int(int(n)))
    return True


def thread_map(fn, items):
    """[fn(item) for item in items], in BLAS-count Python threads with single-threaded BLAS."""
    n = blas_threads() or 1
    if n <= 1 or len(items) <= 1 or not _lock.acquire(blocking=False):  # nested or concurrent: in order
        return [fn(item) for item in items]
    try:
        key = (os.getpid(), n)                   # a forked child starts its own pool
        pool = _pool.get(key) or _pool.setdefault(key, ThreadPoolExecutor(n, thread_name_prefix="blas"))
        with single_threaded():
            return list(pool.map(fn, items))
    finally:
        _lock.release()


@contextmanager
def single_threaded():
    """BLAS calls inside run on the calling thread only."""
    n = blas_threads()
    if not n or n == 1:
        yield
        return
    set_blas_threads(1)
    try:
        yield
    finally:
        set_blas_threads(n)


def matmul(a, b):
    """a @ b for 2-D NumPy arrays: a small product on one BLAS thread, a big one split
    by rows of a into one piece per BLAS thread, run by ``thread_map``."""
    n, macs = blas_threads() or 1, a.shape[0] * a.shape[1] * b.shape[1]
    if n == 1:
        return a @ b
    if macs < SMALL:
        with single_threaded():
            return a @ b
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    cuts = [a.shape[0] * i // n for i in range(n + 1)]

    def piece(i):
        np.matmul(a[cuts[i]:cuts[i + 1]], b, out=out[cuts[i]:cuts[i + 1]])
    thread_map(piece, range(n))
    return out
