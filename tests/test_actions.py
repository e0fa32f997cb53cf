"""Mask-1 and mask-0 actions (Deconstructing Lottery Tickets): each rule checked against its definition."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from minilottery.errors import ConfigError
from minilottery.lottery.actions import (CODE_NAMES, MASK0, MASK1, get_mask0, get_mask1, mask0_apply,
                                         mask1_start)

DTYPES = st.sampled_from([np.float32, np.float64])


@st.composite
def layer(draw):
    """(θ0, w_final, prev_mask, mask, dtype, seed): mask ⊆ prev_mask, each with a survivor."""
    dtype = draw(DTYPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 7)), draw(st.integers(1, 8)))
    w0 = rng.normal(size=shape).astype(dtype)
    w_final = (w0 + rng.normal(scale=0.5, size=shape)).astype(dtype)
    prev = (rng.random(shape) < draw(st.floats(0.5, 1.0))).astype(dtype)
    prev.ravel()[0] = 1
    mask = prev * (rng.random(shape) < draw(st.floats(0.3, 1.0))).astype(dtype)
    mask.ravel()[0] = 1
    return w0, w_final, prev, mask, dtype, draw(st.integers(0, 1000))


def _alpha(w0):
    return w0.dtype.type(np.std(w0.astype(np.float64)))


def _sign(w0):
    return np.where(w0 < 0, -1, 1)                                # the module's rule: sign(0) = +1


def _start(name, w0, mask, seed):
    return MASK1[name](w0, mask, np.random.default_rng(seed))


@settings(max_examples=50, deadline=None)
@given(layer())
def test_mask1_actions_follow_their_definitions(layer_):
    """reshuffle permutes θ0 over the kept positions; reinit permutes the whole θ0; constant is ±α;
    signed forms are |unsigned| · sign(θ0) with the same draws; signed_constant = α·sign(θ0); dtype kept."""
    w0, _, _, mask, dtype, seed = layer_
    kept = mask == 1
    starts = {name: _start(name, w0, mask, seed) for name in MASK1}
    for name, s in starts.items():
        assert s.dtype == dtype and s.shape == w0.shape, name
    np.testing.assert_array_equal(starts["rewind"], w0)
    np.testing.assert_array_equal(np.sort(starts["reshuffle"][kept]), np.sort(w0[kept]))
    np.testing.assert_array_equal(np.sort(starts["reinit"].ravel()), np.sort(w0.ravel()))
    a = _alpha(w0)
    assert np.all(np.abs(starts["constant"]) == a)
    np.testing.assert_array_equal(starts["signed_constant"], a * _sign(w0).astype(dtype))
    for name in ("reinit", "reshuffle", "constant"):
        signed = starts[f"signed_{name}"]
        assert np.all(np.signbit(signed[kept]) == (w0[kept] < 0)), name       # sign(θ0) everywhere kept
        np.testing.assert_array_equal(np.abs(signed), np.abs(starts[name]))    # same magnitudes


def test_sign_of_a_zero_theta0_is_positive():
    w0 = np.array([[0.0, -0.0, -0.5, 0.5]], np.float32)
    mask = np.ones_like(w0)
    a = _alpha(w0)
    np.testing.assert_array_equal(MASK1["signed_constant"](w0, mask, None), [[a, a, -a, a]])
    assert np.all(MASK1["signed_reinit"](w0, mask, np.random.default_rng(0))[:, [0, 1, 3]] >= 0)


def test_constant_draws_fair_signs():
    """The + sign count of a 2,000-weight layer lies within a binomial bound around half."""
    w0 = np.random.default_rng(1).normal(size=(40, 50)).astype(np.float32)
    s = MASK1["constant"](w0, np.ones_like(w0), np.random.default_rng(2))
    plus = int((s > 0).sum())
    assert binom.ppf(1e-6, s.size, 0.5) <= plus <= binom.isf(1e-6, s.size, 0.5)


def test_reshuffle_moves_nothing_onto_or_off_pruned_positions():
    """The kept values are exactly θ0's kept values, permuted; reshuffle differs between seeds."""
    w0 = np.arange(1.0, 13.0, dtype=np.float32).reshape(3, 4)
    mask = (np.arange(12).reshape(3, 4) % 2).astype(np.float32)
    outs = [MASK1["reshuffle"](w0, mask, np.random.default_rng(s)) for s in range(5)]
    for out in outs:
        assert set(out[mask == 1]) == set(w0[mask == 1])
    assert len({o.tobytes() for o in outs}) > 1


def _expected_fill(rule, w0, w_final, prev, mask, prev_fill):
    """Element by element: earlier fill where pruned before, the rule where pruned now, 0 where kept."""
    out = np.zeros_like(w0)
    for i in np.ndindex(w0.shape):
        if mask[i] == 1:
            continue
        if prev[i] == 0:
            out[i] = 0 if prev_fill is None else prev_fill[i]
        elif rule == "freeze_init":
            out[i] = w0[i]
        elif rule in ("variant1", "variant2"):
            out[i] = 0 if abs(w_final[i]) < abs(w0[i]) else w0[i]
    return out


@pytest.mark.parametrize("name", sorted(MASK0))
@settings(max_examples=40, deadline=None)
@given(layer(), st.booleans())
def test_mask0_actions_follow_their_definitions(name, layer_, with_prev_fill):
    """start' is +0.0 at pruned positions, the mask-1 start where kept (variant2: 0 where it shrank);
    the fill is the rule at newly pruned positions, the earlier fill at earlier ones, 0 where kept."""
    w0, w_final, prev, mask, dtype, seed = layer_
    start = _start("reinit", w0, mask, seed)
    rng = np.random.default_rng(seed)
    prev_fill = rng.normal(size=w0.shape).astype(dtype) * (1 - prev) if with_prev_fill else None
    new_start, fill = MASK0[name](start, w0, w_final, mask, prev, prev_fill)
    kept, pruned = mask == 1, mask == 0
    assert new_start.dtype == dtype
    assert np.all(new_start[pruned] == 0) and not np.signbit(new_start[pruned]).any()
    expect_start = start.copy()
    if name == "variant2":
        expect_start[np.abs(w_final) < np.abs(w0)] = 0
    np.testing.assert_array_equal(new_start[kept], expect_start[kept])
    expected = _expected_fill(name, w0, w_final, prev, mask, prev_fill)
    if fill is None:
        assert name == "zero" and prev_fill is None
    else:
        assert fill.dtype == dtype
        np.testing.assert_array_equal(fill, expected)
        assert np.all(fill[kept] == 0)                            # fills only at pruned positions


@settings(max_examples=30, deadline=None)
@given(layer())
def test_earlier_pruned_positions_keep_their_earlier_fill_across_levels(layer_):
    """Two levels of freeze_init then variant1: positions pruned at level 1 keep θ0 at level 2."""
    w0, w_final, prev, mask, dtype, _ = layer_
    ones = np.ones_like(prev)
    _, fill1 = MASK0["freeze_init"](w0, w0, w_final, prev, ones, None)
    later = (w0 * 0.5).astype(dtype)                               # every weight shrank by level 2
    _, fill2 = MASK0["variant1"](w0, w0, later, mask, prev, fill1)
    np.testing.assert_array_equal(fill2[prev == 0], w0[prev == 0])
    np.testing.assert_array_equal(fill2[(prev == 1) & (mask == 0)], 0)


def test_prev_mask_none_means_dense_before_and_revival_is_refused():
    w0 = np.array([[1.0, -2.0, 3.0]], np.float32)
    w_final = np.array([[0.5, -3.0, 3.0]], np.float32)
    mask = np.array([[0, 0, 1]], np.float32)
    start, fill = MASK0["variant1"](w0, w0, w_final, mask, None, None)
    np.testing.assert_array_equal(fill, [[0.0, -2.0, 0.0]])
    np.testing.assert_array_equal(start, [[0.0, 0.0, 3.0]])
    with pytest.raises(ConfigError, match="revives"):
        MASK0["zero"](w0, w0, w_final, np.ones_like(mask), mask, None)


def test_dtypes_are_never_mixed_silently():
    w0 = np.ones((2, 2), np.float32)
    with pytest.raises(TypeError, match="nothing casts silently"):
        MASK0["freeze_init"](w0.astype(np.float64), w0, w0, np.ones_like(w0), None, None)


def test_dict_helpers_cover_every_layer_and_reproduce_from_a_seed():
    rng = np.random.default_rng(0)
    theta0 = {k: rng.normal(size=(4, 3)).astype(np.float32) for k in ("fc2.W", "fc1.W")}
    final = {k: (v * 0.5).astype(np.float32) for k, v in theta0.items()}
    masks = {k: (rng.random((4, 3)) < 0.5).astype(np.float32) for k in theta0}
    a = mask1_start("reshuffle", theta0, masks, np.random.default_rng(3))
    b = mask1_start("reshuffle", theta0, masks, np.random.default_rng(3))
    assert list(a) == ["fc1.W", "fc2.W"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    starts, fills = mask0_apply("freeze_init_zero_all", a, theta0, final, masks)
    for k in masks:
        assert np.all(starts[k] == 0)                            # every weight shrank: variant2 starts at 0
        np.testing.assert_array_equal(fills[k], np.zeros_like(theta0[k]))   # shrank and pruned: frozen at 0
    starts, fills = mask0_apply("zero", a, theta0, final, masks, masks, {k: None for k in masks})
    assert all(f is None for f in fills.values())


def test_code_names_are_aliases():
    assert CODE_NAMES == {"freeze_init_zero_mask": "variant1", "freeze_init_zero_all": "variant2"}
    assert get_mask0("freeze_init_zero_mask") is MASK0["variant1"]
    assert get_mask0("freeze_init_zero_all") is MASK0["variant2"]
    assert set(MASK1) == {"rewind", "reinit", "reshuffle", "constant",
                          "signed_reinit", "signed_reshuffle", "signed_constant"}
    assert set(MASK0) == {"zero", "freeze_init", "variant1", "variant2"}


@pytest.mark.parametrize("lookup, kind", [(get_mask1, "mask-1 action"), (get_mask0, "mask-0 action")])
def test_unknown_action_refused_in_one_line_naming_the_choices(lookup, kind):
    with pytest.raises(ConfigError, match=rf"unknown {kind} 'foo'; choose one of \(") as err:
        lookup("foo")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="choose one of"):
        mask1_start("foo", {}, {}, np.random.default_rng(0)) if kind == "mask-1 action" else \
            mask0_apply("foo", {}, {}, {}, {})
