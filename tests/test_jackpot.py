"""Lottery Jackpots: the released code's swap rule, global-threshold budgets, the start at the
magnitude-pruned network, frozen weights, snapshots, and the fine-tuning baseline."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minilottery import backend
from minilottery.errors import ConfigError
from minilottery.lottery.jackpot import Budgets, Jackpot, layer_budgets, magnitude_masks, swap_update
from minilottery.lottery.resets import reset
from minilottery.nn import Dense, Flatten, ReLU, Sequential, softmax_cross_entropy
from minilottery.nn.optim import Momentum
from minilottery.rng import Streams
from minilottery.train import TrainConfig, evaluate, train
from tests.helpers_data import tiny_mnist
from tests.reference import rel_error


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield
    backend.set_backend("numpy")


def mlp(seed, dtype=np.float64, sizes=(6, 5, 4, 3)):
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append((f"fc{i + 1}", Dense(sizes[i], sizes[i + 1], rng, dtype)))
        layers[-1][1].params["b"][...] = rng.standard_normal(sizes[i + 1])   # "pre-trained": biases too
        if i < len(sizes) - 2:
            layers.append((f"relu{i + 1}", ReLU()))
    layers[-1][1].output = True
    return Sequential(layers, (sizes[0],))


def lenet_like(seed):
    rng = np.random.default_rng(seed)
    layers = [("flat", Flatten()), ("fc1", Dense(784, 16, rng)), ("relu", ReLU()), ("fc2", Dense(16, 10, rng))]
    layers[-1][1].output = True
    for _, layer in layers:
        if "b" in layer.params:
            layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape).astype(np.float32)
    return Sequential(layers, (1, 28, 28))


def derivative(f, h=1e-4):
    """f'(0) by the five-point central stencil (error O(h⁴) + rounding ~1e-16/h), float64."""
    return (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h)


# -- the swap rule -------------------------------------------------------------
def oracle(scores, mask, p):
    """The rule as stated: τ = p-th smallest; A = pruned above τ; D = kept at or below τ."""
    tau = np.sort(scores.ravel())[p - 1]
    a = (mask == 0) & (scores > tau)
    d = (mask != 0) & (scores <= tau)
    return a, d


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 40), data=st.data(), distinct=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_swap_update_follows_the_released_rule(n, data, distinct, seed):
    # invariants: the count of pruned weights never changes; inputs are untouched; A in and D out
    # exactly when |A| = |D| > 0, else the layer is unchanged; without ties it is the top-(n − p) of
    # the scores; an updated mask is a fixed point (applying the rule again changes nothing)
    rng = np.random.default_rng(seed)
    p = data.draw(st.integers(0, n))
    scores = rng.permutation(n).astype(np.float64) if distinct else rng.integers(0, 3, n).astype(np.float64)
    mask = np.ones(n)
    mask[rng.choice(n, p, replace=False)] = 0
    s0, m0 = scores.copy(), mask.copy()
    new, swapped = swap_update(scores, mask, p)
    np.testing.assert_array_equal(scores, s0)
    np.testing.assert_array_equal(mask, m0)
    assert int((new == 0).sum()) == p
    if 0 < p < n:
        a, d = oracle(scores, mask, p)
        if a.sum() == d.sum() > 0:
            expect = mask.copy()
            expect[a], expect[d] = 1, 0
            assert swapped == a.sum()
        else:
            expect = mask
            assert swapped == 0
        np.testing.assert_array_equal(new, expect)
        if distinct:                                          # no ties: top-(n − p) of the scores
            top = np.zeros(n)
            top[np.argsort(scores)[p:]] = 1
            np.testing.assert_array_equal(new, top)
    else:
        np.testing.assert_array_equal(new, mask)
    again, n2 = swap_update(scores, new, p)
    np.testing.assert_array_equal(again, new)
    assert n2 == 0


def test_ties_at_the_threshold_leave_the_layer_unchanged():
    scores = np.array([0.2, 0.5, 0.5, 0.9])
    mask = np.array([1.0, 0.0, 1.0, 0.0])                      # p = 2, τ = 0.5: A = {3}, D = {0, 2}
    new, swapped = swap_update(scores, mask, 2)
    np.testing.assert_array_equal(new, mask)
    assert swapped == 0
    new, swapped = swap_update(np.array([0.2, 0.4, 0.5, 0.9]), mask, 2)   # τ = 0.4: A = {3}, D = {0}
    np.testing.assert_array_equal(new, [0, 0, 1, 1])
    assert swapped == 1


def test_swap_update_refuses_a_mask_off_its_budget():
    with pytest.raises(ConfigError, match="budget"):
        swap_update(np.arange(4.0), np.array([1.0, 0, 1, 1]), 2)


# -- budgets -------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), sparsity=st.floats(0.0, 0.8), include=st.booleans())
def test_global_threshold_budgets_add_up_to_the_requested_sparsity(seed, sparsity, include):
    # invariants: Σ p_l = N − ⌊N(1 − s)⌋ over the searched layers; per layer p_l weights lie at or
    # below the threshold and the rest at or above it; the classifier is kept dense unless included
    model = mlp(seed % 1000, sizes=(9, 8, 7, 5))
    weights, kinds = model.get_weights(), model.weight_kinds()
    b = layer_budgets(weights, sparsity, include_classifier=include, kinds=kinds)
    searched = ["fc1.W", "fc2.W"] + (["fc3.W"] if include else [])
    assert list(b.pruned) == searched
    assert b.dense == (() if include else ("fc3.W",))
    n = sum(weights[k].size for k in searched)
    goes = n - int(n * (1 - sparsity))
    assert sum(b.pruned.values()) == goes
    assert abs(b.sparsity - sparsity) <= 1 / n + 1e-12           # within one weight of the request
    assert b.sparsity_all == goes / (9 * 8 + 8 * 7 + 7 * 5)
    masks = magnitude_masks(weights, b)
    assert set(masks) == set(searched)
    for k in searched:
        w, m = np.abs(weights[k]), masks[k]
        assert int((m == 0).sum()) == b.pruned[k]
        if b.pruned[k]:
            assert w[m == 0].max() <= b.threshold <= w[m == 1].min()
    flat = np.sort(np.concatenate([np.abs(weights[k]).ravel() for k in searched]))
    if goes:
        assert b.threshold == flat[goes - 1]                     # the global cut


def test_budgets_break_ties_at_the_threshold_by_layer_then_index():
    w = {"a.W": np.array([[1.0, 2.0, 2.0, 5.0]]), "b.W": np.array([[2.0, 3.0, 4.0, 6.0]])}
    b = layer_budgets(w, 0.375, include_classifier=True)         # N = 8: ⌊8 · 0.625⌋ = 5 kept, 3 go
    assert b.pruned == {"a.W": 3, "b.W": 0}                      # the 2 of layer b, tied at the cut, stays
    assert b.threshold == 2.0
    masks = magnitude_masks(w, b)
    np.testing.assert_array_equal(masks["a.W"], [[0, 0, 0, 1]])
    np.testing.assert_array_equal(masks["b.W"], [[1, 1, 1, 1]])
    with pytest.raises(ConfigError, match="every weight"):                # 3 of 6 go: all of layer a
        layer_budgets({"a.W": np.array([1.0, 1.0]), "b.W": np.array([5.0, 6, 7, 8])}, 0.34,
                      include_classifier=True)


def test_budget_errors():
    model = mlp(0)
    with pytest.raises(ConfigError, match="kinds"):
        layer_budgets(model.get_weights(), 0.5)
    for bad in (-0.1, 1.0, True):
        with pytest.raises(ConfigError):
            layer_budgets(model.get_weights(), bad, kinds=model.weight_kinds())


# -- the search ----------------------------------------------------------------
def test_search_starts_exactly_at_the_magnitude_pruned_network():
    model = lenet_like(0)
    theta = model.get_weights()
    b = layer_budgets(theta, 0.7, kinds=model.weight_kinds())
    net = Jackpot(model, b)
    pruned = lenet_like(0)
    reset(pruned, theta, magnitude_masks(theta, b))              # W ⊙ m, pruned weights exactly 0
    data = tiny_mnist(20, 50)
    x, y = data.test
    np.testing.assert_array_equal(net.forward(x), pruned.forward(x))
    assert evaluate(net, x, y) == evaluate(pruned, x, y)
    for k, s in net.scores.items():                              # 1 where kept, 0.99 where pruned
        assert set(np.unique(s)) == {np.float32(0.99), np.float32(1.0)}


def half_jackpot(seed):
    """(model, its 50% budgets, a Jackpot over it at those budgets, a batch x, its labels y)."""
    model = mlp(seed)
    b = layer_budgets(model.get_weights(), 0.5, kinds=model.weight_kinds())
    rng = np.random.default_rng(seed + 1)
    return model, b, Jackpot(model, b), rng.standard_normal((8, 6)), rng.integers(0, 3, 8)


def test_score_gradient_is_straight_through_and_masks_follow_the_rule_after_every_step():
    model, b, net, x, y = half_jackpot(1)
    _, d = softmax_cross_entropy(net.forward(x, train=True), y)
    net.backward(d, input_grad=True)
    fixed = {k: m.copy() for k, m in net.masks_now.items()}
    for key in net.scores:                          # ∂L/∂s = ∂L/∂W_eff ⊙ W = d/dε L(W ⊙ (m + ε e))
        numeric = np.zeros_like(fixed[key])
        for idx in np.ndindex(numeric.shape):
            def loss(eps):
                bump = np.zeros_like(numeric)
                bump[idx] = eps
                model.set_masks({**fixed, key: fixed[key] + bump})
                return float(softmax_cross_entropy(model.forward(x), y)[0])
            numeric[idx] = derivative(loss)
        assert rel_error(net.grads()[key], numeric) < 1e-6, key
    model.set_masks(fixed)
    opt = Momentum(net.params(), 0.5, weight_decay=5e-4)
    swaps = 0
    for _ in range(15):
        _, d = softmax_cross_entropy(net.forward(x, train=True), y)
        net.backward(d)
        before = {k: m.copy() for k, m in net.current.items()}
        opt.step(net.grads())
        expect = {k: swap_update(net.scores[k], before[k], b.pruned[k])[0] for k in before}
        net.after_step()                                         # the update is applied here
        for k in expect:
            np.testing.assert_array_equal(net.current[k], expect[k])
            assert int((net.current[k] == 0).sum()) == b.pruned[k]
        swaps += sum(net.last_swaps.values())
    assert swaps > 0


def test_weights_and_biases_bitwise_unchanged_and_counts_fixed_after_a_search():
    streams = Streams.from_seed(0)
    model = lenet_like(1)
    before = model.get_weights()
    b = layer_budgets(before, 0.8, kinds=model.weight_kinds())
    net = Jackpot(model, b)
    start = net.masks()
    cfg = TrainConfig(iterations=40, lr=0.1, batch_size=20, optimizer="momentum", weight_decay=5e-4,
                      schedule="cosine", eval_every=10)
    result = train(net, tiny_mnist(200, 40), cfg, streams, progress=False, keep_best=True)
    after = model.get_weights()
    for k in before:
        assert before[k].tobytes() == after[k].tobytes(), k
    final = net.masks()
    assert set(final) == {"fc1.W"}                               # the classifier has no mask: dense
    assert model.prunable()["fc2"].mask is None
    assert int((final["fc1.W"] == 0).sum()) == b.pruned["fc1.W"]
    assert not np.array_equal(final["fc1.W"], start["fc1.W"])    # the search moved the mask
    assert "fc1.W.mask" in result.best_weights


def test_snapshot_holds_the_masks_and_restores_them():
    model, b, net, x, y = half_jackpot(3)
    opt = Momentum(net.params(), 0.5)
    snap = net.get_weights()
    for _ in range(10):
        _, d = softmax_cross_entropy(net.forward(x, train=True), y)
        net.backward(d)
        opt.step(net.grads())
        net.after_step()
    net.set_weights(snap)
    for k, m in net.masks().items():
        np.testing.assert_array_equal(m, snap[k + ".mask"])
        np.testing.assert_array_equal(net.scores[k], snap[k])
    with pytest.raises(ConfigError, match="mask"):
        net.set_weights({k: v for k, v in snap.items() if not k.endswith(".mask")})


def test_start_masks_must_keep_the_budget():
    model = mlp(5)
    b = layer_budgets(model.get_weights(), 0.5, kinds=model.weight_kinds())
    with pytest.raises(ConfigError, match="budget"):
        Jackpot(model, b, masks={k: np.ones(model.weight_counts()[k]) for k in b.pruned})
    with pytest.raises(ConfigError):
        Jackpot(model, b, kept_score=0.9, pruned_score=0.99)
    assert isinstance(b, Budgets)


# -- the fine-tuning baseline: rewind + train, nothing more ------------------------
def test_finetuning_trains_only_the_kept_weights_under_the_fixed_mask():
    streams = Streams.from_seed(1)
    model = lenet_like(2)
    theta = model.get_weights()
    b = layer_budgets(theta, 0.8, kinds=model.weight_kinds())
    masks = magnitude_masks(theta, b)
    reset(model, theta, masks)
    cfg = TrainConfig(iterations=30, lr=0.01, batch_size=20, optimizer="momentum", eval_every=10)
    train(model, tiny_mnist(200, 40), cfg, streams, progress=False)
    after = model.get_weights()
    m = masks["fc1.W"]
    assert not after["fc1.W"][m == 0].any()                      # pruned weights stay exactly 0
    assert not np.array_equal(after["fc1.W"][m == 1], theta["fc1.W"][m == 1])
    np.testing.assert_array_equal(model.masks()["fc1.W"], m)
    assert not np.array_equal(after["fc2.W"], theta["fc2.W"])    # the dense classifier trains
