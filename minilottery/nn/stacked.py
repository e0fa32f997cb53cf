"""Stacked runs: R networks of one architecture as one network with a leading run axis.

Every weight, bias and mask of the R networks is stacked into one array (R, ...), so each
layer is one batched product (``matmul`` on (R, ·, ·) arrays: on NumPy one BLAS call per run
of the same shape as alone, on CuPy one strided-batched cuBLAS call), and the optimiser
steps all R runs in one pass. Activations carry the run axis too: a training batch is
(R, N, ...), one batch per run from its own data stream; an evaluation batch (N, ...) is
shared by every run (broadcast in the first layer). Each run's numbers are what it computes
alone: the element-wise code is the same and each product has the same shape.

Convolutions stack too: a (R, N, C, H, W) batch is R·N images, one run after another, and
each block of a run's rows is multiplied for every run (gridconv.py: run by run on NumPy,
all R in one batched product on CuPy). On a CPU this is slower than the runs one by one: R
runs' activations leave the cache that one run's fit in (README, Performance). Dense,
Conv2d, MaxPool2d, ReLU and Flatten layers stack (LeNet, Conv-2/4/6 without dropout);
BatchNorm and residual blocks do not yet.
"""
import numpy as np

from minilottery.backend import xp_of
from minilottery.nn.conv import Conv2d, MaxPool2d
from minilottery.nn.layers import Dense, Flatten, Layer, ReLU
from minilottery.nn.sequential import Sequential

STACKING = (Dense, Conv2d, MaxPool2d, ReLU, Flatten)


def stacks(net):
    """True when ``net`` (a Sequential) is made only of layers that stack."""
    return all(type(layer) in STACKING for _, layer in net.layers)


def _stack_weights(stacked, layers):
    """Give ``stacked`` the R layers' parameters and masks with a run axis in front."""
    first = layers[0]
    xp = xp_of(first.params["W"])
    stacked.dtype, stacked.output, stacked.kind = first.dtype, first.output, first.kind
    stacked.grad_effective, stacked.fill, stacked.trains_weight = None, None, True
    stacked.params = {k: xp.stack([l.params[k] for l in layers]) for k in first.params}
    masked = [l.mask is not None for l in layers]
    if any(masked) and not all(masked):
        raise ValueError("stacked runs need a mask on every run's layer or on none")
    if any(l.fill is not None for l in layers):
        raise ValueError("stacked runs do not take frozen fills")
    stacked.install_mask(xp.stack([l.mask for l in layers]) if all(masked) else None)


def _merged(x, runs):
    """(R, N, ...) -> (R·N, ...), a view; a batch (N, ...) shared by the runs is repeated R times."""
    if x.ndim == 4:
        x = xp_of(x).broadcast_to(x, (runs,) + x.shape)
    return x.reshape((-1,) + x.shape[2:])


class StackedDense(Dense):
    """R Dense layers as one: W (R, out, in), b (R, out); y = x W_effᵀ + b per run."""

    def __init__(self, layers):
        Layer.__init__(self)
        self.in_features, self.out_features = layers[0].in_features, layers[0].out_features
        _stack_weights(self, layers)

    def forward(self, x, train=False):                    # x (R, N, in), or (N, in) shared by the runs
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Dense expected inputs of {self.in_features} features, got {tuple(x.shape)}")
        self.x, self.w_eff = x, self.effective_weight()
        y = xp_of(x).matmul(x, self.w_eff.swapaxes(1, 2))  # (R, N, out): one product per run
        y += self.params["b"][:, None, :]
        return y

    def backward(self, dy, input_grad=True):              # dy (R, N, out)
        # dW_eff = dyᵀ x ; db = Σ_n dy ; dx = dy W_eff, each per run
        xp = xp_of(dy)
        self._weight_grad(xp.matmul(dy.swapaxes(1, 2), self.x))   # (R, out, in)
        self.grads["b"] = dy.sum(axis=1)
        return xp.matmul(dy, self.w_eff) if input_grad else None  # (R, N, in)

    def __repr__(self):
        return f"StackedDense({self.params['W'].shape[0]} × {self.in_features}, {self.out_features})"


class StackedConv2d(Conv2d):
    """R Conv2d layers as one: W (R, O, C, kh, kw), b (R, O); x (R, N, C, H, W), or (N, C, H, W)
    shared by the runs. The R runs' images are one grid of R·N images (gridconv.py)."""

    def __init__(self, layers):
        Layer.__init__(self)
        first = layers[0]
        self.k, self.s, self.p = first.k, first.s, first.p
        self.in_channels, self.out_channels, self.runs = first.in_channels, first.out_channels, len(layers)
        _stack_weights(self, layers)

    def forward(self, x, train=False):
        if x.ndim not in (4, 5):
            raise ValueError(f"stacked Conv2d expected input (R, N, C, H, W) or (N, C, H, W), got {tuple(x.shape)}")
        y = super().forward(_merged(x, self.runs), train)      # (R·N, O, Ho, Wo)
        return y.reshape((self.runs, -1) + y.shape[1:])         # (R, N, O, Ho, Wo), a view

    def backward(self, dy, input_grad=True):                  # dy (R, N, O, Ho, Wo)
        dx = super().backward(_merged(dy, self.runs), input_grad)
        return None if dx is None else dx.reshape((self.runs, -1) + dx.shape[1:])

    def __repr__(self):
        return f"StackedConv2d({self.runs} × {super().__repr__()})"


class StackedMaxPool2d(MaxPool2d):
    """MaxPool2d over (R, N, C, H, W): the R·N images pooled as one batch."""

    def __init__(self, layer, runs):
        Layer.__init__(self)
        self.k, self.s, self.runs = layer.k, layer.s, runs

    def forward(self, x, train=False):
        y = super().forward(_merged(x, self.runs), train)
        return y.reshape((self.runs, -1) + y.shape[1:])

    def backward(self, dy):
        dx = super().backward(_merged(dy, self.runs))
        return dx.reshape((self.runs, -1) + dx.shape[1:])


class StackedFlatten(Flatten):
    """(…, C, H, W) -> (…, C·H·W): the leading run and batch axes kept."""

    def __init__(self, in_shape):
        super().__init__()
        self.in_ndim = len(in_shape)

    def forward(self, x, train=False):
        self.shape = x.shape
        return x.reshape(x.shape[:x.ndim - self.in_ndim] + (-1,))


class StackedNet(Sequential):
    """R Sequential networks of one architecture (layers in STACKING), stacked; ``runs`` is R.

    ``params()``, ``grads()`` and ``masks()`` hold (R, ...) arrays; ``run_weights(r)`` gives
    run r's host weights, keyed as the network alone would key them."""

    def __init__(self, nets):
        if not nets:
            raise ValueError("stacking needs at least one network")
        layers, shape = [], nets[0].input_shape
        for i, (name, layer) in enumerate(nets[0].layers):
            same = [n.layers[i][1] for n in nets]
            if any(type(s) is not type(layer) for s in same) or any(n.layers[i][0] != name for n in nets):
                raise ValueError(f"stacked networks differ at layer {i} ({name!r})")
            if type(layer) not in STACKING:
                raise ValueError(f"layer {name!r} ({type(layer).__name__}) does not stack yet: "
                                 f"{', '.join(t.__name__ for t in STACKING)} do")
            if isinstance(layer, Dense):
                layers.append((name, StackedDense(same)))
            elif isinstance(layer, Conv2d):
                layers.append((name, StackedConv2d(same)))
            elif isinstance(layer, MaxPool2d):
                layers.append((name, StackedMaxPool2d(layer, len(nets))))
            elif isinstance(layer, Flatten):
                layers.append((name, StackedFlatten(shape)))
            else:
                layers.append((name, ReLU()))
            shape = layer.output_shape(shape)
        super().__init__(layers, nets[0].input_shape)
        self.runs = len(nets)

    def check_input(self, x):
        n = len(self.input_shape)
        if tuple(x.shape[-n:]) != self.input_shape or x.ndim not in (n + 1, n + 2):
            raise ValueError(f"stacked model expected input (R, N, {self.input_shape}) or (N, ...), "
                             f"got {tuple(x.shape)}")

    def run_weights(self, r, weights=None):
        """Run r's host copy of every parameter, {"layer.key": array} (from ``weights`` if given)."""
        weights = self.get_weights() if weights is None else weights
        return {k: np.array(v[r], copy=True) for k, v in weights.items()}
