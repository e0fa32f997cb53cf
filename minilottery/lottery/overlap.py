"""Mask overlap (Lottery Jackpots): how much of one mask's kept weights another keeps too.

    overlap(A, B) = |kept(A) ∩ kept(B)| / |kept(A)|        per layer, and overall (sums over layers)
Asymmetric: it is the fraction of A's kept weights that B keeps. Where
|kept(A)| = |kept(B)| (per layer, or in total for the overall value) the
denominators agree and overlap(A, B) = overlap(B, A); that holds at equal
budgets, e.g. a jackpot mask against the magnitude mask it started from.

A uniformly random B_l keeping q_l = |kept(B_l)| / n_l of its layer keeps each
of A's kept weights with probability q_l, so E[overlap_l(A, B)] = q_l:
``expected_random_overlap`` is the chance level a criterion's overlap is read against.
Masks are 0/1 arrays (host or device; any non-zero counts as kept), in dicts keyed alike.
"""
import numpy as np

from minilottery.backend import to_numpy
from minilottery.errors import ConfigError


def _kept(masks):
    return {k: np.asarray(to_numpy(m)) != 0 for k, m in masks.items()}


def overlap(a, b):
    """({key: |kept(A) ∩ kept(B)| / |kept(A)|}, overall) for dicts of masks with the same keys and shapes."""
    if set(a) != set(b):
        raise ConfigError(f"masks differ in layers: {sorted(set(a) ^ set(b))}")
    ka, kb = _kept(a), _kept(b)
    both, kept_a, per_layer = 0, 0, {}
    for key in a:
        if ka[key].shape != kb[key].shape:
            raise ConfigError(f"masks of {key} differ in shape: {ka[key].shape} and {kb[key].shape}")
        n_a, n_ab = int(ka[key].sum()), int((ka[key] & kb[key]).sum())
        if n_a == 0:
            raise ConfigError(f"mask A keeps no weight of {key}: its overlap is undefined")
        per_layer[key] = n_ab / n_a                                # |A ∩ B| / |A|
        both, kept_a = both + n_ab, kept_a + n_a
    if not per_layer:
        raise ConfigError("no masks to compare")
    return per_layer, both / kept_a


def expected_random_overlap(b, a=None):
    """({key: q_l}, overall) with q_l the kept fraction of B's layer: E[overlap(A, B)] for B random per layer.

    Overall: with ``a`` given, Σ_l |kept(A_l)|·q_l / Σ_l |kept(A_l)| (the expectation of the
    overall overlap); without it, B's kept fraction over all its layers.
    """
    kb = _kept(b)
    if not kb:
        raise ConfigError("no masks to compare")
    per_layer = {k: int(m.sum()) / m.size for k, m in kb.items()}  # q_l = |kept(B_l)| / n_l
    if a is None:
        return per_layer, sum(int(m.sum()) for m in kb.values()) / sum(m.size for m in kb.values())
    if set(a) != set(b):
        raise ConfigError(f"masks differ in layers: {sorted(set(a) ^ set(b))}")
    na = {k: int(m.sum()) for k, m in _kept(a).items()}
    if sum(na.values()) == 0:
        raise ConfigError("mask A keeps no weight: its overlap is undefined")
    return per_layer, sum(na[k] * per_layer[k] for k in kb) / sum(na.values())
