"""Mask overlap: 1 for identical masks, symmetric at equal budgets, chance level q for a random mask."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.stats import binom

from minilottery.errors import ConfigError
from minilottery.lottery.overlap import expected_random_overlap, overlap


def random_mask(rng, shape, kept):
    m = np.zeros(int(np.prod(shape)), dtype=np.float32)
    m[rng.choice(m.size, kept, replace=False)] = 1
    return m.reshape(shape)


def test_identical_masks_overlap_fully():
    rng = np.random.default_rng(0)
    a = {"fc1.W": random_mask(rng, (20, 30), 100), "fc2.W": random_mask(rng, (5, 20), 7)}
    per_layer, overall = overlap(a, {k: m.copy() for k, m in a.items()})
    assert per_layer == {"fc1.W": 1.0, "fc2.W": 1.0} and overall == 1.0


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n1=st.integers(1, 50), n2=st.integers(1, 50), data=st.data())
def test_symmetric_at_equal_budgets(seed, n1, n2, data):
    # invariant: with |kept(A_l)| = |kept(B_l)| in every layer, overlap(A, B) = overlap(B, A) exactly
    rng = np.random.default_rng(seed)
    k1, k2 = data.draw(st.integers(1, n1)), data.draw(st.integers(1, n2))
    a = {"a.W": random_mask(rng, (n1,), k1), "b.W": random_mask(rng, (n2,), k2)}
    b = {"a.W": random_mask(rng, (n1,), k1), "b.W": random_mask(rng, (n2,), k2)}
    assert overlap(a, b) == overlap(b, a)
    per_layer, overall = overlap(a, b)
    assert all(0.0 <= v <= 1.0 for v in per_layer.values()) and 0.0 <= overall <= 1.0


def test_asymmetric_when_budgets_differ():
    a = {"w": np.array([1, 1, 0, 0])}
    b = {"w": np.array([1, 1, 1, 0])}
    assert overlap(a, b) == ({"w": 1.0}, 1.0)                    # all of A's kept weights are in B
    assert overlap(b, a) == ({"w": 2 / 3}, 2 / 3)                # two of B's three are in A


def test_random_mask_overlaps_at_its_density_within_a_binomial_bound():
    # B ~ Bernoulli(q) per weight, independent of A: |kept(A) ∩ kept(B)| ~ Binomial(|kept(A)|, q)
    rng = np.random.default_rng(12345)
    shapes = {"fc1.W": (300, 784), "fc2.W": (100, 300), "fc3.W": (10, 100)}
    for q in (0.05, 0.2, 0.5, 0.9):
        a = {k: random_mask(rng, s, int(0.3 * np.prod(s))) for k, s in shapes.items()}
        b = {k: (rng.random(s) < q).astype(np.float32) for k, s in shapes.items()}
        per_layer, overall = overlap(a, b)
        for k in shapes:
            n_a = int(a[k].sum())
            lo, hi = binom.interval(0.9999, n_a, q)
            assert lo / n_a <= per_layer[k] <= hi / n_a, (q, k, per_layer[k])
        n_a = sum(int(m.sum()) for m in a.values())
        lo, hi = binom.interval(0.9999, n_a, q)
        assert lo / n_a <= overall <= hi / n_a
        exp_layer, exp_overall = expected_random_overlap(b)     # B's realised kept fractions
        for k in shapes:
            assert exp_layer[k] == b[k].mean()


def test_expected_random_overlap_weights_layers_by_a():
    b = {"x": np.array([1, 0, 0, 0]), "y": np.array([1, 1, 1, 0])}
    a = {"x": np.array([1, 1, 1, 1]), "y": np.array([1, 0, 0, 0])}
    per_layer, overall = expected_random_overlap(b)
    assert per_layer == {"x": 0.25, "y": 0.75} and overall == 0.5
    assert expected_random_overlap(b, a) == (per_layer, (4 * 0.25 + 1 * 0.75) / 5)


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError, match="layers"):
        overlap({"x": np.ones(3)}, {"y": np.ones(3)})
    with pytest.raises(ConfigError, match="shape"):
        overlap({"x": np.ones(3)}, {"x": np.ones(4)})
    with pytest.raises(ConfigError, match="no weight"):
        overlap({"x": np.zeros(3)}, {"x": np.ones(3)})
