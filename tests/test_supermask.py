"""Learned supermask: the straight-through gradient at a fixed sample (with and without DWR),
Bernoulli(σ(m)) sampling frequencies, reproducibility from the seed, frozen weights."""
import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import binom

from minilottery import backend
from minilottery.lottery.supermask import LearnedSupermask
from minilottery.nn import Dense, Flatten, ReLU, Sequential, softmax_cross_entropy
from minilottery.nn.optim import Momentum
from minilottery.rng import Streams
from minilottery.train import TrainConfig, train
from tests.helpers_data import tiny_mnist
from tests.reference import rel_error


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield
    backend.set_backend("numpy")


def mlp(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    fc1, fc2 = Dense(6, 5, rng, dtype), Dense(5, 3, rng, dtype)
    fc1.params["b"][...] = rng.standard_normal(5)
    fc2.output = True
    return Sequential([("fc1", fc1), ("relu", ReLU()), ("fc2", fc2)], (6,))


def derivative(f, h=1e-4):
    """f'(0) by the five-point central stencil (error O(h⁴) + rounding ~1e-16/h), float64."""
    return (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h)


@pytest.mark.parametrize("dwr", [False, True])
def test_straight_through_gradient_at_a_fixed_sample(dwr):
    """What is checked: the forward sampled g ~ Bernoulli(σ(m)) and used W_eff = W ⊙ g·c (c = numel/Σg
    per layer with DWR, else 1). Straight-through treats g as σ(m), so
        ∂L/∂m = d/dg̃ L(W ⊙ g̃·c) at g̃ = g, times σ(m)(1 − σ(m)):
    the first factor is taken by central differences in float64 with the sample held fixed."""
    model = mlp(0)
    rng = np.random.default_rng(1)
    net = LearnedSupermask(model, np.random.default_rng(2), dwr=dwr)
    for s in net.scores.values():
        s[...] = rng.normal(0.0, 1.5, s.shape)                   # σ'(m) differs entry by entry
    x, y = rng.standard_normal((7, 6)), rng.integers(0, 3, 7)
    _, d = softmax_cross_entropy(net.forward(x, train=True), y)
    net.backward(d, input_grad=True)
    installed = {k: model.prunable()[k[:-2]].mask.copy() for k in net.scores}   # g·c
    for key, s in net.scores.items():
        g = (installed[key] != 0).astype(np.float64)
        c = g.size / g.sum() if dwr else 1.0
        assert 0 < g.sum() < g.size
        np.testing.assert_array_equal(installed[key], g * c)       # DWR: exactly numel/Σg per layer
        numeric = np.zeros_like(s)
        for idx in np.ndindex(s.shape):
            def loss(eps):
                bump = np.zeros_like(s)
                bump[idx] = eps
                model.set_masks({**installed, key: (g + bump) * c})
                return float(softmax_cross_entropy(model.forward(x), y)[0])
            numeric[idx] = derivative(loss)
        p = expit(s)
        analytic = net.grads()[key]
        assert analytic.dtype == np.float64
        assert rel_error(analytic, numeric * p * (1 - p)) < 1e-6, key


def test_bernoulli_frequency_is_sigma_of_the_score():
    # over T training forwards each entry is kept T times at random: the count of a group of n entries
    # sharing a score m is Binomial(n·T, σ(m)) (independent uniforms from the seeded mask stream)
    rng = np.random.default_rng(0)
    model = Sequential([("fc1", Dense(40, 50, rng, np.float64))], (40,))
    net = LearnedSupermask(model, np.random.default_rng(7))
    levels = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    group = rng.permutation(np.arange(2000) % levels.size).reshape(50, 40)
    net.scores["fc1.W"][...] = levels[group]
    x, turns = rng.standard_normal((2, 40)), 25
    counts = np.zeros((50, 40))
    for _ in range(turns):
        net.forward(x, train=True)
        counts += net.masks_now["fc1.W"]
    for i, m in enumerate(levels):
        n = int((group == i).sum()) * turns
        lo, hi = binom.interval(0.9999, n, expit(m))
        assert lo <= counts[group == i].sum() <= hi, (m, counts[group == i].sum() / n, expit(m))


def test_same_seed_same_masks_and_weights_bitwise_unchanged():
    def run(seed):
        model = mlp(3)
        net = LearnedSupermask(model, np.random.default_rng(seed), score_init=0.5, dwr=True)
        opt = Momentum(net.params(), 10.0)
        x, y = np.random.default_rng(4).standard_normal((8, 6)), np.arange(8) % 3
        masks = []
        for _ in range(5):
            _, d = softmax_cross_entropy(net.forward(x, train=True), y)
            masks.append({k: m.copy() for k, m in net.masks_now.items()})
            net.backward(d)
            opt.step(net.grads())
            net.forward(x)                                       # an evaluation sample too
            masks.append({k: m.copy() for k, m in net.masks_now.items()})
        return model, masks
    before = mlp(3).get_weights()
    model, first = run(11)
    _, again = run(11)
    _, other = run(12)
    for a, b in zip(first, again):
        for k in a:
            assert a[k].tobytes() == b[k].tobytes()
    assert any(not np.array_equal(a[k], b[k]) for a, b in zip(first, other) for k in a)
    for k, v in model.get_weights().items():
        assert v.tobytes() == before[k].tobytes(), k


def test_weights_bitwise_unchanged_by_train():
    streams = Streams.from_seed(0)
    model = Sequential([("flat", Flatten()), ("fc1", Dense(784, 16, streams.init)), ("relu", ReLU()),
                        ("fc2", Dense(16, 10, streams.init))], (1, 28, 28))
    model.params()["fc2.b"][...] = 0.5
    before = model.get_weights()
    net = LearnedSupermask(model, streams.mask, dwr=True)
    s0 = net.get_weights()
    cfg = TrainConfig(iterations=30, lr=100.0, batch_size=20, optimizer="momentum", eval_every=10)
    train(net, tiny_mnist(200, 40), cfg, streams, progress=False, keep_best=True)
    for k, v in model.get_weights().items():
        assert v.tobytes() == before[k].tobytes(), k
    assert any(not np.array_equal(s0[k], v) for k, v in net.get_weights().items())


def test_set_weights_starts_a_fresh_evaluation_mask():
    model = mlp(5)
    net = LearnedSupermask(model, np.random.default_rng(0))
    net.eval_mode = "threshold"                                  # as evaluate_supermask sets it
    x = np.random.default_rng(1).standard_normal((2, 6))
    net.forward(x)                                               # σ(0) = 0.5 is not > 0.5: nothing kept
    assert net.density()[1] == 0.0
    net.set_weights({k: np.full(s.shape, 5.0) for k, s in net.scores.items()})
    net.forward(x)                                               # σ(5) > 0.5: everything kept
    assert net.density()[1] == 1.0
