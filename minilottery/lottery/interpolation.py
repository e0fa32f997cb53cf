"""Linear interpolation between two trained networks, and their instability
(Frankle, Dziugaite, Roy & Carbin, ICML 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis").

Two copies of one network (or of one subnetwork: the masks are shared) are trained
from the same W_k with different SGD noise, to W₁ and W₂. Along the line
W(α) = (1 − α) W₁ + α W₂ the error is measured at ``POINTS`` evenly spaced α in
[0, 1]; the instability is how far the error rises above the endpoints. The copies
are *stable* (linearly mode connected) when it is below ``STABLE`` (2 percentage points).
Only forward passes: each point is one evaluation of the interpolated weights.
"""
import numpy as np

from minilottery.backend import asarray
from minilottery.train import evaluate

POINTS = 30
STABLE = 0.02


def alphas(points=POINTS):
    """The α of the path, 0 and 1 included."""
    return np.linspace(0.0, 1.0, points)


def interpolate(w1, w2, alpha):
    """{key: (1 − α) W₁ + α W₂} for every parameter, in W₁'s dtype (α = 0 and 1 give W₁ and W₂ exactly)."""
    return {k: ((1.0 - alpha) * np.asarray(w1[k], np.float64) + alpha * np.asarray(w2[k], np.float64))
            .astype(np.asarray(w1[k]).dtype) for k in w1}


def error_curve(model, w1, w2, splits, points=POINTS, batch_size=1000, prepare=None):
    """{split name: errors at each α} of the model with weights W(α) (its masks stay as installed).

    splits: {name: (x, y)} host or device arrays; prepare(model), if given, runs after the weights
    are set and before the evaluations (recomputing BatchNorm statistics, say).
    """
    splits = {name: tuple(asarray(a) for a in xy) for name, xy in splits.items()}
    curves = {name: [] for name in splits}
    for a in alphas(points):
        model.set_weights(interpolate(w1, w2, a))
        if prepare is not None:
            prepare(model)
        for name, (x, y) in splits.items():
            curves[name].append(1.0 - evaluate(model, x, y, batch_size)[1])       # error = 1 − accuracy
    return {name: np.asarray(c) for name, c in curves.items()}


def batchnorm_layers(model):
    """The layers holding running statistics (BatchNorm), however deep in blocks."""
    leaves = model.walk() if hasattr(model, "walk") else model.layers
    return [layer for _, layer in leaves if "running_mean" in getattr(layer, "buffers", {})]


def recompute_batchnorm(model, batches):
    """Re-estimate every BatchNorm layer's running statistics at the current weights.

    ``batches``: training mini-batches (x only), forwarded in train mode; each layer's
    statistics become the plain average of the batches' statistics (momentum 1/i at the
    i-th batch, PyTorch's momentum=None), whatever they were before.
    """
    layers = batchnorm_layers(model)
    saved = [layer.momentum for layer in layers]
    for i, x in enumerate(batches, 1):
        for layer in layers:
            layer.momentum = 1.0 / i                # running ← (1 − 1/i)·running + (1/i)·batch statistic
        model.forward(asarray(x), train=True)
    for layer, momentum in zip(layers, saved):
        layer.momentum = momentum


def instability(errors):
    """max_α error(α) − (error(0) + error(1)) / 2, a fraction (0.013 = 1.3 points of error)."""
    errors = np.asarray(errors, np.float64)
    return float(errors.max() - 0.5 * (errors[0] + errors[-1]))
