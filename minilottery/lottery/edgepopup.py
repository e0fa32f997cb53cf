"""edge-popup (Ramanujan et al. 2020): a top-k supermask over frozen random weights.

Every prunable weight W has a real score s; every forward keeps, per layer, the
weights of largest |s|:
    m = 1[|s| among the n − j largest of its layer],   j = ⌊(1 − k)·n⌋
with k the fraction *kept* (the same k for every layer). The count is the
released code's: it prunes j = int((1 − k)·n) with (1 − k)·n a float64 product,
and keeps n − j; so k = 0.9 on n = 100 prunes int(9.999999999999998) = 9 and
keeps 91. Given ``pruned={key: j}`` instead, each layer prunes its own j (per-layer
budgets, e.g. a jackpot's), and prunable layers left out get no scores (dense). Ties in |s| across the cut: the lowest flat index is dropped first
(what a stable ascending sort of |s| that drops its first j entries gives).
Straight-through, through the |·|:
    ∂L/∂s = ∂L/∂W_eff ⊙ W ⊙ sign(s)         (sign(0) = 0)

The weights are frozen at Kaiming normal N(0, 2/fan_in), or the signed Kaiming
constant sign(w)·√(2/fan_in) (``kaiming_weights``); biases frozen at 0. Scores
start U(−1/√fan_in, 1/√fan_in) (PyTorch's kaiming_uniform with a = √5, what the
released code uses); fan_in = in_features (Dense), in_channels·kh·kw (Conv2d).

When masks are recomputed: at the first forward after construction, after a
``backward`` (an optimiser step follows it) or after ``set_weights``; between
those the scores do not change, so evaluations reuse the masks. Scores edited
by hand need ``refresh_masks()``.
"""
import math
import numbers

import numpy as np

from minilottery.backend import asarray, xp_of
from minilottery.errors import ConfigError
from minilottery.lottery.scores import ScoreNet
from minilottery.lottery.select import Near, smallest
from minilottery.nn.init import fans

# The released MNIST example (simple_mnist_example.py): SGD momentum 0.9, lr 0.1, weight decay 5e-4
# on the scores, batch 64, 14 epochs, k = 0.5, cosine annealing stepped once per epoch (TrainConfig's
# cosine is per iteration). The paper's other experiments use weight decay 1e-4.
DEFAULTS = {"optimizer": "momentum", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
            "schedule": "cosine", "batch_size": 64, "epochs": 14, "k": 0.5}


def pruned_count(k, n):
    """j = ⌊(1 − k)·n⌋ in float64, as the released code computes it: how many of n weights go."""
    return int((1.0 - float(k)) * int(n))


def drop_lowest(a, j, near=None):
    """0/1 mask in a's dtype dropping the j entries of lowest a (lowest flat index first among equals);
    ``near``: a select.Near kept from the last call for the same, slightly moved, scores."""
    xp = xp_of(a)
    flat = a.ravel()
    if j <= 0:
        return xp.ones(a.shape, dtype=a.dtype)
    if xp is not np:                                             # on the device: nothing read back
        m = xp.ones(flat.shape, dtype=a.dtype)
        m[xp.argsort(flat, kind="stable")[:j]] = 0               # a stable sort: lowest index first on ties
        return m.reshape(a.shape)
    v = smallest(flat, j - 1, near)                              # the j-th smallest value
    m = xp.empty(flat.shape, dtype=a.dtype)
    xp.greater(flat, v, out=m)                                   # 1[a > v]: v and all below it dropped
    short = flat.size - j - xp.count_nonzero(m)                  # ties at v dropped beyond the j
    if short:
        tied = xp.flatnonzero(flat == v)
        m[tied[tied.size - short:]] = 1                          # kept: the ties of highest flat index
    return m.reshape(a.shape)


def kaiming_weights(model, rng, signed=False):
    """Set every prunable W to N(0, 2/fan_in), or to sign(w)·√(2/fan_in) with w that draw; biases to 0.

    Drawn on the host from ``rng`` (a numpy Generator), layer by layer in the model's order, in
    each layer's dtype. sign(0) counts as +.
    """
    for layer in model.prunable().values():
        w = layer.params["W"]
        std = math.sqrt(2.0 / fans(w.shape)[0])                   # √(2/fan_in)
        draw = rng.normal(0.0, std, size=w.shape)
        if signed:
            c = layer.dtype.type(std)
            draw = np.where(draw < 0, -c, c)                      # sign(w)·√(2/fan_in)
        w[...] = asarray(draw.astype(layer.dtype))
    for _, layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][...] = 0


class EdgePopup(ScoreNet):
    """Top-k of |s| per layer over frozen weights, straight-through gradient through |s|."""

    def __init__(self, model, k, rng, pruned=None):
        """model: a Sequential (weights frozen); k: fraction kept in (0, 1]; rng: Generator for the scores.

        pruned: optional {"layer.W": j}, each layer's own pruned count in place of ⌊(1 − k)·n⌋ (give
        k=None): per-layer budgets such as a jackpot's. Prunable layers absent from it get no scores
        and no mask (dense). Scores are drawn in the model's layer order either way.
        """
        layers = model.prunable()
        if pruned is None:
            if isinstance(k, bool) or not isinstance(k, numbers.Real) or not 0.0 < k <= 1.0:
                raise ConfigError(f"edge-popup k (the fraction kept) must be in (0, 1], got {k!r}")
            keys = [f"{name}.W" for name in layers]
        else:
            if k is not None:
                raise ConfigError("give edge-popup either k or per-layer pruned counts, not both")
            unknown = [key for key in pruned if not key.endswith(".W") or key[:-2] not in layers]
            if unknown:
                raise ConfigError(f"no prunable weight {unknown[0]!r}; prunable weights are "
                                  f"{sorted(model.weight_counts())}")
            keys = [f"{name}.W" for name in layers if f"{name}.W" in pruned]
        scores = {}
        for key in keys:
            layer = layers[key[:-2]]
            shape = layer.params["W"].shape
            bound = 1.0 / math.sqrt(fans(shape)[0])               # s ~ U(−1/√fan_in, 1/√fan_in)
            scores[key] = rng.uniform(-bound, bound, size=shape).astype(layer.dtype)
        self.k = None if k is None else float(k)
        self.pruned = ({key: pruned_count(k, s.size) for key, s in scores.items()} if pruned is None
                       else {key: int(pruned[key]) for key in keys})
        for key, j in self.pruned.items():
            if j >= scores[key].size and pruned is None:
                raise ConfigError(f"edge-popup k = {k} keeps no weight of {key} ({scores[key].size} weights)")
            if not 0 <= j < scores[key].size:
                raise ConfigError(f"edge-popup cannot prune {j} of the {scores[key].size} weights of {key}: "
                                  f"it keeps no weight")
        super().__init__(model, scores)
        self._near = {key: Near() for key in scores}                  # where each layer's threshold last lay
        self.refresh_masks()

    def kept_counts(self):
        """{key: n − ⌊(1 − k)·n⌋}: how many weights every mask keeps."""
        return {key: s.size - self.pruned[key] for key, s in self.scores.items()}

    def refresh_masks(self):
        """Recompute every mask from the current scores: the top-k of |s| per layer."""
        xp = xp_of(next(iter(self.scores.values())))
        self._masks = {key: drop_lowest(xp.abs(s), self.pruned[key], self._near[key])
                       for key, s in self.scores.items()}

    after_step = refresh_masks                                    # the scores moved: new top-k

    def mask(self, key, s, train):
        return self._masks[key]

    def relaxed_grad(self, key, s, g_mask):
        g_mask *= xp_of(s).sign(s)                                # ∂L/∂s = ∂L/∂W_eff ⊙ W ⊙ sign(s)
        return g_mask

    def set_weights(self, scores):
        super().set_weights(scores)
        self.refresh_masks()
