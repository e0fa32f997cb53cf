"""The deeper networks (ResNet-20, VGG-11/16/19): counts as the paper states them, weight kinds,
BatchNorm buffers carried by get_weights/set_weights and restored bitwise by every reset,
augmentation drawn from the data stream, and the warmup / step schedule."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minilottery import backend
from minilottery.data import Batches
from minilottery.lottery.resets import reset
from minilottery.nn.models import DEEP, build_model
from minilottery.rng import Streams
from minilottery.train import TrainConfig


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield


def test_resnet20_counts_match_the_paper():
    """272,474 parameters; the 1×1 shortcuts hold the paper's 2,560 weights, the fc its 640."""
    net = build_model("resnet20", Streams.from_seed(0), "cifar10")
    assert sum(v.size for v in net.params().values()) == 272_474
    kinds = net.weight_kinds()
    counts = net.weight_counts()
    assert sum(counts[k] for k, v in kinds.items() if v == "shortcut") == 16 * 32 + 32 * 64
    assert [k for k, v in kinds.items() if v == "output"] == ["fc.W"] and counts["fc.W"] == 640
    assert sum(v == "conv" for v in kinds.values()) == 19                   # stem + 18 in the blocks
    assert not any(k.endswith(".b") for k in net.params() if not k.startswith("fc"))  # convs without bias


@pytest.mark.parametrize("name,convs", [("vgg11", 8), ("vgg16", 13), ("vgg19", 16)])
def test_vgg_counts(name, convs):
    net = build_model(name, Streams.from_seed(0), "cifar10")
    kinds = net.weight_kinds()
    assert list(kinds.values()) == ["conv"] * convs + ["output"]
    assert net.weight_counts()["fc.W"] == 5_120
    assert len([k for k in net.params() if k.endswith(".gamma")]) == convs


@pytest.mark.parametrize("name", DEEP)
@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "cifar10"])
def test_forward_shapes_and_width(name, dataset):
    net = build_model(name, Streams.from_seed(1), dataset, width=1 / 16)
    assert net.output_shape == (10,)
    x = np.random.default_rng(0).standard_normal((3,) + net.input_shape).astype(np.float32)
    y = net.forward(x, train=True)
    assert y.shape == (3, 10) and y.dtype == np.float32 and np.isfinite(y).all()
    assert ("pad" in dict(net.layers)) == (name.startswith("vgg") and dataset != "cifar10")


def test_width_and_dropout_are_refused_where_they_do_not_apply():
    with pytest.raises(ValueError, match="width"):
        build_model("conv2", Streams.from_seed(0), "cifar10", width=0.5)
    with pytest.raises(ValueError, match="dropout"):
        build_model("resnet20", Streams.from_seed(0), "cifar10", dropout=0.5)


def trained_a_little(name="resnet20"):
    net = build_model(name, Streams.from_seed(2), "fashion_mnist", width=1 / 8)
    x = np.random.default_rng(3).standard_normal((4,) + net.input_shape).astype(np.float32)
    for _ in range(2):
        net.forward(x, train=True)                                          # moves the running statistics
    return net


def test_buffers_are_state_not_parameters():
    net = trained_a_little()
    buffers = net.buffers()
    assert buffers and all(k.endswith(("running_mean", "running_var")) for k in buffers)
    assert not set(buffers) & set(net.params())                             # the optimiser never sees them
    w = net.get_weights()
    assert set(w) == set(net.params()) | set(buffers)
    assert any(not np.array_equal(v, 0) for k, v in w.items() if k.endswith("running_mean"))
    with pytest.raises(KeyError, match="running"):
        net.set_weights({k: v for k, v in w.items() if k in net.params()})


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2 ** 16), name=st.sampled_from(["resnet20", "vgg11"]))
def test_a_reset_restores_batchnorm_buffers_bitwise(seed, name):
    """reset (to θ0 or θk) copies the running statistics back exactly, and never aliases them."""
    net = build_model(name, Streams.from_seed(seed), "fashion_mnist", width=1 / 8)
    theta0 = net.get_weights()
    x = np.random.default_rng(seed).standard_normal((4,) + net.input_shape).astype(np.float32)
    net.forward(x, train=True)
    assert any(not np.array_equal(v, theta0[k]) for k, v in net.buffers().items())
    masks = {k: (np.random.default_rng(seed).random(v.shape) > 0.5).astype(np.float32)
             for k, v in theta0.items() if k.endswith(".W")}
    reset(net, theta0, masks)
    for k, v in net.buffers().items():
        assert np.array_equal(v, theta0[k]) and v.tobytes() == theta0[k].tobytes(), k
        assert not np.shares_memory(v, theta0[k])
    net.forward(x, train=True)
    assert any(not np.array_equal(v, theta0[k]) for k, v in net.buffers().items())  # theta0 untouched


@pytest.mark.parametrize("kind", ["crop", "crop_flip"])
def test_augmentation_is_drawn_from_the_data_stream(kind):
    x = np.random.default_rng(0).random((50, 1, 6, 6)).astype(np.float32)
    y = np.arange(50) % 10
    a = Batches(x, y, 10, Streams.from_seed(5).data, augment=kind)
    b = Batches(x, y, 10, Streams.from_seed(5).data, augment=kind)
    plain = Batches(x, y, 10, Streams.from_seed(5).data)
    for i in range(7):                                                      # across an epoch boundary
        (xa, ya), (xb, yb), (xp, yp) = next(a), next(b), next(plain)
        assert xa.tobytes() == xb.tobytes() and np.array_equal(ya, yb)
        if i == 0:                                  # the first permutation is drawn before any augmentation
            assert np.array_equal(ya, yp) and not np.array_equal(xa, xp)


def test_crop_and_flip_are_the_stated_windows():
    """Each augmented image is a 6×6 window of its 4-zero-padded self, mirrored only under crop_flip."""
    x = np.random.default_rng(1).random((40, 2, 6, 6)).astype(np.float32) + 1   # no zeros inside
    for kind in ("crop", "crop_flip"):
        xb, yb = next(Batches(x, np.arange(40), 40, Streams.from_seed(0).data, augment=kind))
        flips = 0
        for img, i in zip(xb, yb):
            padded = np.pad(x[i], ((0, 0), (4, 4), (4, 4)))
            wins = [padded[:, a:a + 6, b:b + 6] for a in range(9) for b in range(9)]
            plain = any(np.array_equal(img, w) for w in wins)
            mirrored = any(np.array_equal(img, w[:, :, ::-1]) for w in wins)
            assert plain or (kind == "crop_flip" and mirrored)
            flips += not plain
        assert (flips > 0) == (kind == "crop_flip")


def test_warmup_and_step_schedule():
    cfg = TrainConfig(iterations=100, lr=0.1, warmup=10, milestones=(50, 80), gamma=0.1)
    assert cfg.lr_at(1) == pytest.approx(0.01) and cfg.lr_at(5) == pytest.approx(0.05)
    assert cfg.lr_at(10) == pytest.approx(0.1) and cfg.lr_at(50) == pytest.approx(0.1)
    assert cfg.lr_at(51) == pytest.approx(0.01) and cfg.lr_at(80) == pytest.approx(0.01)
    assert cfg.lr_at(81) == pytest.approx(0.001)
    with pytest.raises(Exception, match="milestones"):
        TrainConfig(milestones=(50, 20))
    with pytest.raises(Exception, match="warmup"):
        TrainConfig(warmup=-1)
