"""Mask criteria of Deconstructing Lottery Tickets (Zhou et al. 2019): a score per weight, keep the highest.

Each criterion is ``fn(w_init, w_final, alive, rng) -> score`` on one layer:
w_init = w_i, the weight the training started from (θ0); w_final = w_f, the
weight after training; alive = bool array of the weights still in the network;
rng = ``numpy.random.Generator`` (only ``random`` draws from it). The score is a
float64 array shaped like the weight; entries that are not alive are never read.
``pruning.prune_by_score`` removes the lowest scores, so a criterion keeps the
highest. Scores are computed in float64 from the weights' exact values, so an
order between float32 weights is never changed by rounding.

Same sign means np.sign(w_i) == np.sign(w_f) (a weight that ends at exactly 0
from a non-zero start has changed sign).
"""
import numpy as np

from minilottery.errors import ConfigError


def _abs(w):
    return np.abs(np.asarray(w, dtype=np.float64))


def _alive_rank(x, alive):
    """Rank of x among the alive entries: the number of alive entries strictly below it (ties share a rank)."""
    rank = np.full(x.shape, -1.0)
    vals = x[alive]
    rank[alive] = np.searchsorted(np.sort(vals), vals, side="left")
    return rank


def large_final(w_init, w_final, alive, rng):
    return _abs(w_final)                                          # s = |w_f|


def small_final(w_init, w_final, alive, rng):
    return -_abs(w_final)                                         # s = −|w_f|


def large_init(w_init, w_final, alive, rng):
    return _abs(w_init)                                           # s = |w_i|


def small_init(w_init, w_final, alive, rng):
    return -_abs(w_init)                                          # s = −|w_i|


def large_init_large_final(w_init, w_final, alive, rng):
    # s = min(rank |w_i|, rank |w_f|) among the alive: keeping s ≥ t keeps what beats both percentiles at level t
    return np.minimum(_alive_rank(_abs(w_init), alive), _alive_rank(_abs(w_final), alive))


def small_init_small_final(w_init, w_final, alive, rng):
    # s = min(rank −|w_i|, rank −|w_f|) among the alive
    return np.minimum(_alive_rank(-_abs(w_init), alive), _alive_rank(-_abs(w_final), alive))


def magnitude_increase(w_init, w_final, alive, rng):
    return _abs(w_final) - _abs(w_init)                           # s = |w_f| − |w_i|


def movement(w_init, w_final, alive, rng):
    return np.abs(np.asarray(w_final, np.float64) - np.asarray(w_init, np.float64))  # s = |w_f − w_i|


def random(w_init, w_final, alive, rng):
    return rng.permutation(np.size(w_final)).reshape(np.shape(w_final)).astype(np.float64)  # s = a random ranking


def _same_sign(w_init, w_final):
    return np.sign(w_init) == np.sign(w_final)


def large_final_same_sign(w_init, w_final, alive, rng):
    # s = |w_f| where sign(w_i) = sign(w_f), else −1: every flipped weight goes before every same-sign one
    return np.where(_same_sign(w_init, w_final), _abs(w_final), -1.0)


def large_final_diff_sign(w_init, w_final, alive, rng):
    # s = |w_f| where sign(w_i) ≠ sign(w_f), else −1: every same-sign weight goes before every flipped one
    return np.where(_same_sign(w_init, w_final), -1.0, _abs(w_final))


CRITERIA = {fn.__name__: fn for fn in (
    large_final, small_final, large_init, small_init, large_init_large_final, small_init_small_final,
    magnitude_increase, movement, random, large_final_same_sign, large_final_diff_sign)}


def get_criterion(name):
    """The criterion called ``name``; ConfigError naming the choices otherwise."""
    if name not in CRITERIA:
        raise ConfigError(f"unknown criterion {name!r}; choose one of {tuple(CRITERIA)}")
    return CRITERIA[name]


def score_masks(criterion, w_init, w_final, masks, rng):
    """{key: score} for every layer of ``masks`` (in sorted key order, so ``random`` draws reproducibly)."""
    fn = get_criterion(criterion)
    return {key: fn(w_init[key], w_final[key], masks[key] != 0, rng) for key in sorted(masks)}
