"""Supermasks (Zhou et al. 2019): masks alone, over weights that never train.

Learned supermask: a real score m per weight; every training step samples
    g ~ Bernoulli(σ(m))            (from the run's seeded ``mask`` stream)
    W_eff = W ⊙ g                  (W = θ0, or the signed constant α·sign(θ0))
and, with dynamic weight rescaling (DWR), W_eff = W ⊙ g · (numel / Σg) per layer.
Straight-through: the sample is treated as σ(m) in the backward,
    ∂L/∂m = (∂L/∂W_eff ⊙ W · c) ⊙ σ(m)(1 − σ(m)),   c = numel/Σg with DWR, else 1.
Evaluation (``train=False``) uses one of: a sampled mask (one sample per
evaluation point, from a stream of its own, so evaluating never changes
training), the threshold σ(m) > 0.5, or — in :func:`evaluate_supermask` —
the mean over several sampled masks, as the paper's code reports.

Supermask at initialisation: the one-shot ``large_final_same_sign`` mask of a
trained dense network, applied to θ0 or to the signed constant, evaluated with
no training at all (:func:`at_init_masks`).
"""
import numpy as np

from minilottery.backend import asarray, device_rng, expit, to_numpy, xp_of
from minilottery.errors import ConfigError
from minilottery.lottery.actions import signed_constant
from minilottery.lottery.criteria import score_masks
from minilottery.lottery.pruning import ones_masks, prune_by_score
from minilottery.lottery.scores import ScoreNet
from minilottery.rng import uniform
from minilottery.train import evaluate

WEIGHTS = ("theta0", "signed_constant")   # what the frozen weights are


sigmoid = expit   # σ(a) = 1 / (1 + e^(−a)) on either backend


def frozen_weights(theta0, how):
    """{"layer.W": W} the supermask masks: θ0 itself, or α·sign(θ0) with α the layer's θ0 std."""
    if how not in WEIGHTS:
        raise ConfigError(f"unknown supermask weights {how!r}; choose one of {WEIGHTS}")
    if how == "theta0":
        return {k: v.copy() for k, v in theta0.items()}
    return {k: signed_constant(v, None, None) for k, v in theta0.items()}


def install_weights(model, theta0, how):
    """Set the model to θ0 (biases included) with its prunable weights replaced by ``frozen_weights``."""
    model.set_weights(theta0)
    for key, w in frozen_weights({k: v for k, v in theta0.items() if k in model.weight_counts()}, how).items():
        model.params()[key][...] = asarray(w)


class LearnedSupermask(ScoreNet):
    """Bernoulli(σ(m)) masks with the straight-through gradient, optionally with DWR."""

    def __init__(self, model, mask_rng, score_init=0.0, dwr=False):
        w = {k: layer.params["W"] for k, layer in
             ((f"{n}.W", layer) for n, layer in model.prunable().items())}
        super().__init__(model, {k: np.full(v.shape, score_init, dtype=v.dtype) for k, v in w.items()})
        self.rng, self.dwr, self.eval_mode = device_rng(mask_rng), bool(dwr), "sample"  # drawn where s lives; evaluate_supermask sets the mode
        self.eval_rng = device_rng(np.random.default_rng(mask_rng.integers(2 ** 63)))  # evaluation samples, apart
        self._p, self._scale, self._eval_masks = {}, {}, {}

    def mask(self, key, s, train):
        if not train and key in self._eval_masks:
            return self._eval_masks[key]                              # the same sample for a whole evaluation
        p = sigmoid(s)                                                # σ(m)
        if train or self.eval_mode == "sample":
            g = uniform(self.rng if train else self.eval_rng, s.shape, s.dtype)  # u ~ U[0, 1)
            xp_of(g).less(g, p, out=g)                                # g = 1[u < σ(m)] ~ Bernoulli(σ(m)), in place
        else:
            g = (p > 0.5).astype(s.dtype)                             # threshold
        scale = 1.0
        if self.dwr:                                                  # numel / max(Σg, 1), read by no one
            scale = (g.size / xp_of(g).maximum(g.sum(dtype=np.float64), 1.0)).astype(s.dtype)
            g *= scale
        if train:
            self._p[key], self._scale[key] = p, scale                 # what this step's backward needs
        else:
            self._eval_masks[key] = g
        return g

    def relaxed_grad(self, key, s, g_mask):
        p = self._p[key]
        dp = 1 - p
        dp *= p                                                       # σ'(m) = σ(m)(1 − σ(m))
        g_mask *= dp                                                  # ∂L/∂m = ∂L/∂g̃ ⊙ σ(m)(1 − σ(m))
        return g_mask * self._scale[key] if self.dwr else g_mask

    def backward(self, dy, input_grad=False):
        self.new_eval_sample()                                        # scores change: evaluate afresh
        return super().backward(dy, input_grad)

    def set_weights(self, scores):
        super().set_weights(scores)
        self.new_eval_sample()

    def new_eval_sample(self):
        self._eval_masks = {}

    def expected_density(self):
        """mean σ(m) over every weight: the expected fraction kept."""
        p = [to_numpy(sigmoid(s)) for s in self.scores.values()]
        return float(sum(a.sum(dtype=np.float64) for a in p) / sum(a.size for a in p))


def evaluate_supermask(net, x, y, samples=10, batch_size=100):
    """Test accuracy over ``samples`` sampled masks (mean, min, max), the thresholded mask's, densities."""
    mode, accs, dens = net.eval_mode, [], []
    net.eval_mode = "sample"
    for _ in range(samples):
        net.new_eval_sample()
        accs.append(evaluate(net, x, y, batch_size)[1])
        dens.append(net.density()[1])
    net.eval_mode = "threshold"
    net.new_eval_sample()
    thr = evaluate(net, x, y, batch_size)[1]
    per_layer, thr_density = net.density()
    net.eval_mode = mode
    net.new_eval_sample()
    return {"test_acc": float(np.mean(accs)), "test_acc_min": float(np.min(accs)),
            "test_acc_max": float(np.max(accs)), "threshold_test_acc": float(thr),
            "sampled_density": float(np.mean(dens)), "threshold_density": thr_density,
            "threshold_density_per_layer": per_layer, "expected_density": net.expected_density()}


def at_init_masks(theta0, final, fractions, rng, criterion="large_final_same_sign"):
    """One-shot masks from a trained dense run, per layer keeping ``fractions[key]`` of the weights.

    theta0, final: {"layer.W": host array}; the criterion scores (θ0, θ_final); exact counts
    round(f · n) kept per layer, ties broken by ``rng``.
    """
    ones = ones_masks(theta0)
    scores = score_masks(criterion, theta0, final, ones, rng)
    counts = {k: m.size - int(round(fractions[k] * m.size)) for k, m in ones.items()}
    return prune_by_score(scores, ones, counts, rng)
