"""Sequential: named layers in order, walking parameters, gradients and masks.

Parameters are addressed as ``"layer.key"`` (``"fc1.W"``, ``"conv2.b"``); a layer
with ``children`` (a residual block) is walked into, ``"block.child.key"``. Only
the weights ``W`` of prunable layers carry masks; biases never do. A layer's
``buffers`` (BatchNorm's running statistics) are state, not parameters: the
optimiser never sees them (``params()``), but ``get_weights()`` and
``set_weights()`` carry them with the parameters, so every snapshot and reset
holds them.

What the trainer needs of a network (Sequential here; score-trained networks in
``lottery/`` expose the same): ``forward``, ``backward``, ``params()`` and
``grads()`` (the arrays the optimiser steps), ``frozen()`` (masks whose zeros
the optimiser must leave untouched) and ``get_weights()``.
"""
import numpy as np

from minilottery.backend import asarray, to_numpy
from minilottery.nn.layers import Prunable


class Sequential:
    def __init__(self, layers, input_shape):
        """layers: list of (name, layer); input_shape: one example's (C, H, W) or (F,)."""
        names = [n for n, _ in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique, got {names}")
        self.layers = list(layers)
        self.input_shape = tuple(input_shape)
        shape = self.input_shape
        for name, layer in self.layers:                      # validate the whole chain now
            try:
                shape = layer.output_shape(shape)
            except ValueError as e:
                raise ValueError(f"layer {name!r}: {e}") from None
        self.output_shape = shape

    def check_input(self, x):
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"model expected input of shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")

    def forward(self, x, train=False):
        self.check_input(x)
        for _, layer in self.layers:
            x = layer.forward(x, train)
        return x

    __call__ = forward

    def after_step(self):
        """What an optimiser step changes besides the parameters: nothing, for a plain network
        (score-trained masks recompute theirs here, lottery/scores.py)."""

    def backward(self, dy, input_grad=True):
        """Backpropagate dL/dy; returns dL/dx of the network input.

        With ``input_grad=False`` (training: nothing needs the gradient of the data)
        the first layer with parameters makes only its parameter gradients, the
        layers before it are skipped, and None is returned.
        """
        first = 0 if input_grad else self._first_with_params()
        for i in range(len(self.layers) - 1, first - 1, -1):
            layer = self.layers[i][1]
            if i == first and not input_grad and isinstance(layer, Prunable):
                return layer.backward(dy, input_grad=False)
            dy = layer.backward(dy)
        return dy if input_grad else None

    def _first_with_params(self):
        """Index of the first layer with parameters (the layers before it need no backward)."""
        return next((i for i, (n, layer) in enumerate(self.layers)
                     if any(leaf.params for _, leaf in _walk(n, layer))), len(self.layers))

    # -- walking -----------------------------------------------------------
    def walk(self):
        """(qualified name, layer) of every layer that holds no other layers, in order."""
        return [pair for n, l in self.layers for pair in _walk(n, l)]

    def prunable(self):
        """{layer name: layer} for layers whose weight can be masked, in order."""
        return {n: l for n, l in self.walk() if isinstance(l, Prunable)}

    def params(self):
        """{"layer.key": array}: live references, updated in place by optimisers."""
        return {f"{n}.{k}": v for n, l in self.walk() for k, v in l.params.items()}

    def grads(self):
        return {f"{n}.{k}": v for n, l in self.walk() for k, v in l.grads.items()}

    def buffers(self):
        """{"layer.key": array}: live state that is not trained (BatchNorm running statistics)."""
        return {f"{n}.{k}": v for n, l in self.walk() for k, v in getattr(l, "buffers", {}).items()}

    def masks(self):
        """{"layer.W": mask} for every prunable layer that has a mask installed."""
        return {f"{n}.W": l.mask for n, l in self.prunable().items() if l.mask is not None}

    def frozen(self):
        """{"layer.W": what the optimiser freezes}: a layer's keep bits where it has them (it made
        its ∂L/∂W with them, +0 wherever they are 0, so no clear is due), else its mask."""
        return {f"{n}.W": l.mask if l.keep is None else l.keep
                for n, l in self.prunable().items() if l.mask is not None}

    def set_masks(self, masks, fills=None):
        """Install masks {"layer.W": array} (None removes one) and optional frozen fills.

        Never changes a parameter: what pruned weights become is the caller's choice.
        """
        layers, fills = self.prunable(), fills or {}
        for key in set(masks) | set(fills):
            name = key[:-2] if key.endswith(".W") else key
            if name not in layers:
                raise KeyError(f"no prunable layer {name!r}; prunable layers: {list(layers)}")
        lone = sorted(k for k in fills if masks.get(k) is None)
        if lone:
            raise ValueError(f"fills {lone} come without a mask (F shows only where m = 0)")
        for key, m in masks.items():
            layers[key[:-2] if key.endswith(".W") else key].set_mask(m, fills.get(key))

    def weight_kinds(self):
        """{"layer.W": "conv" | "fc" | "output"}: what each prunable weight is, for pruning rates."""
        return {f"{n}.W": "output" if l.output else l.kind for n, l in self.prunable().items()}

    # -- weights in and out (always by copy) ---------------------------------
    def get_weights(self):
        """Host copies of every parameter and buffer, {"layer.key": np.ndarray}."""
        return {k: np.array(to_numpy(v), copy=True) for k, v in {**self.params(), **self.buffers()}.items()}

    def set_weights(self, weights):
        """Copy values into the live parameters and buffers (never aliasing the caller's arrays)."""
        params = {**self.params(), **self.buffers()}
        missing = set(params) - set(weights)
        if missing:
            raise KeyError(f"weights lack {sorted(missing)}")
        for k, v in params.items():
            if tuple(weights[k].shape) != tuple(v.shape):
                raise ValueError(f"{k}: shape {tuple(weights[k].shape)} does not match {tuple(v.shape)}")
            v[...] = asarray(weights[k], dtype=v.dtype)

    def weight_counts(self):
        """{"layer.W": number of weights} for prunable layers (biases excluded)."""
        return {f"{n}.W": int(l.params["W"].size) for n, l in self.prunable().items()}

    def __repr__(self):
        body = "\n".join(f"  ({n}): {l!r}" for n, l in self.layers)
        return f"Sequential(input {self.input_shape}\n{body}\n)"


def _walk(name, layer):
    """(qualified name, leaf layer) pairs of ``layer``, entering the ``children`` of a block."""
    children = getattr(layer, "children", None)
    if children is None:
        return [(name, layer)]
    return [pair for n, child in children for pair in _walk(f"{name}.{n}", child)]
