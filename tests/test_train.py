"""The trainer: loss falls, early stopping on validation loss, divergence (a
non-finite loss, or a finite one that explodes), determinism, the configuration's
checks and the learning-rate schedule."""
import dataclasses
import math

import numpy as np
import pytest

from minilottery.data import Splits
from minilottery.errors import ConfigError, DivergenceError, MiniLotteryError
from minilottery.nn.layers import Dense, Flatten
from minilottery.nn.models import build_model
from minilottery.nn.sequential import Sequential
from minilottery.rng import Streams
from minilottery.train import DIVERGENCE_FACTOR, TrainConfig, early_stopping, train
from tests.helpers_data import tiny_mnist


def _run(data, seed=0, **cfg):
    rngs = Streams.from_seed(seed)
    model = build_model("lenet_300_100", rngs)
    return model, train(model, data, TrainConfig(**{"iterations": 60, "eval_every": 20, "lr": 1e-3, **cfg}),
                        rngs, progress=False)


def test_loss_falls_on_real_mnist_subset(mirror, tmp_path):
    from minilottery.data import load_dataset
    full = load_dataset("mnist", data_dir=tmp_path, mirror=mirror)
    sub = Splits(train=tuple(a[:3000] for a in full.train), val=tuple(a[:1000] for a in full.val),
                 test=tuple(a[:1000] for a in full.test))
    _, res = _run(sub, iterations=300, eval_every=50)
    c = res.curves
    assert c["train_loss"][-1] < 0.5 * c["train_loss"][0]
    assert c["val_loss"][-1] < c["val_loss"][0]
    assert res.early_stop_test_acc > 0.85


def test_curves_and_early_stopping_point():
    _, res = _run(tiny_mnist())
    c = res.curves
    np.testing.assert_array_equal(c["iteration"], [20, 40, 60])
    best = int(np.argmin(c["val_loss"]))
    assert res.early_stop_iteration == c["iteration"][best]
    assert res.early_stop_test_acc == c["test_acc"][best]
    assert res.final_test_acc == c["test_acc"][-1]
    assert 0.0 <= res.final_train_acc <= 1.0


def test_early_stopping_takes_first_minimum():
    curves = {"val_loss": np.array([3.0, 1.0, 2.0, 1.0])}
    assert early_stopping(curves) == 1


def test_same_seed_same_run_different_seed_differs():
    data = tiny_mnist()
    m1, r1 = _run(data, seed=3)
    m2, r2 = _run(data, seed=3)
    _, r3 = _run(data, seed=4)
    for k, v in m1.get_weights().items():
        np.testing.assert_array_equal(v, m2.get_weights()[k])
    np.testing.assert_array_equal(r1.curves["val_loss"], r2.curves["val_loss"])
    assert not np.array_equal(r1.curves["val_loss"], r3.curves["val_loss"])


def test_divergence_names_the_interval():
    """A loss that is not finite is seen at the end of its evaluation interval, which the error names."""
    data = tiny_mnist()
    data.train[0][:] = np.nan                                 # garbage in: NaN loss at once
    with pytest.raises(DivergenceError, match=r"diverged in iterations 1–20: a training loss is not finite"):
        _run(data)


def test_too_large_learning_rate_diverges_with_a_clear_error():
    with np.errstate(all="ignore"), pytest.raises(DivergenceError, match=r"diverged in iterations \d+–\d+"):
        _run(tiny_mnist(), optimizer="sgd", lr=1e12)


def test_snapshot_at_iteration_k_is_a_copy():
    rngs = Streams.from_seed(0)
    model = build_model("lenet_300_100", rngs)
    theta0 = model.get_weights()
    res = train(model, tiny_mnist(), TrainConfig(iterations=20, eval_every=10), rngs,
                snapshot_iterations=(0, 10), progress=False)
    for k, v in theta0.items():
        np.testing.assert_array_equal(res.snapshots[0][k], v)
        assert not np.array_equal(res.snapshots[10][k], model.get_weights()[k]) or k.endswith(".b")


def _linear(rngs):
    """A tiny problem: one Dense layer 784 → 10 on MNIST-shaped inputs."""
    fc = Dense(784, 10, rngs.init)
    fc.output = True
    return Sequential([("flatten", Flatten()), ("fc", fc)], input_shape=(1, 28, 28))


def test_finite_but_exploding_loss_diverges():
    """Adam with lr 1e6: every loss stays finite (a single linear layer's logits are
    ~1e8), but the interval's mean loss exceeds DIVERGENCE_FACTOR·ln(10)."""
    rngs = Streams.from_seed(0)
    biggest = []                                             # max |logit| of each training batch
    model = _linear(rngs)
    forward = model.forward

    def spy(x, train=False):
        out = forward(x, train)
        if train:
            biggest.append(float(np.abs(out).max()))
        return out

    model.forward = spy
    cfg = TrainConfig(iterations=30, eval_every=10, lr=1e6, optimizer="adam")
    with pytest.raises(DivergenceError, match=r"diverged by iteration 10: mean training loss") as e:
        train(model, tiny_mnist(), cfg, rngs, progress=False)
    assert isinstance(e.value, MiniLotteryError)
    assert len(biggest) == 10 and all(np.isfinite(biggest))     # finite logits: a finite loss
    assert max(biggest) > 1e6                                   # ... that exploded
    assert f"{DIVERGENCE_FACTOR * math.log(10):.3g}" in str(e.value)


class _ConstantLoss:
    """A 'network' whose logits give every example the loss ``loss`` (labels all 0, K = 2)."""
    output_shape = (2,)

    def __init__(self, loss):
        self.c = math.log(math.expm1(loss))                  # log(1 + e^c) = loss
        self.w = np.zeros(1)

    def forward(self, x, train=False):
        out = np.zeros((x.shape[0], 2))
        out[:, 1] = self.c
        return out

    def backward(self, dy, input_grad=True):
        return None

    def params(self):
        return {"w": self.w}

    def grads(self):
        return {"w": np.zeros(1)}

    def frozen(self):
        return {}

    def get_weights(self):
        return {"w": self.w.copy()}

    def after_step(self):
        pass


def _constant_data(n=20):
    x, y = np.zeros((n, 1), np.float32), np.zeros(n, np.int64)
    return Splits(train=(x, y), val=(x, y), test=(x, y))


@pytest.mark.parametrize("factor,diverges", [(0.99, False), (1.01, True)])
def test_divergence_threshold_is_factor_times_log_classes(factor, diverges):
    """The rule is mean interval loss > DIVERGENCE_FACTOR·ln(K), here with K = 2; the
    trainer also trains anything with the network interface (not only a Sequential)."""
    limit = DIVERGENCE_FACTOR * math.log(2)
    model = _ConstantLoss(factor * limit)
    cfg = TrainConfig(iterations=4, eval_every=2, batch_size=5, lr=0.1, optimizer="sgd")
    if diverges:
        with pytest.raises(DivergenceError, match="iteration 2"):
            train(model, _constant_data(), cfg, Streams.from_seed(0), progress=False)
    else:
        res = train(model, _constant_data(), cfg, Streams.from_seed(0), progress=False)
        np.testing.assert_allclose(res.curves["train_loss"], factor * limit, rtol=1e-9)


@pytest.mark.parametrize("bad", [
    dict(iterations=0), dict(iterations=-5), dict(iterations=2.5), dict(iterations=True),
    dict(lr=0.0), dict(lr=-1e-3), dict(lr=float("nan")), dict(lr=float("inf")),
    dict(batch_size=-1), dict(batch_size=0), dict(eval_every=0), dict(eval_batch=0),
    dict(optimizer="rmsprop"), dict(momentum=1.0), dict(momentum=-0.1), dict(momentum=float("nan")),
    dict(weight_decay=-1e-4), dict(weight_decay=float("inf")), dict(weight_decay=float("nan")),
    dict(schedule="linear"), dict(schedule="Cosine")])
def test_bad_config_refused(bad):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**bad)
    assert isinstance(e.value, ValueError)                   # ConfigError is a ValueError too
    option = "--" + next(iter(bad)).replace("_", "-")
    assert option in str(e.value), str(e.value)


def test_config_is_frozen_and_lists_its_fields():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0
    assert TrainConfig.names() == ("iterations", "lr", "batch_size", "optimizer", "momentum",
                                   "weight_decay", "schedule", "warmup", "milestones", "gamma", "augment",
                                   "eval_every", "eval_batch", "data_order_seed")


@pytest.mark.parametrize("optimizer,kw", [("sgd", {}), ("momentum", {"momentum": 0.5}),
                                          ("adam", {"weight_decay": 1e-3})])
def test_config_builds_its_optimiser(optimizer, kw):
    w = np.ones(3)
    opt = TrainConfig(optimizer=optimizer, lr=0.25, **kw).optimizer_for({"w": w})
    assert opt.lr == 0.25 and opt.weight_decay == kw.get("weight_decay", 0.0)
    if optimizer == "momentum":
        assert opt.mu == 0.5


def _lrs_seen(monkeypatch, cfg):
    """Train LeNet with ``cfg`` and return the optimiser's lr at each step."""
    seen = []
    build = TrainConfig.optimizer_for

    def spy(self, params):
        opt = build(self, params)
        step = opt.step

        def recording_step(grads, masks=None):
            seen.append(opt.lr)
            return step(grads, masks)

        opt.step = recording_step
        return opt

    monkeypatch.setattr(TrainConfig, "optimizer_for", spy)
    rngs = Streams.from_seed(0)
    train(build_model("lenet_300_100", rngs), tiny_mnist(), cfg, rngs, progress=False)
    return seen


def test_cosine_schedule_first_and_last_iteration(monkeypatch):
    """lr·(1 + cos(π(t − 1)/T))/2: the full lr at the first iteration, nearly 0 (still
    positive) at the last, non-increasing in between."""
    T, lr = 12, 0.01
    cfg = TrainConfig(iterations=T, eval_every=6, lr=lr, optimizer="momentum", schedule="cosine")
    assert cfg.lr_at(1) == lr
    assert cfg.lr_at(T) == pytest.approx(0.5 * lr * (1 + math.cos(math.pi * (T - 1) / T)), rel=1e-15)
    assert 0 < cfg.lr_at(T) < 0.02 * lr
    seen = _lrs_seen(monkeypatch, cfg)
    assert len(seen) == T
    assert seen[0] == lr and seen[-1] == cfg.lr_at(T)
    assert seen == [cfg.lr_at(t) for t in range(1, T + 1)]
    assert all(a >= b for a, b in zip(seen, seen[1:]))


def test_constant_schedule_keeps_the_lr(monkeypatch):
    cfg = TrainConfig(iterations=5, eval_every=5, lr=1e-3)
    assert _lrs_seen(monkeypatch, cfg) == [1e-3] * 5


def test_progress_line_names_iteration_losses_and_accuracy(capsys):
    """The last evaluation is always printed; its values are the curves' last entries."""
    rngs = Streams.from_seed(0)
    res = train(build_model("lenet_300_100", rngs), tiny_mnist(),
                TrainConfig(iterations=40, eval_every=20, lr=1e-3), rngs, progress=True)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    c = res.curves
    assert last.startswith("iter 40/40")
    assert f"train_loss {c['train_loss'][-1]:.4f}" in last
    assert f"val_loss {c['val_loss'][-1]:.4f}" in last
    assert f"val_acc {100 * c['val_acc'][-1]:.2f}%" in last
