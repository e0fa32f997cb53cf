"""Mask criteria (Deconstructing Lottery Tickets) through prune_by_score: each criterion's defining invariant."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from minilottery.errors import ConfigError
from minilottery.lottery.criteria import CRITERIA, get_criterion, score_masks
from minilottery.lottery.pruning import magnitude_prune, prune_by_score, prune_counts

KEY = "fc1.W"


@st.composite
def layer(draw, ties=None):
    """(w_i, w_f, mask, k): float32 weights, a mask with some entries already pruned, a count to remove.

    ties=None draws whether magnitudes are rounded (forcing ties); False gives distinct magnitudes.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 8)), draw(st.integers(2, 9)))
    n = shape[0] * shape[1]
    if ties is False:                       # distinct magnitudes in both w_i and w_f, random signs
        w_i = (rng.permutation(n) + 1.0).reshape(shape) * rng.choice([-1.0, 1.0], size=shape)
        w_f = (rng.permutation(n) + 1.0).reshape(shape) * rng.choice([-1.0, 1.0], size=shape)
        w_i, w_f = (w_i / n).astype(np.float32), (w_f / n).astype(np.float32)
    else:
        w_i = rng.normal(size=shape).astype(np.float32)
        w_f = (w_i + rng.normal(scale=draw(st.floats(0.1, 2.0)), size=shape)).astype(np.float32)
        if draw(st.booleans()):
            w_i, w_f = np.round(w_i, 1), np.round(w_f, 1)
    mask = (rng.random(shape) < draw(st.floats(0.4, 1.0))).astype(np.float32)
    mask.ravel()[rng.choice(n, size=2, replace=False)] = 1      # at least two survivors
    remaining = int(mask.sum())
    k = draw(st.integers(1, remaining - 1))
    return w_i, w_f, mask, k


def _prune(name, w_i, w_f, mask, k, seed=0):
    rng = np.random.default_rng(seed)
    scores = score_masks(name, {KEY: w_i}, {KEY: w_f}, {KEY: mask}, rng)
    return prune_by_score(scores, {KEY: mask}, {KEY: k}, rng)[KEY]


def _sets(old, new):
    return (old == 1) & (new == 0), new == 1                      # (pruned now, kept)


@pytest.mark.parametrize("name", sorted(CRITERIA))
@settings(max_examples=25, deadline=None)
@given(layer(), st.integers(0, 1000))
def test_every_criterion_removes_exactly_k_only_shrinks_and_is_reproducible(name, layer_, seed):
    """Exactly k remaining weights go, no pruned weight returns, and the same seed gives the same mask."""
    w_i, w_f, mask, k = layer_
    new = _prune(name, w_i, w_f, mask, k, seed)
    assert int(mask.sum() - new.sum()) == k
    assert np.all(new <= mask)
    assert new.dtype == mask.dtype
    np.testing.assert_array_equal(new, _prune(name, w_i, w_f, mask, k, seed))


@settings(max_examples=50, deadline=None)
@given(layer())
def test_movement_keeps_every_weight_that_moved_more_than_every_pruned_one(layer_):
    """min |w_f − w_i| over kept ≥ max |w_f − w_i| over pruned."""
    w_i, w_f, mask, k = layer_
    pruned, kept = _sets(mask, _prune("movement", w_i, w_f, mask, k))
    moved = np.abs(w_f.astype(np.float64) - w_i.astype(np.float64))
    assert moved[kept].min() >= moved[pruned].max()


@settings(max_examples=50, deadline=None)
@given(layer())
def test_magnitude_increase_keeps_every_weight_that_grew_more_than_every_pruned_one(layer_):
    """min (|w_f| − |w_i|) over kept ≥ max over pruned."""
    w_i, w_f, mask, k = layer_
    pruned, kept = _sets(mask, _prune("magnitude_increase", w_i, w_f, mask, k))
    grew = np.abs(w_f.astype(np.float64)) - np.abs(w_i.astype(np.float64))
    assert grew[kept].min() >= grew[pruned].max()


@settings(max_examples=50, deadline=None)
@given(layer())
def test_same_sign_never_prunes_a_same_sign_weight_while_keeping_a_flipped_one(layer_):
    """large_final_same_sign: flipped weights go first, then same-sign ones by |w_f|; diff_sign the reverse."""
    w_i, w_f, mask, k = layer_
    same = np.sign(w_i) == np.sign(w_f)
    pruned, kept = _sets(mask, _prune("large_final_same_sign", w_i, w_f, mask, k))
    assert not ((pruned & same).any() and (kept & ~same).any())
    if (pruned & same).any():                                     # among same-sign: the largest |w_f| stay
        assert np.abs(w_f[kept]).min() >= np.abs(w_f[pruned & same]).max()
    pruned, kept = _sets(mask, _prune("large_final_diff_sign", w_i, w_f, mask, k))
    assert not ((pruned & ~same).any() and (kept & same).any())
    if (pruned & ~same).any():
        assert np.abs(w_f[kept]).min() >= np.abs(w_f[pruned & ~same]).max()


def _quantile(values, alive, t):
    """The t-th smallest (0-based) of the alive values: the per-layer percentile at level t/n."""
    return np.sort(values[alive])[t]


def _check_both_percentiles(a_i, a_f, mask, new, k, exact_order):
    """Kept count exact; every kept weight ≥ both percentiles at a common level t; with distinct
    values, nothing at or above both percentiles at level t + 1 is pruned."""
    alive, kept = mask == 1, new == 1
    assert int(alive.sum() - kept.sum()) == k
    n = int(alive.sum())
    levels = [t for t in range(n) if np.all(a_i[kept] >= _quantile(a_i, alive, t))
              and np.all(a_f[kept] >= _quantile(a_f, alive, t))]
    assert levels, "no common percentile level below every kept weight"
    t = max(levels)
    if exact_order and t + 1 < n:
        above = alive & (a_i >= _quantile(a_i, alive, t + 1)) & (a_f >= _quantile(a_f, alive, t + 1))
        assert np.all(kept[above])


@settings(max_examples=50, deadline=None)
@given(st.one_of(layer(), layer(ties=False)))
def test_large_init_large_final_keeps_what_beats_both_percentiles(layer_):
    """Kept weights are at or above both per-layer percentiles (of the alive weights) at a common level."""
    w_i, w_f, mask, k = layer_
    distinct = len(np.unique(np.abs(w_i[mask == 1]))) == mask.sum() == len(np.unique(np.abs(w_f[mask == 1])))
    new = _prune("large_init_large_final", w_i, w_f, mask, k)
    _check_both_percentiles(np.abs(w_i), np.abs(w_f), mask, new, k, distinct)
    new = _prune("small_init_small_final", w_i, w_f, mask, k)
    _check_both_percentiles(-np.abs(w_i), -np.abs(w_f), mask, new, k, distinct)


@pytest.mark.parametrize("large, small", [("large_final", "small_final"), ("large_init", "small_init")])
@settings(max_examples=40, deadline=None)
@given(layer(ties=False))
def test_opposite_criteria_give_complementary_rankings(large, small, layer_):
    """No ties: the kept set of one at count k is the pruned set of the other at count remaining − k."""
    w_i, w_f, mask, k = layer_
    remaining = int(mask.sum())
    _, kept_large = _sets(mask, _prune(large, w_i, w_f, mask, k))
    pruned_small, _ = _sets(mask, _prune(small, w_i, w_f, mask, remaining - k))
    np.testing.assert_array_equal(kept_large, pruned_small)


def _magnitude_case(layer_, rate):
    w_i, w_f, mask, _ = layer_
    try:
        k = prune_counts({KEY: mask}, {KEY: rate})[KEY]
    except ValueError:
        return None
    return w_i, w_f, mask, k


@settings(max_examples=50, deadline=None)
@given(st.one_of(layer(), layer(ties=False)), st.floats(0.05, 0.9), st.integers(0, 1000))
def test_large_final_equals_magnitude_prune_bit_for_bit_without_a_tie_at_the_cut(layer_, rate, seed):
    """With no tie across the cut, large_final is today's magnitude_prune and draws nothing from rng."""
    case = _magnitude_case(layer_, rate)
    assume(case is not None)
    w_i, w_f, mask, k = case
    ranked = np.sort(np.abs(w_f[mask == 1]))
    assume(k == 0 or ranked[k - 1] != ranked[k])                  # ties allowed, but away from the cut
    rng = np.random.default_rng(seed)
    scores = score_masks("large_final", {KEY: w_i}, {KEY: w_f}, {KEY: mask}, rng)
    state = rng.bit_generator.state
    new = prune_by_score(scores, {KEY: mask}, {KEY: k}, rng)[KEY]
    assert rng.bit_generator.state == state                      # no randomness used
    old = magnitude_prune({KEY: w_f}, {KEY: mask}, {KEY: rate})[KEY]
    assert new.dtype == old.dtype and new.tobytes() == old.tobytes()


@settings(max_examples=50, deadline=None)
@given(layer(), st.integers(0, 1000))
def test_ties_at_the_cut_are_broken_among_the_tied_entries_only(layer_, seed):
    """Outside the tied score at the cut, large_final agrees with magnitude_prune; inside it, counts match."""
    w_i, w_f, mask, k = layer_
    w_f = np.round(w_f, 0)                                        # many ties
    ranked = np.sort(np.abs(w_f[mask == 1]))
    cut = ranked[k - 1]
    new = _prune("large_final", w_i, w_f, mask, k, seed)
    ref = prune_by_score({KEY: np.abs(w_f)}, {KEY: mask}, {KEY: k})[KEY]   # rng None: lowest index first
    tied = np.abs(w_f) == cut
    np.testing.assert_array_equal(new[~tied], ref[~tied])
    assert new[tied].sum() == ref[tied].sum()


def test_ties_at_the_cut_are_chosen_by_the_seed():
    """Ten equal scores, five to go: different seeds choose different subsets, one seed always the same."""
    mask = np.ones((1, 10), np.float32)
    score = {KEY: np.zeros((1, 10))}
    chosen = {prune_by_score(score, {KEY: mask}, {KEY: 5}, np.random.default_rng(s))[KEY].tobytes()
              for s in range(20)}
    assert len(chosen) > 1
    a, b = (prune_by_score(score, {KEY: mask}, {KEY: 5}, np.random.default_rng(7))[KEY] for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_random_criterion_keeps_each_position_with_the_same_probability():
    """Keep frequency of every alive position over 400 seeds lies within a Bonferroni binomial bound."""
    base = np.random.default_rng(123)
    mask = (base.random((6, 5)) < 0.8).astype(np.float32)
    w = base.normal(size=mask.shape).astype(np.float32)
    remaining, k, trials = int(mask.sum()), int(mask.sum()) // 3, 400
    keeps = sum(_prune("random", w, w, mask, k, seed) for seed in range(trials))
    assert np.all(keeps[mask == 0] == 0)
    p = (remaining - k) / remaining
    alpha = 1e-3 / remaining
    lo, hi = binom.ppf(alpha / 2, trials, p), binom.isf(alpha / 2, trials, p)
    assert np.all((keeps[mask == 1] >= lo) & (keeps[mask == 1] <= hi)), (keeps, lo, hi)


def test_criteria_registry_and_refusal():
    assert set(CRITERIA) == {
        "large_final", "small_final", "large_init", "small_init", "large_init_large_final",
        "small_init_small_final", "magnitude_increase", "movement", "random",
        "large_final_same_sign", "large_final_diff_sign"}
    with pytest.raises(ConfigError, match=r"unknown criterion 'foo'; choose one of \(.*'movement'") as err:
        get_criterion("foo")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="unknown criterion"):
        score_masks("foo", {}, {}, {}, np.random.default_rng(0))


def test_scores_are_float64_and_shaped_like_the_weight():
    rng = np.random.default_rng(0)
    w_i, w_f = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    for name, fn in CRITERIA.items():
        s = fn(w_i, w_f, np.ones((3, 4), bool), rng)
        assert s.dtype == np.float64 and s.shape == (3, 4), name


def test_a_weight_that_ends_at_zero_has_changed_sign():
    """sign(w_i) = sign(w_f) is np.sign equality: +0.3 → 0 is a flip and goes before a same-sign 0.1."""
    w_i = np.array([[0.3, 0.2, 0.5]], np.float32)
    w_f = np.array([[0.0, 0.1, 0.9]], np.float32)
    new = _prune("large_final_same_sign", w_i, w_f, np.ones_like(w_i), 1)
    np.testing.assert_array_equal(new, [[0, 1, 1]])


def test_a_same_sign_weight_at_zero_still_outranks_every_flipped_one():
    """w_i = w_f = 0 is same-sign with |w_f| = 0; a flipped weight (score −1) must go first for every seed."""
    w_i = np.array([[0.0, 0.5]], np.float32)
    w_f = np.array([[0.0, -0.7]], np.float32)
    for seed in range(20):
        new = _prune("large_final_same_sign", w_i, w_f, np.ones_like(w_i), 1, seed)
        np.testing.assert_array_equal(new, [[1, 0]])
