"""Property tests of the mask contract (nn/layers.py, nn/sequential.py, nn/optim.py).

- A prunable layer's forward uses W_eff = W ⊙ m + (1 − m) ⊙ F (m a 0/1 mask or a
  float multiplier, F a frozen fill); installing, replacing or removing masks and
  fills never changes a parameter.
- ``opt.step(grads, masks)`` freezes the entries where a mask is 0: their values do
  not change (bit for bit), their state is held at 0.
- The LTH's ``zero`` action (``resets.reset``) puts pruned weights at exactly 0,
  and training keeps them and their optimiser state there.
- An optimiser is built over any dict of arrays: here the scores of a mask.
Each test states its invariant in its docstring.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import expit

from minilottery.backend import to_numpy
from minilottery.lottery.resets import reset
from minilottery.nn import Conv2d, Dense, Flatten, ReLU, Sequential, softmax_cross_entropy
from minilottery.nn.optim import make_optimizer

SETTINGS = settings(max_examples=50, deadline=None)
DTYPES = (np.float32, np.float64)
KINDS = ("sgd", "momentum", "nesterov", "adam")


# -- strategies ----------------------------------------------------------------
def finite(dtype, bound=None):
    kw = dict(allow_nan=False, allow_infinity=False, width=32 if dtype == np.float32 else 64)
    if bound is not None:
        kw.update(min_value=-bound, max_value=bound)
    return st.one_of(st.just(-0.0), st.just(0.0), st.floats(**kw))


def values(dtype, shape, bound=None):
    return hnp.arrays(dtype, shape, elements=finite(dtype, bound))


def masks_of(dtype, shape, multipliers=True):
    """0/1 masks, or float multipliers with zeros (-0.0 counts as 0)."""
    choices = [0.0, 1.0, -0.0, 0.5, 2.0, -1.5] if multipliers else [0.0, 1.0]
    return hnp.arrays(dtype, shape, elements=st.sampled_from(choices))


@st.composite
def optimisers(draw, lr=st.floats(1e-4, 1.0)):
    """(name, keywords, label) of an optimiser: SGD, momentum, nesterov or Adam, ± weight decay."""
    label = draw(st.sampled_from(KINDS))
    kw = {"weight_decay": draw(st.sampled_from([0.0, 1e-4, 0.5]))}
    if label in ("momentum", "nesterov"):
        kw.update(momentum=draw(st.floats(0.0, 0.99)), nesterov=label == "nesterov")
    if label == "adam":
        kw.update(betas=(draw(st.floats(0.0, 0.99)), draw(st.floats(0.0, 0.9999))),
                  eps=draw(st.sampled_from([1e-8, 1e-3])))
    return ("momentum" if label == "nesterov" else label), kw, draw(lr)


def build(spec, params):
    name, kw, lr = spec
    return make_optimizer(name, params, lr, **kw)


def state_of(opt):
    """{param key: [host buffers]}."""
    out = {}
    for name, v in opt.state_dict().items():
        if name != "t":
            out.setdefault(name.split("/", 1)[1], []).append(np.asarray(to_numpy(v)))
    return out


def small_net(dtype, seed=0):
    """conv (3,2,2,2) → ReLU → flatten → fc (4, 27), on inputs (2, 4, 4)."""
    rng = np.random.default_rng(seed)
    return Sequential([("conv", Conv2d(2, 3, 2, rng, dtype=dtype)), ("relu", ReLU()),
                       ("flatten", Flatten()), ("fc", Dense(27, 4, rng, dtype=dtype))],
                      input_shape=(2, 4, 4))


W_SHAPES = {"conv.W": (3, 2, 2, 2), "fc.W": (4, 27)}


def snapshot(model):
    return {k: to_numpy(v).tobytes() for k, v in model.params().items()}


# -- 1. masks never change a parameter ----------------------------------------------
@st.composite
def mask_operations(draw, dtype):
    """A sequence of installs, replacements and removals of masks and fills, through
    Sequential.set_masks or a layer's set_mask, with forward/backward passes and
    refused (wrong-shape) installs mixed in."""
    ops = []
    for _ in range(draw(st.integers(1, 8))):
        what = draw(st.sampled_from(["set_masks", "set_mask", "remove", "forward", "bad"]))
        keys = draw(st.lists(st.sampled_from(sorted(W_SHAPES)), min_size=1, max_size=2, unique=True))
        if what in ("set_masks", "set_mask"):
            masks = {k: draw(masks_of(dtype, W_SHAPES[k])) for k in keys}
            fills = {k: draw(values(dtype, W_SHAPES[k], bound=1e6)) for k in keys if draw(st.booleans())}
            ops.append((what, masks, fills))
        elif what == "remove":
            ops.append((what, {k: None for k in keys}, {}))
        else:
            ops.append((what, keys, {}))
    return ops


@SETTINGS
@given(st.sampled_from(DTYPES), st.data())
def test_mask_operations_leave_every_parameter_bitwise_unchanged(dtype, data):
    """Invariant: any sequence of installing, replacing and removing masks and fills
    (and running the network in between) leaves every parameter bitwise unchanged,
    whatever its values (-0.0 and huge ones included); masks() follows the operations."""
    model = small_net(dtype)
    for k, v in model.params().items():
        v[...] = data.draw(values(dtype, v.shape), label=k)
    before = snapshot(model)
    installed = set()
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 4)).astype(dtype)
    for what, arg, fills in data.draw(mask_operations(dtype), label="operations"):
        if what == "set_masks" or what == "remove":
            model.set_masks(arg, fills)
            installed |= {k for k, m in arg.items() if m is not None}
            installed -= {k for k, m in arg.items() if m is None}
        elif what == "set_mask":
            for k, m in arg.items():
                model.prunable()[k[:-2]].set_mask(m, fills.get(k))
                installed.add(k)
        elif what == "forward":
            with np.errstate(all="ignore"):
                y = model.forward(x, train=True)
                model.backward(np.ones_like(y))
        else:
            for k in arg:
                with pytest.raises(ValueError):
                    model.set_masks({k: np.ones(W_SHAPES[k][::-1] + (1,), dtype)})
                with pytest.raises(ValueError):
                    model.prunable()[k[:-2]].set_mask(np.ones(W_SHAPES[k], dtype),
                                                      np.ones((1,) + W_SHAPES[k], dtype))
        assert snapshot(model) == before, what
        assert set(model.masks()) == set(model.frozen()) == installed, what


# -- 2. an optimiser step with a mask changes only unmasked entries ---------------------
@st.composite
def masked_steps(draw, bound=None):
    """(dtype, params, warm-up gradients, mask, gradient): a warm-up builds up state
    (without a mask), then one step with a mask."""
    dtype = draw(st.sampled_from(DTYPES))
    shapes = {"a": draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)), "b": (draw(st.integers(1, 4)),)}
    params = {k: draw(values(dtype, s, bound)) for k, s in shapes.items()}
    warm = [{k: draw(values(dtype, s, bound)) for k, s in shapes.items()} for _ in range(draw(st.integers(0, 3)))]
    masks = {"a": draw(masks_of(dtype, shapes["a"]))}
    if draw(st.booleans()):
        masks["b"] = draw(masks_of(dtype, shapes["b"]))
    grads = {k: draw(values(dtype, s, bound)) for k, s in shapes.items()}
    return dtype, params, warm, masks, grads


@SETTINGS
@given(optimisers(), masked_steps())
def test_a_masked_step_changes_only_unmasked_entries(spec, case):
    """Invariant: in a step with masks, every entry where the mask is 0 (or -0.0) keeps
    its value bit for bit (any finite value, -0.0 included), whatever the state the
    optimiser built up before, for SGD, momentum, nesterov and Adam, with and without
    weight decay; masks with float multipliers included."""
    _, params, warm, masks, grads = case
    live = {k: v.copy() for k, v in params.items()}
    opt = build(spec, live)
    with np.errstate(all="ignore"):
        for g in warm:
            opt.step(g)
        before = {k: v.copy() for k, v in live.items()}
        opt.step(grads, masks)
    for k, m in masks.items():
        frozen = m == 0
        assert live[k][frozen].tobytes() == before[k][frozen].tobytes(), k
    for k, v in live.items():                               # the step was taken in place
        assert v.dtype == params[k].dtype and v.shape == params[k].shape


@SETTINGS
@given(optimisers(), masked_steps(bound=1e3))
def test_a_masked_step_holds_frozen_state_at_zero_and_moves_the_rest_as_unmasked(spec, case):
    """Invariant (0/1 masks, values that cannot overflow): after a masked step the state
    of frozen entries is 0, and every entry the mask keeps, and its state, is bitwise
    what the unmasked optimiser makes of it."""
    dtype, params, warm, masks, grads = case
    masks = {k: (m != 0).astype(dtype) for k, m in masks.items()}          # 0/1 only
    runs = []
    for step_masks in (masks, None):
        live = {k: v.copy() for k, v in params.items()}
        opt = build(spec, live)
        for g in warm:
            opt.step(g)
        opt.step(grads, step_masks)
        runs.append((live, state_of(opt)))
    (masked, s_masked), (dense, s_dense) = runs
    for k, v in masked.items():
        keep = masks[k] == 1 if k in masks else np.ones(v.shape, bool)
        assert v[keep].tobytes() == dense[k][keep].tobytes(), k
        for a, b in zip(s_masked.get(k, []), s_dense.get(k, [])):
            assert a[keep].tobytes() == b[keep].tobytes(), k
            assert np.all(a[~keep] == 0), k


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_an_entry_whose_mask_is_not_zero_evolves_as_unmasked(name):
    """Invariant: an entry whose mask is not 0 evolves exactly as the unmasked optimiser
    on the same gradient. Two identical networks with the same float-multiplier mask
    (0.5 and 2.0, no zeros: nothing is frozen) trained on the same batch, one stepped
    with opt.step(grads, frozen()), the other with opt.step(grads), must agree."""
    nets, opts = [], []
    for _ in range(2):
        rng = np.random.default_rng(0)
        net = Sequential([("fc", Dense(5, 3, rng, dtype=np.float64))], input_shape=(5,))
        net.set_masks({"fc.W": np.tile([0.5, 2.0, 0.5, 2.0, 0.5], (3, 1))})
        nets.append(net)
        opts.append(make_optimizer(name, net.params(), 0.05))
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    for _ in range(3):
        for net, opt, masked in zip(nets, opts, (True, False)):
            net.backward(softmax_cross_entropy(net.forward(x), y)[1])
            opt.step(net.grads(), net.frozen() if masked else None)
    np.testing.assert_array_equal(nets[0].params()["fc.W"], nets[1].params()["fc.W"])


# -- 3. the zero action: pruned weights and their state stay exactly 0 ------------------
@st.composite
def zero_action_runs(draw):
    dtype = draw(st.sampled_from(DTYPES))
    spec = draw(optimisers(lr=st.floats(1e-3, 0.1)))
    masks = {k: draw(masks_of(dtype, s, multipliers=False)) for k, s in W_SHAPES.items()
             if draw(st.integers(0, 3)) > 0}
    steps = draw(st.integers(2, 10))
    shrink_at = draw(st.integers(1, steps - 1))
    smaller = {k: m * draw(masks_of(dtype, m.shape, multipliers=False)) for k, m in masks.items()}
    for k, s in W_SHAPES.items():
        if k not in masks and draw(st.booleans()):
            smaller[k] = draw(masks_of(dtype, s, multipliers=False))       # a mask appears mid-run
    return dtype, spec, masks, steps, shrink_at, smaller, draw(st.integers(0, 2**16))


def check_pruned_zero(model, opt):
    params, grads, state = model.params(), model.grads(), state_of(opt)
    for k, m in model.masks().items():
        pruned = to_numpy(m) == 0
        assert np.all(to_numpy(params[k])[pruned] == 0), f"pruned weight of {k} moved"
        if k in grads:                                      # (none before the first backward)
            assert np.all(to_numpy(grads[k])[pruned] == 0), f"pruned weight of {k} has a gradient"
        for buf in state.get(k, []):
            assert np.all(buf[pruned] == 0), f"state of a pruned weight of {k} is not 0"


@SETTINGS
@given(zero_action_runs())
def test_zero_action_keeps_pruned_weights_and_state_at_exactly_zero(run):
    """Invariant: after resets.reset (weights θ, masks installed, pruned weights ← 0),
    pruned weights and all their optimiser state are exactly 0 after every training
    step (opt.step(grads, masks)), also when the mask shrinks mid-run and the zero
    action is applied again then (newly pruned weights had non-zero state)."""
    dtype, spec, masks, steps, shrink_at, smaller, seed = run
    model = small_net(dtype, seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 2, 4, 4)).astype(dtype)
    y = rng.integers(0, 4, 6)
    reset(model, model.get_weights(), masks)
    opt = build(spec, model.params())
    check_pruned_zero(model, opt)
    for t in range(1, steps + 1):
        if t == shrink_at + 1:
            reset(model, model.get_weights(), smaller)                  # the zero action again
        logits = model.forward(x, train=True)
        model.backward(softmax_cross_entropy(logits, y)[1], input_grad=False)
        opt.step(model.grads(), model.frozen())
        check_pruned_zero(model, opt)


# -- 4. a frozen fill appears exactly in the forward and never trains -------------------
@st.composite
def filled_layers(draw):
    dtype = draw(st.sampled_from(DTYPES))
    conv = draw(st.booleans())
    shape = (3, 2, 2, 2) if conv else (4, 5)
    w = draw(values(dtype, shape, bound=1e3))
    mask = draw(masks_of(dtype, shape))
    fill = draw(values(dtype, shape, bound=1e3))
    return dtype, conv, w, mask, fill, draw(optimisers(lr=st.floats(1e-3, 0.1))), draw(st.integers(0, 2**16))


def make_layer(conv, dtype, rng):
    return Conv2d(2, 3, 2, rng, dtype=dtype) if conv else Dense(5, 4, rng, dtype=dtype)


@SETTINGS
@given(filled_layers())
def test_frozen_fill_appears_exactly_in_the_forward_and_never_trains(case):
    """Invariant: W_eff == W ⊙ m + (1 − m) ⊙ F element by element (the forward equals
    that of a dense twin holding W_eff), and after training steps the fill still shows
    exactly where m = 0 (effective_weight() there is F), W there is bitwise unchanged,
    and the formula still holds with the trained W."""
    dtype, conv, w, mask, fill, spec, seed = case
    rng = np.random.default_rng(seed)
    layer, twin = make_layer(conv, dtype, rng), make_layer(conv, dtype, rng)
    layer.params["W"][...] = w
    layer.set_mask(mask, fill)
    one = dtype(1)

    def expected():
        return layer.params["W"] * mask + (one - mask) * fill

    assert np.array_equal(layer.effective_weight(), expected())
    x = rng.standard_normal((3, 2, 3, 3) if conv else (3, 5)).astype(dtype)
    twin.params["W"][...] = expected()
    twin.params["b"][...] = layer.params["b"]
    assert np.array_equal(layer.forward(x), twin.forward(x))

    frozen = mask == 0
    w0 = layer.params["W"].copy()
    opt = build(spec, layer.params)
    for _ in range(3):
        y = layer.forward(x, train=True)
        layer.backward(rng.standard_normal(y.shape).astype(dtype))
        opt.step(layer.grads, {"W": layer.mask})
    w_eff = layer.effective_weight()
    assert np.array_equal(w_eff[frozen], fill[frozen])
    assert layer.params["W"][frozen].tobytes() == w0[frozen].tobytes()
    assert np.array_equal(w_eff, expected())


# -- 5. an optimiser over scores trains a mask --------------------------------------------
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), dtype=st.sampled_from(DTYPES))
def test_sgd_on_scores_trains_a_mask_and_never_touches_w(seed, dtype):
    """Invariant: an optimiser built over a dict of SCORE arrays trains them. A Dense
    layer with frozen random W uses the float multiplier m = σ(s) (installed each step);
    the scores' gradient is grad_effective ⊙ W ⊙ σ'(s); SGD on the scores over a fixed
    batch lowers the loss, and W (and the bias) stay bitwise unchanged."""
    rng = np.random.default_rng(seed)
    layer = Dense(8, 3, rng, dtype=dtype)
    w0, b0 = layer.params["W"].tobytes(), layer.params["b"].tobytes()
    scores = {"s": rng.standard_normal((3, 8)).astype(dtype)}
    opt = make_optimizer("sgd", scores, 2.0)
    x, y = rng.standard_normal((32, 8)).astype(dtype), rng.integers(0, 3, 32)

    def loss_and_score_grad():
        sig = expit(scores["s"]).astype(dtype)
        layer.set_mask(sig)
        loss, dlogits = softmax_cross_entropy(layer.forward(x, train=True), y)
        layer.backward(dlogits)
        return float(loss), layer.grad_effective * layer.params["W"] * sig * (1 - sig)

    losses = []
    for _ in range(40):
        loss, g = loss_and_score_grad()
        losses.append(loss)
        opt.step({"s": g})
    losses.append(loss_and_score_grad()[0])
    assert losses[-1] < losses[0] - 1e-3, losses
    assert layer.params["W"].tobytes() == w0 and layer.params["b"].tobytes() == b0


def test_score_gradient_matches_central_differences():
    """The scores' gradient grad_effective ⊙ W ⊙ σ'(s) used above is ∂L/∂s (float64)."""
    rng = np.random.default_rng(0)
    layer = Dense(4, 3, rng, dtype=np.float64)
    s = rng.standard_normal((3, 4))
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)

    def loss():
        layer.set_mask(expit(s))
        return float(softmax_cross_entropy(layer.forward(x), y)[0])

    loss()
    layer.backward(softmax_cross_entropy(layer.forward(x), y)[1])
    sig = expit(s)
    analytic = layer.grad_effective * layer.params["W"] * sig * (1 - sig)
    numeric = np.zeros_like(s)
    for i in np.ndindex(s.shape):
        old = s[i]
        s[i] = old + 1e-6
        plus = loss()
        s[i] = old - 1e-6
        minus = loss()
        s[i] = old
        numeric[i] = (plus - minus) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
