"""Optional oracle: tiny ResNet-20 and VGG-11 against PyTorch's modules (skipped without torch).

The same weights in both (bench/torch_peers.mirror copies them), float64, train mode: the logits,
every parameter gradient (γ and β included), and BatchNorm's running statistics after the
forward agree with torch.nn.BatchNorm2d's; then eval mode agrees on the logits."""
import numpy as np
import pytest

from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.models import build_model
from minilottery.rng import Streams

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name,dataset", [("resnet20", "cifar10"), ("vgg11", "cifar10")])
def test_matches_pytorch(name, dataset):
    from minilottery.bench import torch_peers as bt
    ours = build_model(name, Streams.from_seed(3), dataset, dtype=np.float64, width=1 / 8)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)                 # the copies keep every float64 bit
    try:
        theirs = bt.mirror(ours, "cpu").train()
    finally:
        torch.set_default_dtype(default)
    x = np.random.default_rng(0).standard_normal((6,) + ours.input_shape)
    y = np.random.default_rng(1).integers(0, 10, 6)
    logits = ours.forward(x, train=True)
    _, d = softmax_cross_entropy(logits, y)
    ours.backward(d)
    tl = theirs(torch.from_numpy(x))
    torch.nn.functional.cross_entropy(tl, torch.from_numpy(y)).backward()
    assert np.allclose(logits, tl.detach().numpy(), rtol=1e-9, atol=1e-10)
    mods = [m for m in theirs.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d))]
    leaves = [l for _, l in ours.walk() if l.params]
    assert len(mods) == len(leaves)
    for m, l in zip(mods, leaves):
        pairs = ([("gamma", m.weight), ("beta", m.bias)] if "gamma" in l.params else
                 [("W", m.weight)] + ([("b", m.bias)] if "b" in l.params else []))
        for key, t in pairs:
            assert np.allclose(l.grads[key], t.grad.numpy(), rtol=1e-7, atol=1e-10), (l, key)
        if "gamma" in l.params:
            assert np.allclose(l.buffers["running_mean"], m.running_mean.numpy(), rtol=1e-10, atol=1e-12)
            assert np.allclose(l.buffers["running_var"], m.running_var.numpy(), rtol=1e-10, atol=1e-12)
    theirs.eval()
    assert np.allclose(ours.forward(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-9, atol=1e-10)
