"""Pruning at initialisation: a score per weight computed before any training, then global top-k.

The scores (each keeps its highest entries; ``model`` is a float64 network the
weights are copied into, in evaluation mode, as the SynFlow code scores by default):
- SNIP (Lee et al. 2019): |∂L/∂m| at m = 1 on a batch;
- GraSP (Wang, Zhang & Grosse 2020): θ ⊙ Hg, the Hessian-vector product by central
  differences of gradients of the loss of logits / T (T = 200);
- SynFlow (Tanaka et al. 2020): |θ ⊙ ∂R/∂θ|, R the summed output of the network with
  |θ| on an all-ones input; data-free; iterated over 100 rounds on an exponential schedule;
- magnitude at initialisation |θ0|, and random.
:func:`prune_at_init` keeps the global top-k of a score (over every prunable weight
together), in one shot or, for SynFlow, over rounds; ``invert`` keeps the lowest
instead (the sanity check of Frankle et al. 2021). Weights and masks are host
dicts keyed like the model's weights (``"fc1.W"``); scores are float64 host arrays.
"""
import numpy as np

from minilottery.backend import asarray, to_numpy, xp_of
from minilottery.errors import ConfigError
from minilottery.lottery.pruning import ones_masks, prune_by_score
from minilottery.nn.losses import softmax_cross_entropy

GRASP_TEMPERATURE = 200.0
SYNFLOW_ROUNDS = 100


def _load(model, weights, masks):
    """Copy ``weights`` into the float64 ``model`` and install ``masks``; the prunable keys."""
    if model.params()[next(iter(masks))].dtype != np.float64:
        raise ValueError("pruning-at-init scores are computed in a float64 model (build_model(..., dtype=float64))")
    model.set_weights(weights)
    model.set_masks(masks)
    return sorted(masks)


def _weight_grads(model, keys):
    return {k: to_numpy(model.grads()[k]).copy() for k in keys}


def loss_grads(model, x, y, temperature=1.0):
    """(L, {key: ∂L/∂W}) of the loaded model on (x, y); L = cross-entropy of logits / T."""
    logits = model.forward(asarray(x, dtype=np.float64), train=False)
    t = np.float64(temperature)
    loss, dz = softmax_cross_entropy(logits / t, asarray(y))
    model.backward(dz / t, input_grad=False)
    return float(loss), _weight_grads(model, model.masks())


def snip(model, weights, masks, x, y, rng=None):
    """SNIP scores on the batch (x, y)."""
    keys = _load(model, weights, masks)
    _, g = loss_grads(model, x, y)
    # s = |∂L/∂m| = |∂L/∂W_eff ⊙ θ| at m = 1 (W_eff = θ ⊙ m), i.e. |g ⊙ θ|
    return {k: np.abs(g[k] * np.asarray(weights[k], np.float64)) for k in keys}


def hessian_vector_product(model, weights, masks, x, y, v, temperature=1.0, h=1e-5):
    """H v of the loss over the prunable weights, by central differences of gradients (float64).

    Biases stay at their values; v is {key: array}. Returns {key: Hv}.
    """
    keys = _load(model, weights, masks)
    norm = np.sqrt(sum(float(np.sum(np.square(v[k]))) for k in keys))
    if norm == 0:
        return {k: np.zeros_like(v[k], dtype=np.float64) for k in keys}
    grads = []
    for sign in (1.0, -1.0):                 # θ ± h v/‖v‖
        moved = dict(weights)
        moved.update({k: np.asarray(weights[k], np.float64) + sign * h * v[k] / norm for k in keys})
        model.set_weights(moved)
        grads.append(loss_grads(model, x, y, temperature)[1])
    model.set_weights(weights)
    # Hv ≈ ‖v‖ · [∇L(θ + h v̂) − ∇L(θ − h v̂)] / 2h,  v̂ = v/‖v‖
    return {k: norm * (grads[0][k] - grads[1][k]) / (2 * h) for k in keys}


def grasp(model, weights, masks, x, y, rng=None, temperature=GRASP_TEMPERATURE):
    """GraSP scores on the batch (x, y)."""
    keys = _load(model, weights, masks)
    _, g = loss_grads(model, x, y, temperature)
    hg = hessian_vector_product(model, weights, masks, x, y, g, temperature)
    # GraSP's S = −θ ⊙ Hg, whose largest entries it removes; so the score kept highest is −S = θ ⊙ Hg
    return {k: np.asarray(weights[k], np.float64) * hg[k] for k in keys}


def synflow(model, weights, masks, x=None, y=None, rng=None):
    """SynFlow scores of the masked network (no data)."""
    keys = _load(model, {k: np.abs(np.asarray(w, np.float64)) for k, w in weights.items()}, masks)
    ones = asarray(np.ones((1,) + model.input_shape))
    out = model.forward(ones, train=False)           # R = 1ᵀ f(1; |θ|): every path's product of |θ|
    model.backward(xp_of(out).ones_like(out), input_grad=False)   # ∂R/∂out = 1
    g = _weight_grads(model, keys)
    # s = |θ ⊙ ∂R/∂θ| (∂R/∂θ at |θ|, zero where pruned)
    return {k: np.abs(np.asarray(weights[k], np.float64) * g[k]) for k in keys}


def magnitude(model, weights, masks, x=None, y=None, rng=None):
    return {k: np.abs(np.asarray(weights[k], np.float64)) for k in sorted(masks)}   # s = |θ0|


def random(model, weights, masks, x=None, y=None, rng=None):
    return {k: rng.random(masks[k].shape) for k in sorted(masks)}   # s ~ U(0, 1): a random ranking


SCORES = {fn.__name__: fn for fn in (snip, grasp, synflow, magnitude, random)}


def keep_top(scores, masks, keep, rng=None):
    """Global top-k: of every weight still alive in ``masks``, keep the ``keep`` of highest score.

    Ties across the cut are broken by ``rng`` (or lowest flat index). Returns new masks.
    """
    keys = sorted(masks)
    flat_s = np.concatenate([np.asarray(scores[k], np.float64).ravel() for k in keys])
    flat_m = np.concatenate([np.asarray(masks[k]).ravel() for k in keys])
    alive = int(np.count_nonzero(flat_m))
    if not 0 <= keep <= alive:
        raise ConfigError(f"cannot keep {keep} weights: {alive} remain")
    flat = prune_by_score({"all": flat_s}, {"all": flat_m}, {"all": alive - keep}, rng)["all"]
    out, start = {}, 0
    for k in keys:
        n = masks[k].size
        out[k] = flat[start:start + n].reshape(masks[k].shape).astype(masks[k].dtype)
        start += n
    return out


def prune_at_init(method, model, weights, density, x=None, y=None, rng=None, invert=False, rounds=None):
    """Masks keeping the fraction ``density`` of all prunable weights by ``method``'s score.

    rounds: 1 (one shot) by default, SYNFLOW_ROUNDS for synflow; over rounds e = 0..E−1
    the kept fraction falls as density^((e + 1)/E) and each round rescores the masked network.
    invert: keep the lowest scores instead. rng: random scores and ties.
    """
    if method not in SCORES:
        raise ConfigError(f"unknown pruning-at-init method {method!r}; choose one of {tuple(SCORES)}")
    if not 0.0 < density <= 1.0:
        raise ConfigError(f"density must be in (0, 1], got {density}")
    keys = sorted(model.weight_counts())
    masks = ones_masks({k: np.asarray(weights[k]) for k in keys})
    total = sum(m.size for m in masks.values())
    rounds = rounds or (SYNFLOW_ROUNDS if method == "synflow" else 1)
    for e in range(rounds):
        keep = int(round(density ** ((e + 1) / rounds) * total))   # exponential schedule d^((e+1)/E)
        scores = SCORES[method](model, weights, masks, x, y, rng)
        if invert:
            scores = {k: -s for k, s in scores.items()}
        masks = keep_top(scores, masks, keep, rng)
    model.set_masks({k: None for k in keys})
    return masks
