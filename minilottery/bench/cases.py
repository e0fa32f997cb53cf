"""The benchmark's cases: each is our step and a maker of its peer, on the active backend, batch 60.

  lenet     LeNet-300-100 train step: forward, softmax cross-entropy, backward, masked Adam
  conv2     Conv-2 train step on MNIST-shaped input (1, 28, 28)
  conv_fwd  Conv2d 64->64, 3x3, padding 1, 28x28: forward alone (training mode)
  conv_bwd  the same layer's backward alone (dx, dW, db)
  conv6     (opt-in) Conv-6 train step on CIFAR-shaped input (3, 32, 32)
  supermask (opt-in) LeNet learned-supermask step (Bernoulli sample, straight-through, SGD momentum
            on the scores), against OUR dense Adam step of the same model and batch
  edgepopup (opt-in) LeNet edge-popup step (top-k of |s|), against our dense Adam step likewise
  resnet20  (opt-in) ResNet-20 train step, batch 128 (its protocol's), (3, 32, 32), train-mode BN,
            SGD momentum 0.9 with weight decay 1e-4 (also the peer's)
  vgg19     (opt-in) VGG-19 train step likewise (batch 128, as the issue's bench; the paper trains at 64)
"""
import numpy as np

from minilottery import backend
from minilottery.lottery.edgepopup import EdgePopup
from minilottery.lottery.supermask import LearnedSupermask
from minilottery.nn.conv import Conv2d
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.models import build_model
from minilottery.nn.optim import Adam, make_optimizer
from minilottery.rng import Streams

CASES = ("lenet", "conv2", "conv_fwd", "conv_bwd", "conv6", "supermask", "edgepopup", "resnet20", "vgg19")
DEEP_CASES = {"resnet20": 128, "vgg19": 128}  # case: batch
SCORE_CASES = ("supermask", "edgepopup")   # their peer is our own dense step, not PyTorch
DEFAULT_CASES = CASES[:4]
LR = 1.2e-3  # LeNet's Adam learning rate in the paper; used for every case


def _data(shape, batch, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(shape), dtype=np.float32)  # (N, C, H, W)
    return x, rng.integers(0, 10, size=batch)                            # labels (N,)


def _mask(model, density, seed=2):
    """Random masks keeping ``density`` of every weight (IMP-like sparsity), or none."""
    if density >= 1.0:
        return
    rng = np.random.default_rng(seed)
    model.set_masks({k: (rng.random(w.shape) < density).astype(np.float32)
                     for k, w in model.get_weights().items() if k.endswith(".W")})


def _train(name, dataset, args):
    model = build_model(name, Streams.from_seed(0), dataset=dataset)
    _mask(model, args.density)
    deep = name in DEEP_CASES
    x, labels = _data(model.input_shape, DEEP_CASES.get(name, args.batch))
    dx, dlabels = backend.asarray(x), backend.asarray(labels)
    opt = (make_optimizer("momentum", model.params(), lr=0.1, momentum=0.9, weight_decay=1e-4) if deep
           else Adam(model.params(), lr=LR))

    def step():
        loss, dlogits = softmax_cross_entropy(model.forward(dx, train=True), dlabels)
        model.backward(dlogits, input_grad=False)          # as torch: no gradient for the data
        opt.step(model.grads(), model.masks())

    def peer(bt):
        return bt.train_step(model, x, labels, LR, sgd=deep)
    return step, peer, model


def _conv(args, backward):
    layer = Conv2d(64, 64, 3, Streams.from_seed(0).init, padding=1)
    if args.density < 1.0:
        layer.set_mask((np.random.default_rng(2).random(layer.params["W"].shape) < args.density)
                       .astype(np.float32))
    x, _ = _data((64, 28, 28), args.batch)
    dy = np.random.default_rng(3).standard_normal((args.batch, 64, 28, 28), dtype=np.float32)
    dx, ddy = backend.asarray(x), backend.asarray(dy)
    layer.forward(dx, train=True)
    step = (lambda: layer.backward(ddy)) if backward else (lambda: layer.forward(dx, train=True))

    def peer(bt):
        return bt.conv_backward(layer, x, dy) if backward else bt.conv_forward(layer, x)
    return step, peer, None


def _scores(case, args):
    """A score-trained LeNet step; its peer is our dense Adam step on the same model and batch."""
    model = build_model("lenet_300_100", Streams.from_seed(0))
    rngs = Streams.from_seed(0)
    net = LearnedSupermask(model, rngs.mask) if case == "supermask" else EdgePopup(model, 0.5, rngs.mask)
    opt = make_optimizer("momentum", net.params(), lr=100.0 if case == "supermask" else 0.1)
    x, labels = _data(model.input_shape, args.batch)
    dx, dlabels = backend.asarray(x), backend.asarray(labels)

    def step():
        loss, dlogits = softmax_cross_entropy(net.forward(dx, train=True), dlabels)
        net.backward(dlogits, input_grad=False)
        opt.step(net.grads())
        net.after_step()
    dense = _train("lenet_300_100", "mnist", args)[0]
    return step, lambda bt: (dense, backend.synchronize), None


def make_case(case, args):
    if case in SCORE_CASES:
        return _scores(case, args)
    if case == "lenet":
        return _train("lenet_300_100", "mnist", args)
    if case == "conv2":
        return _train("conv2", "mnist", args)
    if case == "conv6":
        return _train("conv6", "cifar10", args)
    if case in DEEP_CASES:
        return _train(case, "cifar10", args)
    if case in ("conv_fwd", "conv_bwd"):
        return _conv(args, backward=case == "conv_bwd")
    raise ValueError(f"unknown case {case!r}; choose from {CASES}")
