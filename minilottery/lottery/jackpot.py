"""Lottery Jackpots (Zhang et al. 2021): a mask searched over a frozen pre-trained network.

Budgets (``layer_budgets``): one global magnitude threshold over every prunable
layer except the output layer (the classifier stays dense unless
``include_classifier``). Rounding, as the released code: of the N searched
weights ⌊N·(1 − sparsity)⌋ are kept (a float64 product, floored), so
P = N − ⌊N·(1 − sparsity)⌋ go: the P smallest |w| over the searched layers, in
layer order, ties at the threshold broken by layer order then flat index (the
released code keeps every weight tied with the threshold, and re-derives each
count through a float rate; here the counts are exact and add up to P). Layer l
loses p_l of them, for the whole search: counts never move between layers.

The search (``Jackpot``): scores 1.0 for magnitude-kept and 0.99 for
magnitude-pruned weights (so the search starts exactly at the magnitude-pruned
network); the forward uses the current mask m (W_eff = W ⊙ m); straight-through
    ∂L/∂s = ∂L/∂W_eff ⊙ W;
weights and biases never change. After every optimiser step, per layer, the
released code's swap rule (``swap_update``; the paper's exact "short
restriction" criterion is not in the released code):
    τ = the p_l-th smallest score
    A = pruned weights scoring > τ,  D = kept weights scoring ≤ τ
    |A| = |D| > 0: A come in, D go out;  else the layer is left as it is.
(The released code swaps a ceil(rate·|A|) share, with rate = ⌈(1 − epoch/epochs)⁴⌉ = 1 at every
training epoch: all of A and D.) Layers without a budget (the classifier by default) have no
scores and no mask: dense, with their pre-trained weights frozen like the rest.
With no ties at τ this is the top-(n_l − p_l) of the scores; with ties it can
leave a layer unchanged (the mask is then not a function of the scores alone,
which is why a snapshot, ``get_weights``, holds the masks too). The update is
applied lazily, at the first forward after a ``backward`` (an optimiser step
follows every backward in ``train``), so the evaluation after step t already
sees the mask updated after step t. Applying it again without a step changes
nothing (an updated mask is a fixed point), so scores edited by hand need only
``update_masks()``.
"""
import numbers
from dataclasses import dataclass

import numpy as np

from minilottery.backend import asarray, to_numpy, xp_of
from minilottery.errors import ConfigError
from minilottery.lottery.pruning import ones_masks, prune_by_score
from minilottery.lottery.scores import ScoreNet

# The released code's CIFAR configs: SGD momentum 0.9, lr 0.1 with cosine annealing (per epoch),
# weight decay 5e-4 on the scores, batch 256, 30 (or 160) epochs; scores 1 / 0.99.
DEFAULTS = {"optimizer": "momentum", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
            "schedule": "cosine", "batch_size": 256, "epochs": 30, "kept_score": 1.0, "pruned_score": 0.99}
MASK_SUFFIX = ".mask"   # a snapshot's key for the mask of "layer.W": "layer.W.mask"


@dataclass(frozen=True)
class Budgets:
    """Per-layer pruned counts from one global magnitude threshold."""
    pruned: dict          # {key: p_l} for the searched layers
    sizes: dict           # {key: n_l} for every prunable layer, the dense ones included
    dense: tuple          # prunable layers kept dense (the classifier by default)
    threshold: float      # |w| of the last weight that goes (nan when none goes)
    sparsity: float       # Σ p_l / Σ n_l over the searched layers
    sparsity_all: float   # Σ p_l / Σ n over every prunable layer (dense classifier included)


def layer_budgets(weights, sparsity, include_classifier=False, kinds=None):
    """Budgets for ``sparsity`` (fraction pruned) of the searched layers; rounding in the module docstring.

    weights: {key: host or device array} holding every prunable weight (biases are ignored when
    kinds is given); kinds: ``Sequential.weight_kinds()`` ({key: "conv" | "fc" | "output"}), needed
    to find the classifier; without it every array of ``weights`` is searched, which needs
    ``include_classifier=True``.
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real) or not 0.0 <= sparsity < 1.0:
        raise ConfigError(f"jackpot sparsity must be in [0, 1), got {sparsity!r}")
    if kinds is None and not include_classifier:
        raise ConfigError("layer_budgets needs kinds=model.weight_kinds() to keep the classifier dense "
                          "(or include_classifier=True to search every weight given)")
    kinds = {key: "fc" for key in weights} if kinds is None else dict(kinds)
    for key in kinds:
        if key not in weights:
            raise ConfigError(f"weights lack the prunable weight {key!r}")
    searched = [k for k, kind in kinds.items() if include_classifier or kind != "output"]
    dense = tuple(k for k in kinds if k not in searched)
    if not searched:
        raise ConfigError("no prunable layer to search besides the classifier")
    sizes = {k: int(np.size(weights[k])) for k in kinds}
    mags = np.concatenate([np.abs(to_numpy(weights[k])).ravel() for k in searched])
    n = mags.size
    goes = n - int(n * (1.0 - float(sparsity)))                    # P = N − ⌊N·(1 − sparsity)⌋
    order = np.argsort(mags, kind="stable")[:goes]                 # the P smallest |w|, layer order on ties
    layer_of = np.repeat(np.arange(len(searched)), [sizes[k] for k in searched])
    per_layer = np.bincount(layer_of[order], minlength=len(searched))
    pruned = {k: int(c) for k, c in zip(searched, per_layer)}
    for k, c in pruned.items():
        if c >= sizes[k]:
            raise ConfigError(f"sparsity {sparsity} would prune every weight of {k}; use a lower sparsity")
    threshold = float(mags[order[-1]]) if goes else float("nan")
    return Budgets(pruned=pruned, sizes=sizes, dense=dense, threshold=threshold,
                   sparsity=goes / n, sparsity_all=goes / sum(sizes.values()))


def _counts(budgets):
    return dict(budgets.pruned) if isinstance(budgets, Budgets) else {k: int(v) for k, v in budgets.items()}


def magnitude_masks(weights, budgets):
    """{key: host 0/1 mask} per searched layer, its p_l smallest |w| pruned (lowest flat index first on ties).

    budgets: a ``Budgets`` or {key: p_l}. Equal to the global selection ``layer_budgets`` made.
    """
    counts = _counts(budgets)
    host = {k: to_numpy(weights[k]) for k in counts}
    return prune_by_score({k: np.abs(w) for k, w in host.items()}, ones_masks(host), counts)


def swap_update(scores, mask, pruned_count):
    """The released code's swap rule on one layer: (new mask, number swapped in); inputs are not changed.

    scores, mask: host or device arrays of one shape (mask 0/1 with exactly ``pruned_count`` zeros).
    """
    xp, p = xp_of(scores), int(pruned_count)
    if tuple(scores.shape) != tuple(mask.shape):
        raise ConfigError(f"scores {tuple(scores.shape)} and mask {tuple(mask.shape)} differ in shape")
    if xp is not np:
        return _swap_on_device(xp, scores, mask, p)
    out = mask.copy()
    flat, m = scores.ravel(), out.reshape(-1)
    off = m == 0
    if int(off.sum()) != p:
        raise ConfigError(f"the mask prunes {int(off.sum())} weights, its budget is {p}")
    if p == 0 or p == m.size:
        return out, 0
    tau = xp.partition(flat, p - 1)[p - 1]                         # τ = the p-th smallest score
    come_in = off & (flat > tau)                                   # A: pruned, now above τ
    go_out = ~off & (flat <= tau)                                  # D: kept, now at or below τ
    a, d = int(come_in.sum()), int(go_out.sum())
    if a != d or a == 0:
        return out, 0                                              # |A| ≠ |D| or nothing moves: unchanged
    m[come_in] = 1
    m[go_out] = 0
    return out, a


def _swap_on_device(xp, scores, mask, p):
    """swap_update with nothing read back: the rule's decision |A| = |D| > 0 stays on the device, and
    so does the count swapped in (a 0-d array). The budget is kept by construction, not checked."""
    if p == 0 or p == mask.size:
        return mask.copy(), 0
    flat, m = scores.ravel(), mask.reshape(-1)
    off = m == 0
    tau = xp.partition(flat, p - 1)[p - 1]                         # τ = the p-th smallest score
    come_in, go_out = off & (flat > tau), ~off & (flat <= tau)     # A and D, as on the host
    a = come_in.sum()
    swap = (a == go_out.sum()) & (a > 0)                           # |A| = |D| > 0, a device boolean
    out = xp.where(swap & come_in, 1, xp.where(swap & go_out, 0, m)).astype(mask.dtype)
    return out.reshape(mask.shape), a * swap


class Jackpot(ScoreNet):
    """Score search from the magnitude-pruned network, masks moved by the released code's swap rule."""

    def __init__(self, model, budgets, masks=None, kept_score=1.0, pruned_score=0.99):
        """model: a Sequential holding the pre-trained weights (frozen); budgets: ``Budgets`` or {key: p_l};
        masks: the start, default ``magnitude_masks`` of the model's weights; scores kept_score where the
        start keeps a weight, pruned_score where it prunes one."""
        if not kept_score > pruned_score:
            raise ConfigError(f"kept score {kept_score} must exceed pruned score {pruned_score}")
        counts = _counts(budgets)
        layers = model.prunable()
        for key in counts:
            if key[:-2] not in layers or not key.endswith(".W"):
                raise ConfigError(f"no prunable weight {key!r}; prunable weights are {sorted(model.weight_counts())}")
        if masks is None:
            masks = magnitude_masks({k: layers[k[:-2]].params["W"] for k in counts}, counts)
        starts = {k: np.asarray(to_numpy(masks[k]) != 0) for k in counts}
        for key, keep in starts.items():
            if keep.size - int(keep.sum()) != counts[key]:
                raise ConfigError(f"the start mask of {key} prunes {keep.size - int(keep.sum())} weights, "
                                  f"its budget is {counts[key]}")
        dtype = {k: layers[k[:-2]].dtype for k in counts}
        super().__init__(model, {k: np.where(keep, kept_score, pruned_score).astype(dtype[k])
                                 for k, keep in starts.items()})
        self.pruned = counts
        self.current = {k: asarray(keep.astype(dtype[k])) for k, keep in starts.items()}
        self.last_swaps = {k: 0 for k in counts}                   # swapped in by the last update, per layer

    def update_masks(self):
        """Apply the swap rule to every layer now (a no-op on an updated mask whose scores have not moved)."""
        for key, s in self.scores.items():
            self.current[key], self.last_swaps[key] = swap_update(s, self.current[key], self.pruned[key])

    after_step = update_masks                                       # the scores moved: the swap rule

    def mask(self, key, s, train):
        return self.current[key]

    def relaxed_grad(self, key, s, g_mask):
        return g_mask                                               # ∂L/∂s = ∂L/∂W_eff ⊙ W

    def masks(self):
        """Host copies of the current masks {key: 0/1 array}."""
        return {k: to_numpy(m).copy() for k, m in self.current.items()}

    def get_weights(self):
        """Host copies of the scores and of the masks ("layer.W.mask"): the search's whole state."""
        out = super().get_weights()
        out.update({k + MASK_SUFFIX: m for k, m in self.masks().items()})
        return out

    def set_weights(self, state):
        """Restore scores and masks from ``get_weights()`` (both are needed: the masks depend on the path)."""
        missing = [k + MASK_SUFFIX for k in self.scores if k + MASK_SUFFIX not in state]
        if missing:
            raise ConfigError(f"a jackpot snapshot holds its masks too; {missing[0]!r} is missing")
        for key in self.scores:
            keep = np.asarray(to_numpy(state[key + MASK_SUFFIX]) != 0)
            if keep.size - int(keep.sum()) != self.pruned[key]:
                raise ConfigError(f"the snapshot's mask of {key} breaks its budget of {self.pruned[key]}")
        super().set_weights(state)
        for key, m in self.current.items():
            m[...] = asarray(to_numpy(state[key + MASK_SUFFIX]) != 0, dtype=m.dtype)
