"""Float64 gradient checks of the deeper networks' pieces: the residual basic block with both
shortcuts, global average pooling, zero padding, and whole tiny ResNet-20 and VGG networks
(train-mode BatchNorm, through the loss)."""
import numpy as np
import pytest

from minilottery import backend
from minilottery.nn import BasicBlock, GlobalAvgPool2d, Sequential, ZeroPad2d, softmax_cross_entropy
from minilottery.nn.models import resnet, vgg
from minilottery.rng import Streams
from tests.reference import numerical_grad, rel_error

F64 = np.float64
TOL = 1e-6
H = 1e-5          # the central differences' step


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield


def check_all(layer, x, train, rng, params):
    """dx and every gradient of ``params`` ({name: live array}) against central differences."""
    y = layer.forward(x, train)
    upstream = rng.standard_normal(y.shape)
    dx = layer.backward(upstream.copy())
    grads = {k: np.array(v, copy=True) for k, v in grads_of(layer).items()}

    def f():
        return layer.forward(x, train)

    assert rel_error(dx, numerical_grad(f, x, upstream)) < TOL, "dx"
    for key, p in params.items():
        assert rel_error(grads[key], numerical_grad(f, p, upstream)) < TOL, key


def grads_of(layer):
    return layer.grads() if isinstance(layer, Sequential) else {
        f"{n}.{k}": v for n, l in layer.children for k, v in l.grads.items()}


def block_params(block):
    return {f"{n}.{k}": v for n, l in block.children for k, v in l.params.items()}


def randomise_bn(layers, rng):
    for _, l in layers:
        if "gamma" in l.params:
            l.params["gamma"][...] = rng.uniform(0.5, 1.5, l.params["gamma"].shape)
            l.params["beta"][...] = rng.standard_normal(l.params["beta"].shape)
            l.buffers["running_mean"][...] = rng.standard_normal(l.params["beta"].shape) * 0.1
            l.buffers["running_var"][...] = rng.uniform(0.5, 1.5, l.params["beta"].shape)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("c_in,c_out,stride", [(2, 2, 1), (2, 3, 2), (2, 3, 1)])
def test_basic_block_gradients(c_in, c_out, stride, mode):
    """Identity shortcut (2→2, stride 1) and the 1×1 conv + BN shortcut (channels or stride change)."""
    rng = np.random.default_rng(c_in * 100 + c_out * 10 + stride)
    block = BasicBlock(c_in, c_out, stride, rng, dtype=F64, input_shape=(c_in, 4, 4))
    assert block.identity == (c_in == c_out and stride == 1)
    assert [n for n, _ in block.children][5:] == ([] if block.identity else ["shortcut", "shortcut_bn"])
    randomise_bn(block.children, rng)
    x = rng.standard_normal((3, c_in, 4, 4))
    check_all(block, x, mode == "train", rng, block_params(block))


def test_global_average_pool_and_zero_pad_gradients():
    rng = np.random.default_rng(5)
    for layer, shape in ((GlobalAvgPool2d(), (2, 3, 4, 5)), (ZeroPad2d(2), (2, 1, 3, 2))):
        x = rng.standard_normal(shape)
        y = layer.forward(x)
        assert tuple(y.shape) == (shape[0],) + layer.output_shape(shape[1:])
        up = rng.standard_normal(y.shape)
        assert rel_error(layer.backward(up), numerical_grad(lambda: layer.forward(x), x, up)) < TOL
    x = rng.standard_normal((2, 3, 4, 5))
    assert np.allclose(GlobalAvgPool2d().forward(x), x.mean(axis=(2, 3)))
    padded = ZeroPad2d(2).forward(x)
    assert padded.shape == (2, 3, 8, 9) and np.array_equal(padded[:, :, 2:-2, 2:-2], x)
    assert padded.sum() == pytest.approx(x.sum())


@pytest.mark.parametrize("build,shape,width", [(resnet, (3, 8, 8), 0.125), (vgg, (1, 16, 16), 1 / 64)])
def test_whole_tiny_network_through_the_loss(build, shape, width):
    """L = cross-entropy of a tiny ResNet-20 (2/4/8 channels, 8×8 inputs) or VGG-11 (1..8 channels,
    16×16), train-mode BatchNorm: every parameter's gradient and dL/dx against central differences
    at sampled entries (small maps keep the thousands of ReLUs away from their kinks)."""
    rng = np.random.default_rng(11)
    net = build(build.__name__ + ("20" if build is resnet else "11"), Streams.from_seed(4), shape, width, F64)
    randomise_bn(net.walk(), rng)
    shape = (4,) + net.input_shape
    x = rng.standard_normal(shape)
    labels = rng.integers(0, 10, 4)

    def f():
        return softmax_cross_entropy(net.forward(x, train=True), labels)[0]

    _, d = softmax_cross_entropy(net.forward(x, train=True), labels)
    dx = net.backward(d)
    grads = {k: v.copy() for k, v in net.grads().items()}
    assert set(grads) == set(net.params())
    for key, p, g in [("x", x, dx)] + [(k, p, grads[k]) for k, p in net.params().items()]:
        idx = sampled(p, rng)
        a, n = g.ravel()[idx], central_at(f, p, idx)
        # rel_error's floor over the whole array, and the rounding of the difference quotient: a conv bias
        # before train-mode BN has gradient 0 (the mean subtraction removes it), where only the rounding of
        # L at ±h is left, a few ulp(L) / 2h (5 ulps seen); 50 ulps are allowed
        rounding = 50 * np.spacing(abs(float(f()))) / (2 * H)
        scale = np.maximum(np.maximum(np.abs(a), np.abs(n)), max(1e-3 * np.abs(g).max(), rounding / TOL))
        assert np.max(np.abs(a - n) / scale) < TOL, key


def sampled(a, rng, k=4):
    """Up to k flat indices of ``a`` (all of a small array): whole networks are checked entry by entry."""
    return np.arange(a.size) if a.size <= k else rng.choice(a.size, k, replace=False)


def central_at(f, a, idx, h=None):
    """(f(a + h e_i) − f(a − h e_i)) / 2h at the flat indices ``idx`` of ``a`` (perturbed in place)."""
    h, out, flat = H if h is None else h, [], a.reshape(-1)
    for i in idx:
        v = flat[i]
        flat[i] = v + h
        up = float(f())
        flat[i] = v - h
        down = float(f())
        flat[i] = v
        out.append((up - down) / (2 * h))
    return np.array(out)
