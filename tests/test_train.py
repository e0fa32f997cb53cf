"""The trainer: loss falls, early stopping on validation loss, divergence, determinism."""
import numpy as np
import pytest

from minilottery.data import Splits
from minilottery.nn.models import build_model
from minilottery.rng import Streams
from minilottery.train import DivergenceError, TrainConfig, early_stopping, train
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


def test_divergence_names_the_iteration():
    data = tiny_mnist()
    data.train[0][:] = np.nan                                 # garbage in: NaN loss at once
    with pytest.raises(DivergenceError, match=r"diverged at iteration 1\b"):
        _run(data)


def test_too_large_learning_rate_diverges_with_a_clear_error():
    with np.errstate(all="ignore"), pytest.raises(DivergenceError, match=r"diverged at iteration \d+"):
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


@pytest.mark.parametrize("bad", [dict(iterations=0), dict(lr=0.0), dict(batch_size=-1), dict(eval_every=0)])
def test_bad_config_refused(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


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
