"""PyTorch peers for the speed benchmark (imported only when torch is installed).

Each peer mirrors one of ``bench``'s cases: the same layers, shapes, initial
weights, masks, data and optimiser (``torch.optim.Adam``, same lr), so the two
timings are for the same work. Masks use ``torch.nn.utils.prune``, PyTorch's
own way of training with a fixed mask (forward with weight_orig ⊙ mask).
torch is never a dependency of the package; nothing else imports this file.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils import prune

from minilottery.backend import backend_name, to_numpy
from minilottery.nn.blocks import BasicBlock, GlobalAvgPool2d
from minilottery.nn.conv import Conv2d, MaxPool2d
from minilottery.nn.layers import Dense, Dropout, Flatten, ReLU
from minilottery.nn.norm import BatchNorm2d


def device():
    """cuda when ours runs on CuPy and torch sees a GPU, else cpu."""
    return "cuda" if backend_name() == "cupy" and torch.cuda.is_available() else "cpu"


def tensor(a, dev):
    return torch.from_numpy(np.array(to_numpy(a), copy=True)).to(dev)   # its own, writable copy


def synchronize(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def _module(layer, dev):
    """The torch module for one of our layers, with a copy of its weights and mask."""
    if isinstance(layer, Dense):
        m = torch.nn.Linear(layer.in_features, layer.out_features)
    elif isinstance(layer, Conv2d):
        m = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.k, layer.s, layer.p,
                            bias="b" in layer.params)
    elif isinstance(layer, BatchNorm2d):
        m = torch.nn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum).to(dev)
        with torch.no_grad():
            m.weight.copy_(tensor(layer.params["gamma"], dev))
            m.bias.copy_(tensor(layer.params["beta"], dev))
        return m
    elif isinstance(layer, BasicBlock):
        return _Block(layer, dev)
    elif isinstance(layer, GlobalAvgPool2d):
        return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    elif isinstance(layer, ReLU):
        return torch.nn.ReLU()
    elif isinstance(layer, MaxPool2d):
        return torch.nn.MaxPool2d(layer.k, layer.s)
    elif isinstance(layer, Flatten):
        return torch.nn.Flatten()
    elif isinstance(layer, Dropout):
        return torch.nn.Dropout(layer.p)
    else:
        raise TypeError(f"no torch peer for {layer!r}")
    m = m.to(dev)
    with torch.no_grad():
        m.weight.copy_(tensor(layer.params["W"], dev))
        if "b" in layer.params:
            m.bias.copy_(tensor(layer.params["b"], dev))
    if layer.mask is not None:
        prune.custom_from_mask(m, "weight", tensor(layer.mask, dev))
    return m


class _Block(torch.nn.Module):
    """relu(main(x) + shortcut(x)) with the block's children as torch modules."""

    def __init__(self, block, dev):
        super().__init__()
        mods = [_module(layer, dev) for _, layer in block.children]
        self.main, self.side = torch.nn.Sequential(*mods[:5]), torch.nn.Sequential(*mods[5:])

    def forward(self, x):
        return F.relu(self.main(x) + self.side(x))


def mirror(model, dev):
    """A torch.nn.Sequential equal to our Sequential ``model`` (weights and masks copied)."""
    return torch.nn.Sequential(*(_module(layer, dev) for _, layer in model.layers))


def train_step(model, x, labels, lr, sgd=False):
    """PyTorch's usual step: zero grads, forward, cross-entropy, backward, Adam
    (``sgd``: SGD at 0.1, momentum 0.9, weight decay 1e-4, the deeper networks' optimiser)."""
    dev = device()
    net = mirror(model, dev).train()
    opt = (torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4) if sgd
           else torch.optim.Adam(net.parameters(), lr=lr))
    tx, ty = tensor(x, dev), tensor(labels, dev).long()

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(tx), ty).backward()
        opt.step()
    return step, lambda: synchronize(dev)


def conv_forward(layer, x):
    """Forward of one Conv2d, with autograd recording as in training."""
    dev = device()
    conv = _module(layer, dev)
    tx = tensor(x, dev).requires_grad_(True)

    def step():
        conv(tx)
    return step, lambda: synchronize(dev)


def conv_backward(layer, x, dy):
    """Backward alone of one Conv2d: dx, dW, db from a recorded graph."""
    dev = device()
    conv = _module(layer, dev)
    tx, tdy = tensor(x, dev).requires_grad_(True), tensor(dy, dev)
    y = conv(tx)
    wrt = [tx, conv.bias, conv.weight_orig if layer.mask is not None else conv.weight]

    def step():
        torch.autograd.grad(y, wrt, tdy, retain_graph=True)
    return step, lambda: synchronize(dev)


def peak_bytes(step, sync):
    """Peak CUDA memory of one call (None on CPU, where torch keeps no such count)."""
    if device() != "cuda":
        return None
    sync()
    torch.cuda.reset_peak_memory_stats()
    step()
    sync()
    return int(torch.cuda.max_memory_allocated())
