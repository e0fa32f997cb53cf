"""Optimisers over dicts of arrays: the freezing invariants, a float64 textbook
reference, weight decay, state save/load/reset, dtypes and hyperparameter checks.

An optimiser is built over ``{name: live array}`` and stepped with
``opt.step(grads, masks)``: entries where a mask is 0 are frozen (their value
does not change, their optimiser state is held at 0), every other entry evolves
as the unmasked optimiser. What a pruned weight *is* is the caller's choice:
the LTH's ``zero`` action (``lottery.resets.rewind``) sets it to 0 before
training, and the optimiser then keeps it, and its state, at exactly 0.

A tiny fake model holds the live arrays, this step's gradients and the masks;
hypothesis draws parameters, 0/1 masks and gradient sequences.
"""
import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minilottery.backend import asarray, to_numpy, xp_of
from minilottery.nn.layers import keep_bits
from minilottery.nn.optim import CHUNK, SGD, Adam, Momentum, make_optimizer

SETTINGS = settings(max_examples=50, deadline=None)
DTYPES = (np.float32, np.float64)
KINDS = ("sgd", "momentum", "nesterov", "adam")


class FakeModel:
    """The optimiser's view of a model: live params, this step's grads, masks."""

    def __init__(self, params, masks=None):
        self._params = {k: asarray(np.array(v, copy=True)) for k, v in params.items()}
        self._grads = {k: None for k in params}
        self._masks = {}
        self.set_masks(masks or {})

    def params(self):
        return self._params

    def grads(self):
        return self._grads

    def masks(self):
        return self._masks

    def set_grads(self, grads):
        self._grads = {k: asarray(np.array(g, copy=True)) for k, g in grads.items()}

    def set_masks(self, masks):
        """Install copies of the masks (as Sequential.set_masks does); values are untouched."""
        self._masks = {k: asarray(np.array(m, copy=True)) for k, m in masks.items()}

    def zero_action(self):
        """The LTH's mask-0 action, as resets.rewind applies it: pruned weights ← 0 (assigned)."""
        for k, m in self._masks.items():
            p = self._params[k]
            xp_of(p).copyto(p, 0, where=m == 0)

    def host(self):
        return {k: to_numpy(v).copy() for k, v in self._params.items()}


def build(kind, hp, model):
    """The optimiser of ``kind`` over the model's live arrays."""
    lr, wd, params = hp["lr"], hp.get("wd", 0.0), model.params()
    if kind == "sgd":
        return SGD(params, lr, weight_decay=wd)
    if kind in ("momentum", "nesterov"):
        return Momentum(params, lr, momentum=hp["momentum"], nesterov=kind == "nesterov", weight_decay=wd)
    return Adam(params, lr, betas=hp["betas"], eps=hp["eps"], weight_decay=wd)


def step(opt, model):
    opt.step(model.grads(), model.masks())


def buffers(opt):
    """{param key: {buffer name: host array}} from state_dict ("<buffer>/<param key>")."""
    out = {}
    for name, v in opt.state_dict().items():
        if name != "t":
            b, k = name.split("/", 1)
            out.setdefault(k, {})[b] = np.asarray(to_numpy(v))
    return out


def step_count(opt):
    return int(opt.state_dict()["t"])


# -- strategies ----------------------------------------------------------------
def finite(dtype, bound=None):
    # No subnormals: their absolute precision (2^-149 in float32) is amplified by Adam's
    # 1/eps to ~1e-37, past any float32-vs-float64 tolerance, without a bug to find.
    kw = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False,
              width=32 if dtype == np.float32 else 64)
    if bound is not None:
        kw.update(min_value=-bound, max_value=bound)
    return st.floats(**kw)


@st.composite
def configs(draw, kinds=KINDS):
    kind = draw(st.sampled_from(kinds))
    hp = {"lr": draw(st.floats(1e-4, 1.0)), "wd": draw(st.sampled_from([0.0, 0.0, 1e-4, 0.5]))}
    if kind in ("momentum", "nesterov"):
        hp["momentum"] = draw(st.floats(0.0, 0.99))
    if kind == "adam":
        hp["betas"] = (draw(st.floats(0.0, 0.99)), draw(st.floats(0.0, 0.9999)))
        hp["eps"] = draw(st.sampled_from([1e-8, 1e-6, 1e-3]))
    return kind, hp


def mask_like(shape, dtype):
    return hnp.arrays(dtype, shape, elements=st.sampled_from([0.0, 1.0]))


@st.composite
def problems(draw, bound=None, min_steps=1, max_steps=8, dtype=None):
    """(params, masks, grads): a few weights (most masked) and an unmasked bias.

    Pruned entries start non-zero and get non-zero gradients at every step.
    """
    dtype = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    elements = finite(dtype, bound)
    shapes = {f"layer{i}.W": draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
              for i in range(draw(st.integers(1, 3)))}
    shapes["layer0.b"] = (shapes["layer0.W"][0],)
    params = {k: draw(hnp.arrays(dtype, s, elements=elements)) for k, s in shapes.items()}
    masks = {k: draw(mask_like(s, dtype)) for k, s in shapes.items()
             if k.endswith(".W") and draw(st.integers(0, 3)) > 0}
    steps = draw(st.integers(min_steps, max_steps))
    grads = [{k: draw(hnp.arrays(dtype, s, elements=elements)) for k, s in shapes.items()}
             for _ in range(steps)]
    for k, m in masks.items():
        pruned = m == 0
        params[k][pruned & (params[k] == 0)] = 1.5
        for g in grads:
            g[k][pruned & (g[k] == 0)] = -0.75
    return params, masks, grads


def run(kind, hp, params, mask_schedule, grads, each_step=None, zero=True):
    """Step an optimiser through grads; mask_schedule[t] is installed when not None,
    followed by the zero action when ``zero``. ``each_step(model, opt, before)`` is
    called after every step with the host values from just before it."""
    model = FakeModel(params)
    opt = build(kind, hp, model)
    for masks, g in zip(mask_schedule, grads):
        if masks is not None:
            model.set_masks(masks)
            if zero:
                model.zero_action()
        model.set_grads(g)
        before = model.host()
        with np.errstate(over="ignore", invalid="ignore"):   # any finite values may overflow
            step(opt, model)
        if each_step is not None:
            each_step(model, opt, before)
    return model, opt


def check_pruned_zero(model, opt, before=None):
    """Under the zero action: pruned weights and their buffers are exactly 0."""
    bufs = buffers(opt)
    for k, m in model.masks().items():
        pruned = to_numpy(m) == 0
        assert np.all(to_numpy(model.params()[k])[pruned] == 0), k
        for b, v in bufs.get(k, {}).items():
            assert np.all(v[pruned] == 0), f"buffer {b} of {k} leaks under the mask"


def check_frozen(model, opt, before):
    """Frozen entries keep their value bit for bit, and their buffers are 0."""
    bufs = buffers(opt)
    for k, m in model.masks().items():
        frozen = to_numpy(m) == 0
        now = to_numpy(model.params()[k])
        assert now[frozen].tobytes() == before[k][frozen].tobytes(), f"frozen entries of {k} moved"
        for b, v in bufs.get(k, {}).items():
            assert np.all(v[frozen] == 0), f"buffer {b} of {k} is not held at 0 where frozen"


# -- the textbook reference ---------------------------------------------------------
def reference(kind, hp, params, mask_schedule, grads, zero=True):
    """Float64 textbook updates: state ← state ⊙ m, g ← (g + λθ) ⊙ m, the update
    rule, and no step where m = 0; at a mask's installation the zero action
    (θ ← 0 where m = 0) when ``zero``.

    Returns the final parameters and, per entry, a bound on the magnitudes that
    rounding errors scale with (Σ|θ| and Σ|update terms| over the run).
    """
    lr, wd = hp["lr"], hp.get("wd", 0.0)
    p = {k: np.asarray(v, np.float64).copy() for k, v in params.items()}
    zeros = {k: np.zeros_like(v) for k, v in p.items()}
    vel, m1, m2 = copy.deepcopy(zeros), copy.deepcopy(zeros), copy.deepcopy(zeros)
    gsum, scale = copy.deepcopy(zeros), copy.deepcopy(zeros)
    masks = {}
    for t, (new_masks, g_t) in enumerate(zip(mask_schedule, grads), start=1):
        if new_masks is not None:
            masks = {k: np.asarray(m, np.float64) for k, m in new_masks.items()}
            if zero:
                for k, m in masks.items():
                    p[k][m == 0] = 0.0
        for k in p:
            mask = masks.get(k)
            keep = 1.0 if mask is None else mask
            for buf in (vel, m1, m2):
                buf[k] *= keep
            g = (np.asarray(g_t[k], np.float64) + wd * p[k]) * keep
            gsum[k] += np.abs(g)
            scale[k] += np.abs(p[k])
            if kind == "sgd":
                d, err = lr * g, lr * np.abs(g)
            elif kind in ("momentum", "nesterov"):
                mu = hp["momentum"]
                vel[k] = mu * vel[k] + g
                d = lr * (g + mu * vel[k]) if kind == "nesterov" else lr * vel[k]
                err = lr * (1 + mu) * t * gsum[k]
            else:
                (b1, b2), eps = hp["betas"], hp["eps"]
                m1[k] = b1 * m1[k] + (1 - b1) * g
                m2[k] = b2 * m2[k] + (1 - b2) * g * g
                bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
                denom = np.sqrt(m2[k]) / np.sqrt(bc2) + eps
                d = lr / bc1 * m1[k] / denom
                err = lr / bc1 * t * gsum[k] / denom
            if mask is not None:
                d = np.where(mask == 0, 0.0, d)
            p[k] = p[k] - d
            scale[k] += err + wd * np.abs(p[k])
    for k in p:
        scale[k] += np.abs(p[k])
    return p, scale


def assert_matches_reference(kind, hp, params, schedule, grads, model, zero=True):
    ref, scale = reference(kind, hp, params, schedule, grads, zero)
    got = model.host()
    for k, want in ref.items():
        eps = np.finfo(got[k].dtype).eps
        tol = 16 * len(grads) * eps * scale[k] + np.finfo(got[k].dtype).tiny
        err = np.abs(got[k].astype(np.float64) - want)
        assert np.all(err <= tol), f"{kind} {k}: max error {err.max()} (tol {tol.max()})"


# -- invariants ------------------------------------------------------------------
@SETTINGS
@given(configs(), problems())
def test_zero_action_pruned_weights_and_state_stay_exactly_zero(config, problem):
    """Pruned weights (set to 0 by the zero action before the first step) and their
    state are exactly 0 after every step, although pruned entries get non-zero
    gradients. (Intent changed: installing a mask used to zero the weights itself;
    now the zero action is the caller's, and the optimiser only keeps them at 0.)"""
    (kind, hp), (params, masks, grads) = config, problem
    run(kind, hp, params, [masks] + [None] * (len(grads) - 1), grads, each_step=check_pruned_zero)


@SETTINGS
@given(configs(), problems(bound=1e6))
def test_frozen_entries_keep_their_value_and_a_zero_state(config, problem):
    """Without the zero action, a masked entry is frozen at its value (non-zero, or
    -0.0) bit for bit, and its state is held at 0. (Replaces the old "a new mask zeroes the
    weights under it": a mask no longer changes any value.)"""
    (kind, hp), (params, masks, grads) = config, problem
    for k, m in masks.items():                 # one frozen entry at -0.0: θ − (−0) would make it +0
        params[k].reshape(-1)[np.flatnonzero(m == 0)[:1]] = -0.0
    model, _ = run(kind, hp, params, [masks] + [None] * (len(grads) - 1), grads,
                   each_step=check_frozen, zero=False)
    for k, m in masks.items():
        frozen = m == 0
        assert model.host()[k][frozen].tobytes() == params[k][frozen].tobytes(), k


@SETTINGS
@given(configs(), problems(), st.booleans())
def test_unpruned_entries_evolve_exactly_as_unmasked(config, problem, zero):
    """Bitwise the unmasked optimiser on the entries the mask keeps (state too)."""
    (kind, hp), (params, masks, grads) = config, problem
    rest = [None] * (len(grads) - 1)
    masked, opt_m = run(kind, hp, params, [masks] + rest, grads, zero=zero)
    dense, opt_d = run(kind, hp, params, [{}] + rest, grads)
    pm, pd, bm, bd = masked.host(), dense.host(), buffers(opt_m), buffers(opt_d)
    assert set(bm) == set(bd)
    for k in pm:
        keep = np.ones(pm[k].shape, bool) if k not in masks else masks[k] == 1
        assert np.array_equal(pm[k][keep], pd[k][keep], equal_nan=True), k
        assert set(bm.get(k, {})) == set(bd.get(k, {}))
        for b in bm.get(k, {}):
            assert np.array_equal(bm[k][b][keep], bd[k][b][keep], equal_nan=True), (k, b)


@SETTINGS
@given(configs(), problems(bound=1e3), st.booleans())
def test_matches_float64_textbook_update(config, problem, zero):
    (kind, hp), (params, masks, grads) = config, problem
    schedule = [masks] + [None] * (len(grads) - 1)
    model, _ = run(kind, hp, params, schedule, grads, zero=zero)
    assert_matches_reference(kind, hp, params, schedule, grads, model, zero)


@pytest.mark.parametrize("kind", KINDS)
def test_reference_by_hand(kind):
    """Two steps on one weight, with the numbers written out."""
    hp = {"lr": 0.5, "momentum": 0.5, "betas": (0.5, 0.75), "eps": 0.0625}
    model, _ = run(kind, hp, {"w": np.array([1.0])}, [None, None],
                   [{"w": np.array([2.0])}, {"w": np.array([-4.0])}])
    if kind == "sgd":
        want = 1 - 0.5 * 2 - 0.5 * -4                          # 3
    elif kind == "momentum":
        want = 1 - 0.5 * 2 - 0.5 * (0.5 * 2 - 4)               # v = 2, then -3
    elif kind == "nesterov":
        want = 1 - 0.5 * (2 + 0.5 * 2) - 0.5 * (-4 + 0.5 * -3)
    else:
        m, v, p = 0.0, 0.0, 1.0
        for t, g in ((1, 2.0), (2, -4.0)):
            m, v = 0.5 * m + 0.5 * g, 0.75 * v + 0.25 * g * g
            p -= 0.5 / (1 - 0.5 ** t) * m / (np.sqrt(v) / np.sqrt(1 - 0.75 ** t) + 0.0625)
        want = p
    assert model.host()["w"][0] == pytest.approx(want, rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_weight_decay_by_hand(kind):
    """Weight decay adds λθ to the gradient before the update (L2, PyTorch's weight_decay)."""
    hp = {"lr": 0.5, "wd": 0.25, "momentum": 0.5, "betas": (0.5, 0.75), "eps": 0.0625}
    model, _ = run(kind, hp, {"w": np.array([2.0])}, [None, None],
                   [{"w": np.array([1.0])}, {"w": np.array([-3.0])}])
    p, v, m1, m2 = 2.0, 0.0, 0.0, 0.0
    for t, g in ((1, 1.0), (2, -3.0)):
        g = g + 0.25 * p
        if kind == "sgd":
            p -= 0.5 * g
        elif kind == "momentum":
            v = 0.5 * v + g
            p -= 0.5 * v
        elif kind == "nesterov":
            v = 0.5 * v + g
            p -= 0.5 * (g + 0.5 * v)
        else:
            m1, m2 = 0.5 * m1 + 0.5 * g, 0.75 * m2 + 0.25 * g * g
            p -= 0.5 / (1 - 0.5 ** t) * m1 / (np.sqrt(m2) / np.sqrt(1 - 0.75 ** t) + 0.0625)
    assert model.host()["w"][0] == pytest.approx(p, rel=1e-14, abs=1e-15)


def test_weight_decay_does_not_move_frozen_entries():
    """g ← (g + λθ) ⊙ m: a frozen non-zero weight does not decay."""
    model = FakeModel({"w": np.array([3.0, -2.0, 0.5])}, {"w": np.array([0.0, 1.0, 0.0])})
    opt = SGD(model.params(), 0.5, weight_decay=0.5)
    model.set_grads({"w": np.array([1.0, 2.0, 1.0])})
    step(opt, model)
    np.testing.assert_array_equal(model.host()["w"], [3.0, -2.0 - 0.5 * (2.0 + 0.5 * -2.0), 0.5])


def test_learning_rate_may_change_between_steps():
    model = FakeModel({"w": np.array([1.0])})
    opt = SGD(model.params(), 0.5)
    model.set_grads({"w": np.array([2.0])})
    step(opt, model)
    opt.lr = 0.125
    step(opt, model)
    assert model.host()["w"][0] == 1.0 - 0.5 * 2.0 - 0.125 * 2.0


@st.composite
def mask_replacements(draw):
    """A run whose masks are replaced by smaller ones (new arrays) part-way through."""
    params, masks, grads = draw(problems(bound=1e6, min_steps=2))
    switch = draw(st.integers(1, len(grads) - 1))
    smaller = {}
    for k, v in params.items():
        if k.endswith(".W"):
            extra = draw(mask_like(v.shape, v.dtype))
            smaller[k] = extra * masks[k] if k in masks else extra
    for k, m in smaller.items():
        for g in grads[switch:]:
            g[k][(m == 0) & (g[k] == 0)] = -0.75
    schedule = [masks] + [None] * (switch - 1) + [smaller] + [None] * (len(grads) - switch - 1)
    return params, schedule, grads, smaller


@SETTINGS
@given(configs(), mask_replacements(), st.booleans())
def test_mask_replaced_mid_run_clears_state_under_newly_pruned(config, replacement, zero):
    """A smaller mask installed mid-run: the state under the newly masked entries is
    0 from the next step on (state ← state ⊙ m). With the zero action re-applied
    when the mask shrinks (as IMP's rewind does) the newly pruned weights are 0 and
    stay 0; without it they are frozen at the value they had (no longer zeroed by
    the optimiser). Entries the final mask keeps were never masked: bitwise the
    unmasked run."""
    (kind, hp), (params, schedule, grads, smaller) = config, replacement
    model, opt = run(kind, hp, params, schedule, grads, zero=zero,
                     each_step=check_pruned_zero if zero else check_frozen)
    assert_matches_reference(kind, hp, params, schedule, grads, model, zero)
    dense, _ = run(kind, hp, params, [{}] + [None] * (len(grads) - 1), grads)
    for k, got in model.host().items():
        keep = smaller[k] == 1 if k in smaller else np.ones(got.shape, bool)
        assert np.array_equal(got[keep], dense.host()[k][keep]), k


@pytest.mark.parametrize("kind", ["momentum", "nesterov", "adam"])
def test_newly_pruned_entry_loses_its_state_on_the_next_step(kind):
    """The state of a newly masked entry is 0 after the next step, and the entry
    keeps the value it had (it used to be zeroed; the zero action is now the caller's)."""
    hp = {"lr": 0.1, "momentum": 0.9, "betas": (0.9, 0.999), "eps": 1e-8}
    params = {"w": np.array([1.0, 2.0, 3.0])}
    g = {"w": np.array([1.0, -1.0, 2.0])}
    keep_all, prune_mid = np.ones(3), np.array([1.0, 0.0, 1.0])
    seen = []
    model, opt = run(kind, hp, params, [{"w": keep_all}, None, {"w": prune_mid}], [g] * 3,
                     each_step=lambda m, o, before: seen.append(before["w"][1]), zero=False)
    assert model.host()["w"][1] == seen[2] != 2.0      # moved in steps 1-2, frozen in step 3
    for b, v in buffers(opt)["w"].items():
        assert v[1] == 0, b
        assert v[0] != 0 and v[2] != 0, b


@pytest.mark.parametrize("kind", KINDS)
def test_mask_edited_in_place_takes_effect_at_the_next_step(kind):
    """A writeable mask handed to the optimiser is read at every step: the same array edited
    in place between two steps freezes the entries it now zeroes."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((10, 100)).astype(np.float32)
    mask = np.ones_like(w)                               # writeable: not sealed
    opt = build(kind, {"lr": 1e-2, "momentum": 0.9, "betas": (0.9, 0.999), "eps": 1e-8}, FakeModel({"w": w}))
    p = opt.params["w"]
    opt.step({"w": rng.standard_normal(w.shape).astype(np.float32)}, {"w": mask})
    mask[0, :50] = 0.0                                   # the same array, edited in place
    before = p.copy()
    opt.step({"w": rng.standard_normal(w.shape).astype(np.float32)}, {"w": mask})
    assert p[0, :50].tobytes() == before[0, :50].tobytes()
    assert not np.array_equal(p[0, 50:], before[0, 50:])
    for b, v in buffers(opt).get("w", {}).items():
        assert not np.any(v[0, :50]), b


def test_an_installed_mask_is_sealed_and_refuses_edits_in_place():
    """A layer's mask is its own read-only copy: an edit in place fails loudly instead of
    going unseen by an optimiser that knows the sealed mask by identity; set_mask replaces it."""
    from minilottery.nn.models import build_model
    from minilottery.rng import Streams
    model = build_model("lenet_300_100", Streams.from_seed(0))
    mine = np.ones((10, 100), np.float32)
    model.set_masks({"fc3.W": mine})
    with pytest.raises(ValueError, match="read-only"):
        model.masks()["fc3.W"][0, :50] = 0.0
    mine[0, :50] = 0.0                                   # the caller's array stays the caller's
    assert model.masks()["fc3.W"].all()
    model.set_masks({"fc3.W": mine})
    assert not model.masks()["fc3.W"][0, :50].any()


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), density=st.sampled_from([0.0, 0.3, 1.0]),
       size=st.sampled_from([7, 3 * CHUNK // 2]), steps=st.integers(1, 4), data=st.data())
def test_a_sealed_mask_steps_bitwise_as_a_fresh_copy_each_step(kind, density, size, steps, data):
    """The same sealed mask, known by identity after its first step, gives bit for bit the
    parameters and state that a new writeable copy of it, compared at every step, gives, and
    so do its keep bits with a gradient made with them (not cleared again without weight decay);
    slices with nothing frozen (density 1) and several slices (size > CHUNK) included."""
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(size).astype(np.float32)
    mask = (rng.random(size) < density).astype(np.float32)
    if size > CHUNK:
        mask[:CHUNK] = 1.0                               # one slice with nothing frozen
    sealed = mask.copy()
    sealed.flags.writeable = False
    keep = keep_bits(sealed)                             # as a layer gives them, with its ∂L/∂W
    hp = {"lr": 1e-2, "momentum": 0.9, "betas": (0.9, 0.999), "eps": 1e-8,
          "wd": data.draw(st.sampled_from([0.0, 1e-3]))}
    a, b, c = (build(kind, hp, FakeModel({"w": w})) for _ in range(3))
    for _ in range(steps):
        g = rng.standard_normal(size).astype(np.float32)
        g[rng.random(size) < 0.05] = np.inf              # non-finite gradients stay out of frozen state
        with np.errstate(invalid="ignore", over="ignore"):
            a.step({"w": g * mask}, {"w": sealed})
            b.step({"w": g * mask}, {"w": mask.copy()})
            c.step({"w": np.bitwise_and(g.view(keep.dtype), keep).view(g.dtype)}, {"w": keep})
    for other in (b, c):
        assert a.params["w"].tobytes() == other.params["w"].tobytes()
        for (ka, va), (kb, vb) in zip(sorted(a.state_dict().items()), sorted(other.state_dict().items())):
            assert ka == kb and np.asarray(va).tobytes() == np.asarray(vb).tobytes(), ka


def test_a_layer_makes_its_weight_gradient_with_the_keep_bits_of_a_binary_mask():
    """∂L/∂W = ∂L/∂W_eff ⊙ m: bit for bit the product where m = 1, +0 where m = 0 even under an
    inf; a float multiplier mask has no keep bits and multiplies; frozen() hands the bits over."""
    from minilottery.nn.layers import Dense
    from minilottery.nn.sequential import Sequential
    from minilottery.rng import Streams
    rng = np.random.default_rng(0)
    layer = Dense(6, 4, Streams.from_seed(0).init)
    mask = (rng.random((4, 6)) < 0.5).astype(np.float32)
    layer.set_mask(mask)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    dy = rng.standard_normal((3, 4)).astype(np.float32)
    dy[0, 0] = np.inf
    layer.forward(x, train=True)
    with np.errstate(invalid="ignore", over="ignore"):
        layer.backward(dy)
        product = layer.grad_effective * mask
    g = layer.grads["W"]
    assert g[mask == 1].tobytes() == product[mask == 1].tobytes()
    assert g[mask == 0].view(np.uint32).tolist() == [0] * int((mask == 0).sum())
    assert Sequential([("fc", layer)], (6,)).frozen()["fc.W"] is layer.keep
    layer.set_mask(mask * 0.5)                           # a float multiplier: no bits
    assert layer.keep is None
    layer.forward(x, train=True)
    with np.errstate(invalid="ignore", over="ignore"):
        layer.backward(dy)
        assert layer.grads["W"].tobytes() == (layer.grad_effective * layer.mask).tobytes()
    assert Sequential([("fc", layer)], (6,)).frozen()["fc.W"] is layer.mask


@pytest.mark.parametrize("eps", [0.0, -1e-8])
def test_adam_eps_must_be_positive(eps):
    with pytest.raises(ValueError, match="eps must be positive"):
        make_optimizer("adam", {"w": np.ones(2)}, 1e-3, eps=eps)


@pytest.mark.parametrize("kind", [
    "sgd", "momentum", "nesterov",
    "adam"])
def test_pruning_an_overflowed_weight_gives_exact_zero(kind):
    """A weight (and Adam's v) that overflowed to inf, then pruned with the zero
    action: the weight is exactly 0 (assigned, not multiplied) and so is its state."""
    hp = {"lr": 1.0, "momentum": 0.5, "betas": (0.9, 0.999), "eps": 1e-8}
    big = np.finfo(np.float32).max
    model = FakeModel({"w": np.array([big, 1.0], np.float32)}, {"w": np.ones(2, np.float32)})
    opt = build(kind, hp, model)
    model.set_grads({"w": np.array([-big, 1.0], np.float32)})
    with np.errstate(over="ignore", invalid="ignore"):
        step(opt, model)                   # entry 0 overflows to +inf (weight, and Adam's v)
        model.set_masks({"w": np.array([0.0, 1.0], np.float32)})
        model.zero_action()
        step(opt, model)
    check_pruned_zero(model, opt)


@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_frozen_state_stays_zero_when_weight_decay_overflows(kind):
    hp = {"lr": 0.1, "wd": 10.0, "momentum": 0.5, "betas": (0.9, 0.999), "eps": 1e-8}
    model = FakeModel({"w": np.array([1e308, 1.0])}, {"w": np.array([0.0, 1.0])})
    opt = build(kind, hp, model)
    model.set_grads({"w": np.array([1.0, 1.0])})
    before = model.host()
    with np.errstate(over="ignore", invalid="ignore"):
        step(opt, model)
    check_frozen(model, opt, before)


def test_params_are_updated_in_place():
    model = FakeModel({"w": np.ones(3), "b": np.zeros(2)}, {"w": np.array([1.0, 0.0, 1.0])})
    live = dict(model.params())
    for kind in KINDS:
        opt = build(kind, {"lr": 0.1, "momentum": 0.9, "betas": (0.9, 0.999), "eps": 1e-8}, model)
        model.set_grads({"w": np.ones(3), "b": np.ones(2)})
        before = model.host()
        step(opt, model)
        for k, v in model.params().items():
            assert v is live[k]
            assert not np.array_equal(to_numpy(v), before[k])


def test_optimiser_trains_only_the_arrays_it_was_built_over():
    """Any dict of arrays: a second dict's arrays and unknown gradient keys are ignored."""
    w, other = np.ones(3), np.ones(3)
    opt = SGD({"w": w}, 0.5)
    opt.step({"w": np.ones(3), "other": np.ones(3)})
    np.testing.assert_array_equal(w, 0.5)
    np.testing.assert_array_equal(other, 1.0)


# -- reset, save and load ------------------------------------------------------------
@SETTINGS
@given(configs(), problems(bound=1e6, min_steps=2), st.data())
def test_reset_is_a_fresh_optimiser(config, problem, data):
    (kind, hp), (params, masks, grads) = config, problem
    k = data.draw(st.integers(1, len(grads) - 1))
    model = FakeModel(params, masks)
    opt = build(kind, hp, model)
    for g in grads[:k]:
        model.set_grads(g)
        step(opt, model)
    opt.reset()
    assert step_count(opt) == 0
    for bufs in buffers(opt).values():
        for v in bufs.values():
            assert not np.any(v)
    fresh_model = FakeModel(model.host(), masks)
    fresh = build(kind, hp, fresh_model)
    for g in grads[k:]:
        for m in (model, fresh_model):
            m.set_grads(g)
        step(opt, model)
        step(fresh, fresh_model)
    assert step_count(opt) == step_count(fresh) == len(grads) - k
    for key, v in model.host().items():
        assert np.array_equal(v, fresh_model.host()[key]), key


@SETTINGS
@given(configs(), problems(bound=1e6, min_steps=2), st.data())
def test_state_dict_round_trip_continues_bitwise(config, problem, data):
    (kind, hp), (params, masks, grads) = config, problem
    k = data.draw(st.integers(1, len(grads) - 1))
    model = FakeModel(params, masks)
    opt = build(kind, hp, model)
    for g in grads[:k]:
        model.set_grads(g)
        step(opt, model)
    saved = opt.state_dict()
    clean = copy.deepcopy(saved)
    other_model = FakeModel(model.host(), masks)
    other = build(kind, hp, other_model)
    other.load_state_dict(clean)
    for sd in (saved, clean):              # both sides hold copies, not the live state
        for name, v in sd.items():
            if name != "t":
                v[...] = np.nan
    assert step_count(other) == k
    for g in grads[k:]:
        for m in (model, other_model):
            m.set_grads(g)
        step(opt, model)
        step(other, other_model)
    assert step_count(opt) == step_count(other) == len(grads)
    for key, v in model.host().items():
        assert np.array_equal(v, other_model.host()[key]), key
    a, b = buffers(opt), buffers(other)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert np.array_equal(a[key][name], b[key][name]), (key, name)


# -- dtypes ----------------------------------------------------------------------------
@SETTINGS
@given(configs(), problems(bound=1e3))
def test_dtype_preserved(config, problem):
    (kind, hp), (params, masks, grads) = config, problem
    dtype = params["layer0.W"].dtype
    model, opt = run(kind, hp, params, [masks] + [None] * (len(grads) - 1), grads)
    for v in model.params().values():
        assert v.dtype == dtype
    loaded = build(kind, hp, model)
    loaded.load_state_dict(opt.state_dict())
    for o in (opt, loaded):
        for bufs in buffers(o).values():
            for v in bufs.values():
                assert v.dtype == dtype
    model.set_grads(grads[0])
    step(loaded, model)
    for v in model.params().values():
        assert v.dtype == dtype


# -- hyperparameters -------------------------------------------------------------------------
def tiny_params():
    return {"w": np.ones(2)}


@pytest.mark.parametrize("lr", [0.0, -1e-3, -1.0, float("nan"), -float("inf")])
@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_bad_learning_rate_refused(name, lr):
    cls = {"sgd": SGD, "momentum": Momentum, "adam": Adam}[name]
    with pytest.raises(ValueError):
        cls(tiny_params(), lr)
    with pytest.raises(ValueError):
        make_optimizer(name, tiny_params(), lr)


@pytest.mark.parametrize("wd", [-1e-4, -1.0, float("nan"), -float("inf")])
@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_bad_weight_decay_refused(name, wd):
    with pytest.raises(ValueError, match="weight decay"):
        make_optimizer(name, tiny_params(), 0.1, weight_decay=wd)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_nothing_to_train_refused(name):
    with pytest.raises(ValueError, match="at least one"):
        make_optimizer(name, {}, 0.1)


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_momentum_refused(momentum):
    for nesterov in (False, True):
        with pytest.raises(ValueError):
            Momentum(tiny_params(), 0.1, momentum=momentum, nesterov=nesterov)
    with pytest.raises(ValueError):
        make_optimizer("momentum", tiny_params(), 0.1, momentum=momentum)


@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.999), (0.9, -1e-3),
                                   (1.5, 0.5), (float("nan"), 0.9), (0.9, float("nan"))])
def test_bad_betas_refused(betas):
    with pytest.raises(ValueError):
        Adam(tiny_params(), 1e-3, betas=betas)
    with pytest.raises(ValueError):
        make_optimizer("adam", tiny_params(), 1e-3, betas=betas)


def test_boundary_hyperparameters_accepted():
    Momentum(tiny_params(), 1e-9, momentum=0.0)
    Adam(tiny_params(), 1e-9, betas=(0.0, 0.0))
    Adam(tiny_params(), 1e-9, betas=(0.999999, 0.999999))
    SGD(tiny_params(), 1e-9, weight_decay=0.0)


def test_make_optimizer_builds_each_kind():
    p = tiny_params()
    assert type(make_optimizer("sgd", p, 0.1)) is SGD
    mom = make_optimizer("momentum", p, 0.1, momentum=0.5, nesterov=True)
    assert type(mom) is Momentum
    assert type(make_optimizer("adam", p, 0.1, betas=(0.5, 0.6), eps=1e-3)) is Adam
    # the keyword arguments reach the optimiser: one step matches the hand computation
    w = np.array([1.0])
    opt = make_optimizer("momentum", {"w": w}, 0.5, momentum=0.5, nesterov=True, weight_decay=0.5)
    opt.step({"w": np.array([2.0])})
    g = 2.0 + 0.5 * 1.0
    assert w[0] == pytest.approx(1 - 0.5 * (g + 0.5 * g))


def test_unknown_optimiser_name_lists_choices():
    with pytest.raises(ValueError) as e:
        make_optimizer("rmsprop", tiny_params(), 0.1)
    for choice in ("sgd", "momentum", "adam"):
        assert choice in str(e.value)
