"""Pruning properties (hypothesis) and refusals."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilottery.errors import ConfigError
from minilottery.lottery.pruning import (counts_to, fraction_remaining, global_magnitude_prune, layer_rates,
                                         magnitude_prune, ones_masks, plan_counts, prune_by_score,
                                         prune_counts, random_mask_like, random_prune, step_rate)


@st.composite
def layers(draw):
    """Two or three weight tensors with masks that already pruned some entries."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    names = ["fc1.W", "fc2.W", "fc3.W"][: draw(st.integers(2, 3))]
    weights, masks = {}, {}
    for name in names:
        shape = (draw(st.integers(1, 12)), draw(st.integers(2, 12)))
        w = rng.normal(size=shape).astype(np.float32)
        if draw(st.booleans()):                       # force ties in magnitude
            w = np.round(w, 1)
        m = (rng.random(shape) < draw(st.floats(0.5, 1.0))).astype(np.float32)
        m.ravel()[rng.integers(m.size)] = 1           # at least one survivor
        m.ravel()[rng.integers(m.size)] = 1
        weights[name], masks[name] = w * m, m
    return weights, masks


def _check_layer(w, old, new, k):
    pruned = (old == 1) & (new == 0)
    kept = new == 1
    assert pruned.sum() == k                                      # exact count
    assert np.all(new <= old)                                     # masks only shrink
    if pruned.any() and kept.any():                               # kept ≥ every pruned
        assert np.abs(w[kept]).min() >= np.abs(w[pruned]).max()


@settings(max_examples=80, deadline=None)
@given(layers(), st.floats(0.05, 0.6))
def test_layerwise_magnitude_pruning(layers_, rate):
    weights, masks = layers_
    rates = {k: rate for k in weights}
    try:
        counts = prune_counts(masks, rates)
    except ValueError:
        return  # a layer would be emptied: refused, checked separately
    new = magnitude_prune(weights, masks, rates)
    for key in weights:
        assert counts[key] == round(rate * int(masks[key].sum()))   # integer count, float64 product
        _check_layer(weights[key], masks[key], new[key], counts[key])
    assert magnitude_prune(weights, masks, rates).keys() == new.keys()
    for key in new:                                               # deterministic ties
        np.testing.assert_array_equal(new[key], magnitude_prune(weights, masks, rates)[key])


@settings(max_examples=60, deadline=None)
@given(layers(), st.floats(0.05, 0.5))
def test_global_magnitude_pruning(layers_, rate):
    weights, masks = layers_
    try:
        new = global_magnitude_prune(weights, masks, rate)
    except ValueError:
        return
    w = np.concatenate([weights[k].ravel() for k in sorted(weights)])
    old = np.concatenate([masks[k].ravel() for k in sorted(weights)])
    cat = np.concatenate([new[k].ravel() for k in sorted(weights)])
    _check_layer(w, old, cat, int(round(rate * old.sum())))


@settings(max_examples=60, deadline=None)
@given(layers(), st.floats(0.05, 0.5), st.integers(0, 1000))
def test_random_pruning_same_counts_random_positions(layers_, rate, seed):
    weights, masks = layers_
    try:
        counts = prune_counts(masks, {k: rate for k in masks})
    except ValueError:
        return
    new = random_prune(masks, counts, np.random.default_rng(seed))
    for key in masks:
        assert masks[key].sum() - new[key].sum() == counts[key]
        assert np.all(new[key] <= masks[key])
    like = random_mask_like(ones_masks(masks), new, np.random.default_rng(seed))
    assert {k: like[k].sum() for k in like} == {k: new[k].sum() for k in new}


def test_output_layer_at_half_rate_and_biases_untouched():
    rates = layer_rates({"conv1.W": "conv", "fc1.W": "fc", "fc2.W": "fc", "fc3.W": "output"},
                        conv_rate=0.15, fc_rate=0.2, output_rate=0.1)
    assert rates == {"conv1.W": 0.15, "fc1.W": 0.2, "fc2.W": 0.2, "fc3.W": 0.1}
    from minilottery.nn.models import build_model
    from minilottery.rng import Streams
    model = build_model("lenet_300_100", Streams.from_seed(0))
    w = {k: v for k, v in model.get_weights().items() if k.endswith(".W")}
    assert model.weight_kinds() == {"fc1.W": "fc", "fc2.W": "fc", "fc3.W": "output"}  # by type, not name
    masks = magnitude_prune(w, ones_masks(w), layer_rates(model.weight_kinds(), 0.0, 0.2, 0.1))
    assert set(masks) == {"fc1.W", "fc2.W", "fc3.W"}             # no bias ever gets a mask
    assert 1 - masks["fc3.W"].mean() == pytest.approx(0.1, abs=1e-3)
    assert 1 - masks["fc1.W"].mean() == pytest.approx(0.2, abs=1e-3)


def test_paper_percentages_after_k_rounds():
    """LeNet with 20% / 10% per round: 51.3% at k=3, 21.1% at 7, 13.5% at 9, 7.0% at 12, 3.6% at 15."""
    rng = np.random.default_rng(0)
    w = {"fc1.W": rng.normal(size=(300, 784)), "fc2.W": rng.normal(size=(100, 300)),
         "fc3.W": rng.normal(size=(10, 100))}
    masks, seen = ones_masks(w), {}
    kinds = {"fc1.W": "fc", "fc2.W": "fc", "fc3.W": "output"}
    for k in range(1, 16):
        masks = magnitude_prune(w, masks, layer_rates(kinds, 0.0, 0.2, 0.1))
        seen[k] = round(100 * fraction_remaining(masks), 1)
    assert [seen[k] for k in (3, 7, 9, 12, 15)] == [51.3, 21.1, 13.5, 7.0, 3.6]


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_rate_outside_open_interval_refused(rate):
    w = {"fc1.W": np.ones((3, 3))}
    with pytest.raises(ValueError, match="must be in"):
        magnitude_prune(w, ones_masks(w), {"fc1.W": rate})


def test_unknown_layer_refused():
    w = {"fc1.W": np.ones((3, 3))}
    with pytest.raises(ValueError, match="no prunable layer 'fc9.W'"):
        magnitude_prune(w, ones_masks(w), {"fc9.W": 0.2})


def test_emptying_a_layer_refused():
    w = {"fc1.W": np.arange(4.0).reshape(2, 2)}
    m = {"fc1.W": np.array([[0, 0], [0, 1.0]])}
    with pytest.raises(ValueError, match="would leave no weights"):
        magnitude_prune(w, m, {"fc1.W": 0.6})


# -- prune_by_score and the pruning plan ---------------------------------------

def _prune_step_masks(weights, rates, levels, oneshot):
    """Masks the way imp.prune_step makes them: magnitude_prune at 1 − (1 − rate)^steps of the base mask."""
    masks, out = ones_masks(weights), [ones_masks(weights)]
    for level in range(1, levels + 1):
        base, steps = (ones_masks(weights), level) if oneshot else (masks, 1)
        masks = magnitude_prune(weights, base, {k: step_rate(r, steps) for k, r in rates.items()})
        out.append(masks)
    return out


@pytest.mark.parametrize("oneshot", [False, True])
@settings(max_examples=30, deadline=None)
@given(st.integers(5, 400), st.integers(5, 400), st.sampled_from([0.1, 0.15, 0.2, 0.45]), st.integers(1, 8))
def test_plan_counts_matches_the_masks_imp_makes(oneshot, n1, n2, rate, levels):
    """plan_counts' remaining counts equal the per-layer sums of the masks prune_step would make."""
    rng = np.random.default_rng(n1 * 1000 + n2)
    w = {"fc1.W": rng.normal(size=(1, n1)), "fc2.W": rng.normal(size=(1, n2)), "fc3.W": rng.normal(size=(1, 3))}
    rates = {"fc1.W": rate, "fc2.W": rate / 2}                    # fc3.W absent: never pruned
    try:
        plan = plan_counts({k: v.size for k, v in w.items()}, rates, levels, oneshot)
    except ConfigError:
        return
    for level, masks in enumerate(_prune_step_masks(w, rates, levels, oneshot)):
        assert plan[level] == {k: int(m.sum()) for k, m in masks.items()}
    for level in range(1, levels + 1):
        assert all(plan[level][k] < plan[level - 1][k] for k in rates)   # Pm falls at every level
        base = ones_masks(w) if oneshot else _prune_step_masks(w, rates, level - 1, False)[-1]
        new = prune_by_score({k: np.abs(v) for k, v in w.items()}, base, counts_to(base, plan[level]))
        assert {k: int(m.sum()) for k, m in new.items()} == plan[level]


def test_plan_counts_refuses_a_layer_that_stops_shrinking():
    with pytest.raises(ConfigError, match=r"^level 3: pruning fc3.W at rate 0.45 removes no weight "
                                          r"\(1 remains\): Pm would stop falling"):
        plan_counts({"fc1.W": 1000, "fc3.W": 4}, {"fc1.W": 0.2, "fc3.W": 0.45}, 5)


def test_plan_counts_refuses_to_empty_a_layer_and_bad_rates():
    with pytest.raises(ConfigError, match=r"^level 2: pruning fc1.W at rate 0.6 would leave no weights"):
        plan_counts({"fc1.W": 2}, {"fc1.W": 0.6}, 3)
    with pytest.raises(ConfigError, match="must be in"):
        plan_counts({"fc1.W": 2}, {"fc1.W": 1.0}, 3)
    with pytest.raises(ConfigError, match="no prunable layer 'fc9.W'"):
        plan_counts({"fc1.W": 2}, {"fc9.W": 0.2}, 3)


def test_paper_plan_for_lenet():
    """LeNet-300-100 at 20% / 10%: the Pm of the paper's levels, from the plan alone."""
    sizes = {"fc1.W": 300 * 784, "fc2.W": 100 * 300, "fc3.W": 10 * 100}
    plan = plan_counts(sizes, {"fc1.W": 0.2, "fc2.W": 0.2, "fc3.W": 0.1}, 15)
    pm = [round(100 * sum(p.values()) / sum(sizes.values()), 1) for p in plan]
    assert [pm[k] for k in (3, 7, 9, 12, 15)] == [51.3, 21.1, 13.5, 7.0, 3.6]


def test_prune_by_score_refusals():
    m = {"fc1.W": np.array([[1.0, 1.0, 0.0]])}
    s = {"fc1.W": np.zeros((1, 3))}
    with pytest.raises(ConfigError, match="cannot remove 3 weights of fc1.W: 2 remain"):
        prune_by_score(s, m, {"fc1.W": 3})
    with pytest.raises(ConfigError, match="no prunable layer 'fc9.W'"):
        prune_by_score(s, m, {"fc9.W": 1})
    with pytest.raises(ConfigError, match="has shape"):
        prune_by_score({"fc1.W": np.zeros(3)}, m, {"fc1.W": 1})
    np.testing.assert_array_equal(prune_by_score(s, m, {"fc1.W": 1})["fc1.W"], [[0, 1, 0]])  # lowest index


def test_pruning_refusals_are_config_errors():
    w = {"fc1.W": np.ones((3, 3))}
    with pytest.raises(ConfigError):
        magnitude_prune(w, ones_masks(w), {"fc1.W": 1.5})
