"""Score-trained masks over frozen weights: the common part of supermasks, edge-popup and jackpots.

A ``ScoreNet`` wraps a network whose weights and biases never change. Each
prunable weight W has a real score array s; every forward derives the mask
m = mask(s) (a Bernoulli sample, a top-k, a swap-ruled jackpot mask),
installs it (the layer computes W_eff = W ⊙ m) and runs the network. The
backward is the network's own; the layer leaves ∂L/∂W_eff in
``grad_effective``, and the straight-through estimator turns it into the
scores' gradient, treating the discrete mask as a differentiable function of s:
    ∂L/∂s = ∂L/∂W_eff ⊙ W ⊙ ∂m̃/∂s        (m̃: the relaxation a subclass names)
It exposes the trainer's interface with the *scores* as its parameters
(``params()``, ``grads()``, ``frozen()``, ``get_weights()``, ``after_step()``),
so ``train`` and the optimisers are reused unchanged.
"""
from minilottery.backend import asarray, to_numpy
from minilottery.errors import ConfigError


class ScoreNet:
    """Frozen network + trainable scores; subclasses define ``mask`` and ``relaxed_grad``."""

    def __init__(self, model, scores):
        """model: a Sequential (its weights are frozen); scores: {"layer.W": host or device array}."""
        layers = model.prunable()
        for key, s in scores.items():
            name = key[:-2]
            if name not in layers or tuple(s.shape) != tuple(layers[name].params["W"].shape):
                raise ConfigError(f"score {key} {tuple(s.shape)} does not match a prunable weight of the model")
        self.model, self.output_shape = model, model.output_shape
        self.layers = {key: layers[key[:-2]] for key in scores}
        for layer in self.layers.values():
            layer.trains_weight = False                               # frozen: no ∂L/∂W is made
        self.scores = {k: asarray(s, dtype=self.layers[k].dtype).copy() for k, s in scores.items()}
        self._grads = {}
        self.masks_now = {}

    # -- what a subclass says ------------------------------------------------
    def mask(self, key, s, train):
        """The mask of weight ``key`` from its scores (a device array shaped like W)."""
        raise NotImplementedError

    def relaxed_grad(self, key, s, g_mask):
        """∂L/∂s from ∂L/∂m̃ = ∂L/∂W_eff ⊙ W (straight-through); ``g_mask`` is the caller's to overwrite."""
        raise NotImplementedError

    # -- the trainer's interface ----------------------------------------------
    def forward(self, x, train=False):
        self.masks_now = {k: self.mask(k, s, train) for k, s in self.scores.items()}
        for key, m in self.masks_now.items():
            self.layers[key].use_mask(m)                              # not copied: made anew, or unchanged
        return self.model.forward(x, train)

    __call__ = forward

    def backward(self, dy, input_grad=False):
        dx = self.model.backward(dy, input_grad)
        for key, s in self.scores.items():
            layer = self.layers[key]
            g_mask = layer.grad_effective * layer.params["W"]          # ∂L/∂m̃ = ∂L/∂W_eff ⊙ W
            self._grads[key] = self.relaxed_grad(key, s, g_mask)
        return dx

    def after_step(self):
        """What the optimiser step changes besides the scores: nothing here (the mask is drawn from the
        scores in the next forward); edge-popup and jackpots recompute their masks."""

    def params(self):
        return self.scores

    def grads(self):
        return self._grads

    def frozen(self):
        return {}                                                    # every score trains

    def get_weights(self):
        """Host copies of the scores (what a snapshot of this network is)."""
        return {k: to_numpy(v).copy() for k, v in self.scores.items()}

    def set_weights(self, scores):
        for k, v in self.scores.items():
            v[...] = asarray(scores[k], dtype=v.dtype)

    def density(self, masks=None):
        """({key: kept fraction}, overall kept fraction) of ``masks`` (default: the last forward's)."""
        masks = self.masks_now if masks is None else masks
        kept = {k: float(to_numpy(m != 0).sum()) for k, m in masks.items()}
        sizes = {k: m.size for k, m in masks.items()}
        return {k: kept[k] / sizes[k] for k in kept}, sum(kept.values()) / sum(sizes.values())
