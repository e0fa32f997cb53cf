"""The backend switch, its errors, and NumPy/CuPy parity (on the strict stand-in, and on CuPy with a GPU)."""
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilottery import backend
from minilottery.backend import set_backend, to_numpy
from minilottery.nn import (Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU, Sequential,
                            softmax_cross_entropy)
from minilottery.nn.optim import make_optimizer
from minilottery.rng import Streams


@pytest.fixture(autouse=True)
def restore_numpy_backend():
    set_backend("numpy")
    yield
    set_backend("numpy")


# -- choosing a backend ------------------------------------------------------------------
def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError) as e:
        set_backend("bogus")
    msg = str(e.value)
    assert "bogus" in msg and "numpy" in msg and "cupy" in msg, msg
    assert backend.get_backend() is np            # the failed request changed nothing


def test_numpy_backend_selected():
    assert set_backend("numpy") is np
    assert backend.get_backend() is np and backend.backend_name() == "numpy"
    backend.synchronize()                          # a no-op on NumPy, must not fail


def test_missing_cupy_raises_runtime_error_mentioning_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    with pytest.raises(RuntimeError, match="CuPy"):
        set_backend("cupy")
    assert backend.cupy_available() is False
    assert backend.get_backend() is np and backend.backend_name() == "numpy"


def _fake_cupy(get_count):
    mod = types.ModuleType("cupy")
    mod.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_count))
    return mod


def test_cupy_without_a_gpu_is_refused(monkeypatch):
    """CuPy importing is not the same as a GPU existing: the device count is checked."""
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(RuntimeError, match="GPU"):
        set_backend("cupy")
    assert backend.cupy_available() is False
    assert backend.get_backend() is np


def test_cupy_with_broken_driver_is_refused(monkeypatch):
    def broken():
        raise OSError("libcuda.so: cannot open shared object file")

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(broken))
    with pytest.raises(RuntimeError, match="libcuda"):
        set_backend("cupy")
    assert backend.cupy_available() is False


def test_environment_variable_chooses_the_initial_backend(monkeypatch):
    monkeypatch.setattr(backend, "_active", None)
    monkeypatch.setenv(backend.ENV_VAR, " NumPy ")
    assert backend.get_backend() is np
    monkeypatch.setattr(backend, "_active", None)
    monkeypatch.setenv(backend.ENV_VAR, "tensorflow")
    with pytest.raises(ValueError, match="tensorflow"):
        backend.get_backend()


# -- host boundary -----------------------------------------------------------------------
@pytest.mark.parametrize("a", [
    np.arange(6.0).reshape(2, 3),
    np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],    # non-contiguous view
    np.array(3.5),
    np.zeros((0, 4), dtype=np.int64),
])
def test_to_numpy_on_numpy_is_identity(a):
    assert to_numpy(a) is a


def test_to_numpy_calls_get_on_device_arrays_and_converts_the_rest():
    class DeviceArray:
        def get(self):
            return np.array([1.0, 2.0])

    np.testing.assert_array_equal(to_numpy(DeviceArray()), [1.0, 2.0])
    out = to_numpy([1, 2, 3])
    assert isinstance(out, np.ndarray) and out.tolist() == [1, 2, 3]


def test_xp_of_and_asarray_on_numpy():
    a = np.ones(3, dtype=np.float32)
    assert backend.xp_of(a) is np and backend.xp_of(1.0) is np
    b = backend.asarray(a)
    assert isinstance(b, np.ndarray) and b.dtype == np.float32
    assert backend.asarray([1, 2], dtype=np.float32).dtype == np.float32


# -- NumPy/CuPy parity (the `device` fixture: stand-in always, CuPy with a GPU) ----------------------------------------------------------
def _close(a, b, rel=2e-4):
    a, b = to_numpy(a).astype(np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    scale = max(float(np.max(np.abs(b))), 1e-6) if b.size else 1.0
    assert float(np.max(np.abs(a - b))) <= rel * scale, float(np.max(np.abs(a - b))) / scale


def _lenet_like(seed, dropout=0.0):
    s = Streams.from_seed(seed)
    layers = [("flatten", Flatten()), ("fc1", Dense(784, 300, s.init)), ("relu1", ReLU())]
    if dropout:
        layers.append(("drop1", Dropout(dropout, s.dropout)))
    layers += [("fc2", Dense(300, 100, s.init)), ("relu2", ReLU()), ("fc3", Dense(100, 10, s.init))]
    return Sequential(layers, input_shape=(1, 28, 28))


def _small_conv(seed):
    s = Streams.from_seed(seed)
    return Sequential([
        ("conv1", Conv2d(3, 8, 3, s.init, padding=1)), ("relu1", ReLU()),
        ("conv2", Conv2d(8, 8, (3, 2), s.init, stride=(1, 2), padding=(1, 0))), ("relu2", ReLU()),
        ("pool", MaxPool2d(2)), ("flatten", Flatten()),
        ("fc", Dense(8 * 6 * 3, 10, s.init)),
    ], input_shape=(3, 12, 12))


class _HostUniforms:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def random(self, shape):
        return backend.asarray(self.rng.random(shape))


def _run(build, x, labels, mask_seed=None, train=False, fill=False):
    """Forward, loss and backward on the active backend; everything returned on the host.

    Masks (and, with ``fill``, frozen fills) change no weight: the weights returned
    are the initial ones on both backends."""
    net = build()
    for _, layer in net.layers:
        if isinstance(layer, Dropout):        # the same keep mask on both backends (their noise streams differ)
            layer.noise = _HostUniforms(5)
    if mask_seed is not None:
        r = np.random.default_rng(mask_seed)
        shapes = {k: w.shape for k, w in net.get_weights().items() if k.endswith(".W")}
        masks = {k: (r.random(s) < 0.6).astype(np.float32) for k, s in shapes.items()}
        fills = {k: r.standard_normal(s).astype(np.float32) * 0.1 for k, s in shapes.items()} if fill else None
        net.set_masks(masks, fills)
    xd = backend.asarray(x)
    logits = net.forward(xd, train=train)
    loss, dlogits = softmax_cross_entropy(logits, backend.asarray(labels))
    dx = net.backward(dlogits)
    return (to_numpy(logits), float(to_numpy(loss)), to_numpy(dx),
            {k: to_numpy(v) for k, v in net.grads().items()}, net.get_weights())


@pytest.mark.parametrize("build", [_lenet_like, _small_conv])
def test_same_seed_same_initial_weights_on_both_backends(device, build):
    set_backend("numpy")
    host = build(0).get_weights()
    set_backend("cupy")
    device_net = build(0)
    assert all(backend.is_device(v) for v in device_net.params().values())
    dev = device_net.get_weights()
    assert set(host) == set(dev)
    for k in host:
        np.testing.assert_array_equal(dev[k], host[k])


@pytest.mark.parametrize("case", ["lenet", "lenet-dropout", "lenet-masked", "conv", "conv-masked",
                                  "conv-masked-filled"])
def test_forward_backward_parity(device, case):
    rng = np.random.default_rng(42)
    if case.startswith("lenet"):
        build = (lambda: _lenet_like(1, dropout=0.5)) if case == "lenet-dropout" else (lambda: _lenet_like(1))
        x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    else:
        build = lambda: _small_conv(1)  # noqa: E731
        x = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
    labels = rng.integers(0, 10, size=x.shape[0])
    mask_seed = 9 if "masked" in case else None
    train, fill = case == "lenet-dropout", case.endswith("filled")

    set_backend("numpy")
    host = _run(build, x, labels, mask_seed, train, fill)
    set_backend("cupy")
    dev = _run(build, x, labels, mask_seed, train, fill)

    _close(dev[0], host[0])
    assert abs(dev[1] - host[1]) <= 1e-5 * max(1.0, abs(host[1]))
    _close(dev[2], host[2])
    assert set(dev[3]) == set(host[3])
    for k in host[3]:
        assert dev[3][k].dtype == np.float32
        _close(dev[3][k], host[3][k])
    for k in host[4]:
        np.testing.assert_array_equal(dev[4][k], host[4][k])   # weights untouched, identical


@pytest.mark.parametrize("name,kw", [("sgd", {"weight_decay": 1e-3}), ("momentum", {"nesterov": True}),
                                     ("adam", {"weight_decay": 1e-3})])
def test_masked_optimiser_step_parity(device, name, kw):
    """The same masked steps on both backends: frozen entries keep their (non-zero)
    values bit for bit with zero state, the rest agree to float32 rounding. The array
    is larger than optim.CHUNK, so NumPy updates it in slices and CuPy in one piece."""
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((300, 700)).astype(np.float32)
    mask = (rng.random(w0.shape) < 0.5).astype(np.float32)
    grads = [rng.standard_normal(w0.shape).astype(np.float32) for _ in range(3)]

    def run():
        w = backend.asarray(w0.copy())
        opt = make_optimizer(name, {"w": w}, 1e-2, **kw)
        m = backend.asarray(mask)
        for g in grads:
            opt.step({"w": backend.asarray(g)}, {"w": m})
        return to_numpy(w), {k: to_numpy(v) for k, v in opt.state_dict().items() if k != "t"}

    set_backend("numpy")
    host = run()
    set_backend("cupy")
    dev = run()
    frozen = mask == 0
    for w, state in (host, dev):
        assert w[frozen].tobytes() == w0[frozen].tobytes()
        for b, v in state.items():
            assert not np.any(v[frozen]), b
    _close(dev[0], host[0], rel=1e-5)
    assert set(dev[1]) == set(host[1])
    for b in host[1]:
        _close(dev[1][b], host[1][b], rel=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([np.float32, np.float64]),
       st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=1, max_size=50))
def test_host_sigmoid_is_scipys_to_a_few_ulps_in_the_same_dtype_without_warnings(dtype, values):
    import warnings
    from scipy.special import expit as scipy_expit
    a = np.asarray(values, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # e^(−a) overflowing must not warn
        p = backend.expit(a)
    ref = scipy_expit(a)
    assert p.dtype == a.dtype and np.all((p >= 0) & (p <= 1))
    tol = 8 * np.spacing(np.maximum(ref, np.finfo(dtype).tiny).astype(dtype))
    assert np.all(np.abs(p - ref) <= tol)
