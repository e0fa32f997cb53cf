"""A strict stand-in for CuPy, backed by NumPy: the CuPy path tested on machines without a GPU.

``installed()`` puts this module in ``sys.modules`` as ``cupy`` (and ``cupyx``), with one
"GPU", so ``backend.set_backend("cupy")`` takes the package's CuPy path unchanged. Its
arrays behave like CuPy's at the sharp edges a CPU can imitate:

- an implicit host conversion is refused (``numpy.asarray``, ``__array__``, NumPy
  functions and ufuncs on them, h5py writes, matplotlib, pickling to a worker), as is
  mixing a host ``numpy.ndarray`` into a device operation (CuPy's "Unsupported type");
- every synchronisation is counted (``float``, ``int``, ``bool``, ``.item()``, ``.get()``,
  ``asnumpy``, ``.tolist()``, printing, and the operations whose result size lives on the
  device: boolean-mask indexing, ``nonzero``, ``flatnonzero``, ``argwhere``, ``unique``);
- only the part of CuPy's API the package uses is offered: anything else raises
  AttributeError, so the package cannot use a NumPy name CuPy lacks;
- reductions return 0-d device arrays (not host scalars), random numbers come from
  ``cupy.random`` generators (not the host's streams), ``fuse`` is a plain call.

``SYNCS`` counts by kind; ``SYNCS.where`` says from which line of the package each came.
The stand-in is test-only: it is never a user option.
"""
import builtins
import contextlib
import operator
import sys
import traceback
import types
from collections import Counter

import numpy as np

REFUSED = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
           "a NumPy array explicitly.")
_HERE = __file__


class SyncCounter:
    """Synchronisations by kind, and the package lines that made them."""

    def __init__(self):
        self._windows = []
        self.reset()

    def reset(self):
        self.kinds, self.where = Counter(), Counter()

    @property
    def total(self):
        return builtins.sum(self.kinds.values())

    def count(self, kind):
        line = kind
        for frame in reversed(traceback.extract_stack(limit=10)[:-2]):
            if frame.filename != _HERE:
                line = f"{frame.filename.rsplit('/minilottery/', 1)[-1]}:{frame.lineno} {kind}"
                break
        for c in [self] + self._windows:
            c.kinds[kind] += 1
            c.where[line] += 1

    @contextlib.contextmanager
    def counting(self):
        """``with SYNCS.counting() as c:`` c counts only what happens inside (c.total, c.kinds, c.where)."""
        window = SyncCounter()
        self._windows.append(window)
        try:
            yield window
        finally:
            self._windows.remove(window)


SYNCS = SyncCounter()


# -- conversions between the stand-in's arrays and NumPy's -----------------------------------
def _host(a, what="argument"):
    """The NumPy array inside a device array; scalars pass; a host ndarray is refused like CuPy does."""
    if isinstance(a, ndarray):
        return a._a
    if isinstance(a, np.ndarray):
        raise TypeError(f"Unsupported type {type(a)} as {what}: a host numpy.ndarray in a device "
                        f"operation (move it with cupy.asarray first)")
    if isinstance(a, (list, tuple)):
        return type(a)(_host(v, what) for v in a)
    return a


def _wrap(r):
    if isinstance(r, np.ndarray):
        return ndarray(r)
    if isinstance(r, np.generic):                        # reductions stay on the device
        return ndarray(np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


def _call(fn, args, kwargs, name):
    out = kwargs.get("out")
    kw = {k: _host(v, f"{name}({k}=)") for k, v in kwargs.items()}
    r = fn(*(_host(a, f"{name}()") for a in args), **kw)
    return out if isinstance(out, ndarray) else _wrap(r)


def _sync_count(kind):
    SYNCS.count(kind)


# -- the array ---------------------------------------------------------------------------------
_METHODS = {"all", "any", "argmax", "argmin", "argsort", "astype", "clip", "copy", "cumsum", "dot",
            "fill", "flatten", "max", "mean", "min", "prod", "ravel", "repeat", "reshape", "round",
            "sort", "squeeze", "std", "sum", "swapaxes", "take", "transpose", "var", "view"}
_SYNC_METHODS = {"nonzero"}


class ndarray:  # noqa: N801  (CuPy's name)
    """A device array: NumPy inside, CuPy's manners outside."""
    __slots__ = ("_a",)
    __array_ufunc__ = None                               # numpy ufuncs refuse it (np.exp(a) raises)
    __hash__ = None

    def __init__(self, a):
        self._a = a

    # refused host conversions
    def __array__(self, *args, **kwargs):
        raise TypeError(REFUSED)

    def __array_function__(self, func, types_, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} on a device array: {REFUSED}")

    def __reduce_ex__(self, protocol):
        raise TypeError("a device array cannot be pickled: bring it to the host (to_numpy) before it "
                        "goes to a worker or a file")

    # counted synchronisations
    def get(self, stream=None, order="C", out=None, blocking=True):
        _sync_count("get")
        return np.array(self._a, order=order, copy=True)

    def item(self):
        _sync_count("item")
        return self._a.item()

    def tolist(self):
        _sync_count("tolist")
        return self._a.tolist()

    def __float__(self):
        _sync_count("float")
        return float(self._a)

    def __int__(self):
        _sync_count("int")
        return int(self._a)

    def __index__(self):
        _sync_count("index")
        return operator.index(self._a)

    def __bool__(self):
        _sync_count("bool")
        return bool(self._a)

    def __complex__(self):
        _sync_count("complex")
        return complex(self._a)

    def __format__(self, spec):
        _sync_count("format")
        return format(self._a, spec) if self._a.ndim == 0 else format(str(self._a), spec)

    def __repr__(self):
        _sync_count("repr")
        return "array(" + repr(self._a)[6:] if repr(self._a).startswith("array(") else repr(self._a)

    def __str__(self):
        _sync_count("str")
        return str(self._a)

    # attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)
    strides = property(lambda self: self._a.strides)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    device = property(lambda self: cuda.Device(0))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self._a)))

    def __getattr__(self, name):
        if name in _METHODS or name in _SYNC_METHODS:
            method = getattr(self._a, name)

            def call(*args, **kwargs):
                if name in _SYNC_METHODS:
                    _sync_count(name)
                return _call(method, args, kwargs, f"ndarray.{name}")
            return call
        raise AttributeError(f"the strict CuPy stand-in offers no ndarray.{name}")

    # indexing: host index arrays are uploaded (CuPy allows it); a boolean mask syncs (its count)
    def _key(self, key):
        parts = key if isinstance(key, tuple) else (key,)
        out = []
        for k in parts:
            if isinstance(k, ndarray):
                k = k._a
            if isinstance(k, np.ndarray) and k.dtype == bool:
                _sync_count("boolean index")
            out.append(k)
        return tuple(out) if isinstance(key, tuple) else out[0]

    def __getitem__(self, key):
        return _wrap(self._a[self._key(key)])

    def __setitem__(self, key, value):
        self._a[self._key(key)] = _host(value, "assigned value")


def _binary(op, reflected=False, inplace=False):
    def f(self, other):
        o = _host(other, "operand")
        if inplace:
            op(self._a, o)
            return self
        return _wrap(op(o, self._a) if reflected else op(self._a, o))
    return f


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
              "lshift", "rshift"):
    _op = getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    setattr(ndarray, f"__{_name}__", _binary(_op))
    setattr(ndarray, f"__r{_name}__", _binary(_op, reflected=True))
    setattr(ndarray, f"__i{_name}__", _binary(getattr(operator, f"i{_name}"), inplace=True))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(getattr(operator, _name)))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", (lambda op: lambda self: _wrap(op(self._a)))(getattr(operator, _name)))


# -- module functions --------------------------------------------------------------------------
_FUNCTIONS = {
    "abs", "absolute", "add", "all", "any", "arange", "argmax", "argmin", "argsort", "around", "bitwise_and",
    "bitwise_or", "bitwise_xor",
    "ascontiguousarray", "broadcast_to", "ceil", "clip", "concatenate", "copyto", "count_nonzero",
    "cumsum", "divide", "dot", "einsum", "empty", "empty_like", "equal", "exp", "expand_dims",
    "floor", "full", "full_like", "greater", "greater_equal", "isfinite", "isinf", "isnan", "less",
    "less_equal", "log", "logical_and", "logical_not", "logical_or", "matmul", "max", "maximum",
    "mean", "min", "minimum", "multiply", "negative", "not_equal", "ones", "ones_like", "pad",
    "partition", "power", "prod", "ravel", "reciprocal", "reshape", "round", "sign", "sort", "sqrt",
    "square", "stack", "std", "subtract", "sum", "swapaxes", "take", "take_along_axis", "tanh",
    "transpose", "true_divide", "var", "where", "zeros", "zeros_like",
}
_SYNC_FUNCTIONS = {"argwhere", "flatnonzero", "nonzero", "unique"}
for _name in _FUNCTIONS | _SYNC_FUNCTIONS:
    def _make(name, fn=getattr(np, _name)):
        def f(*args, **kwargs):
            if name in _SYNC_FUNCTIONS:
                _sync_count(name)
            return _call(fn, args, kwargs, name)
        f.__name__ = name
        return f
    globals()[_name] = _make(_name)
del _name, _make

for _name in ("bool_", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
              "uint32", "uint64", "dtype", "newaxis", "inf", "nan", "pi", "e", "finfo", "iinfo",
              "isscalar", "result_type", "can_cast"):
    globals()[_name] = getattr(np, _name)


def asarray(a, dtype=None, order=None):
    """Upload a host array (or keep a device one); no synchronisation counted: the host waits
    for nothing it has not sent."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else ndarray(a._a.astype(dtype))
    return ndarray(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, ndarray):
        return ndarray(np.array(a._a, dtype=dtype, copy=copy, order=order))
    return ndarray(np.array(a, dtype=dtype, copy=True, order=order))


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return sys.modules[__name__] if builtins.any(isinstance(a, ndarray) for a in args) else np


def fuse(*args, **kwargs):
    """``@cupy.fuse()`` or ``@cupy.fuse``: one kernel on CuPy, a plain call here."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda fn: fn


class _MemoryPool:
    def free_all_blocks(self):
        pass

    def total_bytes(self):
        return 0

    def used_bytes(self):
        return 0


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


class ElementwiseKernel:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("the strict CuPy stand-in cannot run CUDA source: use cupy.fuse "
                                  "(a plain call here) for fused element-wise code")


def __getattr__(name):
    raise AttributeError(f"the strict CuPy stand-in offers no cupy.{name} (the package should use "
                         f"only what CuPy has; add it here if CuPy has it)")


# -- submodules: lib.stride_tricks, random, cuda, cupyx --------------------------------------
def _as_strided(x, shape=None, strides=None):
    return ndarray(np.lib.stride_tricks.as_strided(_host(x), shape=shape, strides=strides))


def _sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    return ndarray(np.lib.stride_tricks.sliding_window_view(_host(x), window_shape, axis=axis,
                                                            writeable=writeable))


lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
    as_strided=_as_strided, sliding_window_view=_sliding_window_view))


class Generator:
    """cupy.random.Generator: device random numbers (not the host's stream for the same seed)."""

    def __init__(self, seed):
        self._g = np.random.Generator(np.random.Philox(np.random.SeedSequence([0xC0DA, int(seed)])))

    def random(self, size=None, dtype=np.float64, out=None):
        return ndarray(self._g.random(size, dtype=dtype))

    def standard_normal(self, size=None, dtype=np.float64):
        return ndarray(self._g.standard_normal(size, dtype=dtype))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return ndarray(self._g.uniform(low, high, size).astype(dtype))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return ndarray(self._g.integers(low, high, size, dtype=dtype, endpoint=endpoint))


random = types.SimpleNamespace(default_rng=lambda seed=0: Generator(seed), Generator=Generator)


class _Stream:
    def synchronize(self):
        _sync_count("synchronize")


class _Device:
    def __init__(self, i=0):
        self.id = int(i)

    def synchronize(self):
        _sync_count("synchronize")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
    get_current_stream=lambda: _Stream(), Device=_Device,
    is_available=lambda: True)


def _expit(x, out=None):
    a = _host(x)
    r = np.empty_like(a) if out is None else _host(out)
    np.divide(1, 1 + np.exp(-a, dtype=a.dtype), out=r)
    return out if out is not None else ndarray(r)


cupyx = types.ModuleType("cupyx")
cupyx.scipy = types.ModuleType("cupyx.scipy")
cupyx.scipy.special = types.ModuleType("cupyx.scipy.special")
cupyx.scipy.special.expit = _expit


# -- installing it as ``cupy`` -------------------------------------------------------------------
_NAMES = ("cupy", "cupyx", "cupyx.scipy", "cupyx.scipy.special")


@contextlib.contextmanager
def installed():
    """Inside: ``import cupy`` gives this stand-in (with one GPU); outside, what was there before."""
    saved = {n: sys.modules.get(n) for n in _NAMES}
    me = sys.modules[__name__]
    sys.modules.update({"cupy": me, "cupyx": cupyx, "cupyx.scipy": cupyx.scipy,
                        "cupyx.scipy.special": cupyx.scipy.special})
    try:
        yield me
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
