"""Stacked runs: R networks of one architecture as one network with a leading run axis.

Every weight, bias and mask of the R networks is stacked into one array (R, ...), so each
layer is one batched product (``matmul`` on (R, ·, ·) arrays: on NumPy one BLAS call per run
of the same shape as alone, on CuPy one strided-batched cuBLAS call), and the optimiser
steps all R runs in one pass. Activations carry the run axis too: a training batch is
(R, N, ...), one batch per run from its own data stream; an evaluation batch (N, ...) is
shared by every run (broadcast in the first layer). Each run's numbers are what it computes
alone: the element-wise code is the same and each product has the same shape.

Dense networks (LeNet) stack today: Dense, ReLU and Flatten layers (no dropout, no conv).
"""
import numpy as np

from minilottery.backend import xp_of
from minilottery.nn.layers import Dense, Flatten, Layer, ReLU
from minilottery.nn.sequential import Sequential


def stacks(net):
    """True when ``net`` (a Sequential) is made only of layers that stack."""
    return all(type(layer) in (Dense, ReLU, Flatten) for _, layer in net.layers)


class StackedDense(Dense):
    """R Dense layers as one: W (R, out, in), b (R, out); y = x W_effᵀ + b per run."""

    def __init__(self, layers):
        first = layers[0]
        Layer.__init__(self)
        xp = xp_of(first.params["W"])
        self.in_features, self.out_features, self.dtype = first.in_features, first.out_features, first.dtype
        self.output, self.kind, self.grad_effective, self.fill = first.output, first.kind, None, None
        self.trains_weight = True
        self.params = {k: xp.stack([l.params[k] for l in layers]) for k in ("W", "b")}
        masked = [l.mask is not None for l in layers]
        if any(masked) and not all(masked):
            raise ValueError("stacked runs need a mask on every run's layer or on none")
        if any(l.fill is not None for l in layers):
            raise ValueError("stacked runs do not take frozen fills")
        self.install_mask(xp.stack([l.mask for l in layers]) if all(masked) else None)

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


class StackedFlatten(Flatten):
    """(…, C, H, W) -> (…, C·H·W): the leading run and batch axes kept."""

    def __init__(self, in_shape):
        super().__init__()
        self.in_ndim = len(in_shape)

    def forward(self, x, train=False):
        self.shape = x.shape
        return x.reshape(x.shape[:x.ndim - self.in_ndim] + (-1,))


class StackedNet(Sequential):
    """R Sequential networks of one Dense architecture, stacked; ``runs`` is R.

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
            if isinstance(layer, Dense):
                layers.append((name, StackedDense(same)))
            elif isinstance(layer, Flatten):
                layers.append((name, StackedFlatten(shape)))
            elif isinstance(layer, ReLU):
                layers.append((name, ReLU()))
            else:
                raise ValueError(f"layer {name!r} ({type(layer).__name__}) does not stack yet: "
                                 f"Dense, ReLU and Flatten do")
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
