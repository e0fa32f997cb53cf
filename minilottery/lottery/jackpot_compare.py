"""What a jackpot is compared with (Lottery Jackpots, Zhang et al. 2021): the masks of existing
criteria at the jackpot's budgets, their overlap with the jackpot mask, and the search cost of
starting from magnitude pruning.

Criterion masks (``criterion_masks``): the Deconstructing criteria as scores (``criteria.score_masks``,
w_init = θ0, w_final = the pre-trained weights), each layer cut to the jackpot's own pruned count p_l
(``pruning.prune_by_score``, ties at the cut broken by the seeded rng), so every mask keeps exactly
what the jackpot keeps, layer by layer:
    magnitude   s = |w_f|   (the search's start, ``jackpot.magnitude_masks``)
    random      s = a random ranking (the chance level, E[overlap_l] = 1 − p_l/n_l)
    large_init  s = |w_i|
    movement    s = |w_f − w_i|
Overlap: ``overlap.overlap(jackpot mask, other)`` = |kept(J) ∩ kept(O)| / |kept(J)|, per layer and
overall; at equal budgets it is symmetric.

Search cost (``search_cost``): the paper compares test accuracy against search epochs, so this
uses TEST accuracy curves too (never used to choose anything): the first evaluation iteration t at
which the magnitude-initialised search's test accuracy reaches edge-popup's final test accuracy,
iteration 0 being the magnitude-pruned network itself, and t / (edge-popup's search iterations).
The paper's claim: at most a third.
"""
import math

import numpy as np

from minilottery.lottery.criteria import score_masks
from minilottery.lottery.overlap import overlap
from minilottery.lottery.pruning import ones_masks, prune_by_score

CRITERIA = ("random", "large_init", "movement")              # scored here; magnitude is the search's start
OVERLAP_WITH = ("magnitude",) + CRITERIA + ("edgepopup",)   # the overlap table's columns


def criterion_masks(criterion, theta0, final, budgets, rng):
    """{key: 0/1 mask} of ``criterion`` on (w_init = θ0, w_final = final), p_l pruned per searched layer."""
    keys = sorted(budgets.pruned)
    ones = ones_masks({k: final[k] for k in keys})
    scores = score_masks(criterion, {k: theta0[k] for k in keys}, {k: final[k] for k in keys}, ones, rng)
    return prune_by_score(scores, ones, budgets.pruned, rng)


def overlaps(jackpot, others):
    """{name: (per-layer {key: overlap}, overall)} of the jackpot masks with each of ``others``."""
    return {name: overlap(jackpot, masks) for name, masks in others.items()}


def search_cost(jackpot_curves, start_test_acc, edgepopup_curves):
    """(t, t / edge-popup's iterations): when the jackpot's test accuracy first reaches edge-popup's final
    one (t = 0: the magnitude-pruned start already does); (None, nan) when it never does."""
    its = np.concatenate([[0], np.asarray(jackpot_curves["iteration"])])
    acc = np.concatenate([[start_test_acc], np.asarray(jackpot_curves["test_acc"])])
    target, total = float(edgepopup_curves["test_acc"][-1]), int(edgepopup_curves["iteration"][-1])
    hit = np.flatnonzero(acc >= target)                                   # test acc ≥ edge-popup's final
    if hit.size == 0:
        return None, math.nan
    return int(its[hit[0]]), int(its[hit[0]]) / total
