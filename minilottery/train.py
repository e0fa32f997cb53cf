"""Iteration-based training with the papers' evaluation schedule.

The papers count iterations (mini-batches), not epochs. Every ``eval_every``
iterations the trainer records the mean training loss and accuracy of the
mini-batches since the last evaluation, and the loss and accuracy on the
validation and test splits. The *early-stopping iteration* (the papers'
measure of learning speed) is the evaluation point of minimum validation loss,
found after training, as in the Lottery Ticket paper; the test set is never
used to choose it.

The trainer trains anything that exposes ``forward``, ``backward``,
``params()``, ``grads()``, ``frozen()``, ``get_weights()`` and ``after_step()``
(see nn/sequential.py): a network's weights, or the scores of a supermask.
After every optimiser step it calls ``after_step()``: where a jackpot applies
its swap rule and edge-popup takes its new top-k (a no-op elsewhere).

Divergence rule: a run has diverged when a training loss is not finite, when
the mean training loss over an evaluation interval exceeds
DIVERGENCE_FACTOR × ln(K), K the number of classes (ten times the loss of a
uniform guess), or when at an evaluation point a metric or a trained parameter
(a weight, a score) is not finite; it is reported, naming the interval, never
stored as a result.

Synchronisation budget (what makes a GPU wait): the training losses and correct
counts accumulate on the device, and evaluation sums on the device too; the
host reads them, with every parameter's finiteness, in one transfer per
evaluation point (:func:`read_together`), where the divergence rule and the
progress line look at them. A training step reads nothing back. (A loss that is
not finite poisons its interval's sum, since every loss is ≥ 0, so the rule
sees it at the interval's end.)
"""
import functools
import math
from dataclasses import dataclass, field, fields

import numpy as np

from minilottery.augment import AUGMENTATIONS, standard_augmentation
from minilottery.backend import resident, to_numpy, xp_of
from minilottery.data import Batches
from minilottery.nn.losses import loss_and_correct, softmax_cross_entropy
from minilottery.errors import ConfigError, DivergenceError
from minilottery.nn.optim import OPTIMIZERS, make_optimizer
from minilottery.progress import Progress, iteration_lines
from minilottery.rng import Streams

DIVERGENCE_FACTOR = 10.0
SCHEDULES = ("constant", "cosine")
AUGMENTS = ("none", "standard") + tuple(AUGMENTATIONS)


@dataclass(frozen=True)
class TrainConfig:
    """How one network (or one set of scores) is trained; the papers' values are in protocol.py."""
    iterations: int = field(default=50_000, metadata={"help": "training iterations (mini-batches)", "length": True})
    lr: float = field(default=1.2e-3, metadata={"help": "learning rate"})
    batch_size: int = field(default=60, metadata={"help": "examples per mini-batch"})
    optimizer: str = field(default="adam", metadata={"help": "optimiser", "choices": tuple(OPTIMIZERS)})
    momentum: float = field(default=0.9, metadata={"help": "momentum μ (optimizer momentum only)",
                                                   "applies": ("optimizer", ("momentum",))})
    weight_decay: float = field(default=0.0, metadata={"help": "weight decay λ: g ← g + λθ"})
    schedule: str = field(default="constant", metadata={
        "help": "learning-rate schedule: constant, or cosine lr·(1 + cos(π t/T))/2 per iteration",
        "choices": SCHEDULES})
    warmup: int = field(default=0, metadata={
        "help": "linear warmup: the rate is multiplied by min(1, t/warmup) at iteration t (0: none)"})
    milestones: tuple = field(default=(), metadata={
        "help": "step schedule: after each of these iterations the rate is multiplied by --gamma"})
    gamma: float = field(default=0.1, metadata={"help": "factor of the step schedule at each milestone"})
    augment: str = field(default="none", metadata={
        "help": "training-data augmentation drawn from the data stream: random crop (4-pixel zero padding) "
                "[+ horizontal flip]; standard: crop_flip for cifar10 and fashion_mnist, crop for mnist "
                "(mirrored digits are other digits); evaluation is never augmented", "choices": AUGMENTS})
    eval_every: int = field(default=100, metadata={"help": "iterations between evaluations", "length": True})
    eval_batch: int = field(default=100, metadata={"help": "examples per evaluation batch (speed only)"})
    data_order_seed: int = field(default=None, metadata={
        "help": "seed of the mini-batch order alone (the init and everything else keep the run's seed); "
                "None: the order comes from the run's own data stream"})

    def __post_init__(self):
        for name in ("iterations", "batch_size", "eval_every", "eval_batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown --optimizer {self.optimizer!r}; choose one of {tuple(OPTIMIZERS)}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"--momentum must be in [0, 1), got {self.momentum}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ConfigError(f"--weight-decay must be non-negative, got {self.weight_decay}")
        d = self.data_order_seed
        if d is not None and (isinstance(d, bool) or int(d) != d or d < 0):
            raise ConfigError(f"--data-order-seed must be a non-negative integer, got {d}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown --schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if isinstance(self.warmup, bool) or int(self.warmup) != self.warmup or self.warmup < 0:
            raise ConfigError(f"--warmup must be a non-negative integer, got {self.warmup}")
        object.__setattr__(self, "milestones", tuple(self.milestones))
        m = self.milestones
        if any(isinstance(v, bool) or int(v) != v or v < 1 for v in m) or list(m) != sorted(set(m)):
            raise ConfigError(f"--milestones must be increasing positive integers, got {list(m)}")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"--gamma must be in (0, 1], got {self.gamma}")
        if self.augment not in AUGMENTS:
            raise ConfigError(f"unknown --augment {self.augment!r}; choose one of {AUGMENTS}")

    def optimizer_for(self, params):
        """The configured optimiser over ``params`` ({name: array})."""
        kw = {"weight_decay": self.weight_decay} if self.weight_decay else {}
        if self.optimizer == "momentum":
            kw["momentum"] = self.momentum
        return make_optimizer(self.optimizer, params, self.lr, **kw)

    def lr_at(self, it):
        """Learning rate for iteration ``it`` (1-based): the schedule × γ^(milestones passed) × warmup."""
        lr = self.lr
        if self.schedule == "cosine":
            lr = 0.5 * self.lr * (1.0 + math.cos(math.pi * (it - 1) / self.iterations))
        passed = sum(1 for m in self.milestones if m < it)          # milestone m: iterations m+1.. drop
        if passed:
            lr *= self.gamma ** passed
        if self.warmup:
            lr *= min(1.0, it / self.warmup)                         # lr · t/k for t < k
        return lr

    def augmentation(self, dataset):
        """The augmentation this config asks for on ``dataset`` (None for none)."""
        if self.augment == "none":
            return None
        return standard_augmentation(dataset) if self.augment == "standard" else self.augment

    @classmethod
    def names(cls):
        return tuple(f.name for f in fields(cls))


CURVES = ("iteration", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")


@dataclass
class TrainResult:
    curves: dict                      # name -> 1-D array over evaluation points (CURVES)
    early_stop_iteration: int         # iteration of minimum validation loss
    early_stop_test_acc: float        # test accuracy there
    early_stop_val_acc: float
    final_test_acc: float
    final_train_acc: float            # accuracy on the whole training split at the end
    snapshots: dict = field(default_factory=dict)  # iteration -> host weights (for rewinding)
    best_weights: dict = None         # host weights at the early-stopping iteration (keep_best=True)

    def summary(self):
        return {k: getattr(self, k) for k in ("early_stop_iteration", "early_stop_test_acc",
                                              "early_stop_val_acc", "final_test_acc", "final_train_acc")}


def evaluation_sums(model, x, y, batch_size=100):
    """(Σ loss, Σ correct) of the model on device arrays x, y in eval mode, as device scalars."""
    total, correct = 0.0, 0                                 # per run, for a stacked model
    for i in range(0, x.shape[0], batch_size):
        loss_sum, n_right = loss_and_correct(model.forward(x[i:i + batch_size]), y[i:i + batch_size])
        total = total + loss_sum.astype(np.float64)         # float64 sums of float32 batch sums
        correct = correct + n_right
    return total, correct


def read_together(*values):
    """Device scalars (or equal-shaped arrays) to one host float64 array, in one transfer (one sync)."""
    return to_numpy(xp_of(values[0]).stack([v.astype(np.float64) for v in values]))


def _read(*scalars):
    return [float(v) for v in read_together(*scalars)]


def check_divergence(train_loss, limit, start, it, cfg, label=""):
    """The divergence rule on an interval's mean training loss (iterations start..it)."""
    if not math.isfinite(train_loss):
        raise DivergenceError(f"{label}training diverged in iterations {start}–{it}: a training loss "
                              f"is not finite (lr {cfg.lr}; try a smaller learning rate)")
    if train_loss > limit:
        raise DivergenceError(f"{label}training diverged by iteration {it}: mean training loss "
                              f"{train_loss:.3g} exceeds {DIVERGENCE_FACTOR:g}·ln(classes) = {limit:.3g} "
                              f"(lr {cfg.lr}; try a smaller learning rate)")


def evaluate(model, x, y, batch_size=100):
    """(mean loss, accuracy) of the model on device arrays x, y, in eval mode (one read)."""
    total, correct = _read(*evaluation_sums(model, x, y, batch_size))
    return total / x.shape[0], correct / x.shape[0]


def not_finite(model, metrics, finite=None):
    """Names of the metrics ({name: float}) and trained parameters of ``model`` that are not finite.

    finite: the parameters' finiteness flags if already read (in params() order)."""
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    params = model.params()
    if finite is not None:
        bad += [k for k, fine in zip(params, finite) if not fine]
    elif params:
        xp = xp_of(next(iter(params.values())))
        ok = to_numpy(xp.stack([xp.isfinite(p).all() for p in params.values()]))   # one transfer
        bad += [k for k, fine in zip(params, ok) if not fine]
    return bad


def early_stopping(curves):
    """Index of the evaluation point of minimum validation loss (first one on ties)."""
    return int(np.argmin(curves["val_loss"]))


def _quiet_overflow(f):
    """NumPy's overflow warnings off while training: the divergence rule reports what they would."""
    @functools.wraps(f)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return f(*args, **kwargs)
    return quiet


@_quiet_overflow
def train(model, data, cfg, rngs, snapshot_iterations=(), progress=None, label="", keep_best=False):
    """Train ``model`` in place on ``data`` (a data.Splits) and return a TrainResult.

    rngs: an rng.Streams (its ``data`` stream orders the mini-batches, unless
    ``cfg.data_order_seed`` is set: then the data stream of that seed alone does).
    snapshot_iterations: iterations at which to keep a host copy of the weights
    (0 is before the first step), for late resetting.
    keep_best: keep a host copy of the weights at the early-stopping iteration.
    progress: per-iteration progress lines (None: as the executor running this decided, progress.shown).
    """
    opt = cfg.optimizer_for(model.params())
    limit = DIVERGENCE_FACTOR * math.log(model.output_shape[-1])
    order = rngs.data if cfg.data_order_seed is None else Streams.from_seed(cfg.data_order_seed).data
    batches = Batches(*data.train, batch_size=cfg.batch_size, rng=order,
                      augment=cfg.augmentation(getattr(data, "name", None)))
    val = tuple(resident(a) for a in data.val)          # uploaded once per process, kept on the device
    test = tuple(resident(a) for a in data.test)
    curves = {k: [] for k in CURVES}
    snapshots = {0: model.get_weights()} if 0 in snapshot_iterations else {}
    bar = Progress(cfg.iterations, label=f"{label}iter ",
                   enabled=iteration_lines() if progress is None else progress)
    xp, start = xp_of(val[0]), 1
    loss_sum, right = xp.zeros((), np.float64), xp.zeros((), np.int64)   # on the device, over the interval
    best_val, best_weights = math.inf, None
    for it in range(1, cfg.iterations + 1):
        xb, yb = next(batches)
        logits = model.forward(xb, train=True)
        loss, dlogits = softmax_cross_entropy(logits, yb)
        model.backward(dlogits, input_grad=False)   # dL/dx of the data is never needed
        opt.lr = cfg.lr_at(it)
        opt.step(model.grads(), model.frozen())
        model.after_step()                          # what the step changes besides θ: swaps, top-k
        loss_sum += loss
        right += (logits.argmax(axis=1) == yb).sum()
        if it in snapshot_iterations:
            snapshots[it] = model.get_weights()
        if it % cfg.eval_every == 0 or it == cfg.iterations:
            steps, seen = it - start + 1, (it - start + 1) * cfg.batch_size
            lsum, n_right, vsum, v_right, tsum, t_right, *finite = _read(
                loss_sum, right, *evaluation_sums(model, *val, cfg.eval_batch),
                *evaluation_sums(model, *test, cfg.eval_batch),
                *(xp.isfinite(p).all() for p in model.params().values()))   # the interval's one read
            train_loss = lsum / steps                       # mean over the steps since the last evaluation
            check_divergence(train_loss, limit, start, it, cfg, label)
            vl, va = vsum / val[0].shape[0], v_right / val[0].shape[0]
            tl, ta = tsum / test[0].shape[0], t_right / test[0].shape[0]
            bad = not_finite(model, {"val_loss": vl, "test_loss": tl}, finite)
            if bad:
                raise DivergenceError(f"{label}training diverged by iteration {it}: {', '.join(bad[:4])} "
                                      f"{'is' if len(bad) == 1 else 'are'} not finite (lr {cfg.lr}; try a "
                                      f"smaller learning rate)")
            for k, v in zip(CURVES, (it, train_loss, n_right / seen, vl, va, tl, ta)):
                curves[k].append(v)
            if keep_best and vl < best_val:                 # the first minimum, as early_stopping()
                best_val, best_weights = vl, model.get_weights()
            bar.update(it, train_loss=f"{train_loss:.4f}", val_loss=f"{vl:.4f}",
                       val_acc=f"{100 * va:.2f}%", test_acc=f"{100 * ta:.2f}%")
            loss_sum, right, start = xp.zeros((), np.float64), xp.zeros((), np.int64), it + 1
    _, train_acc = evaluate(model, *(resident(a) for a in data.train), cfg.eval_batch)
    return result(curves, train_acc, snapshots, best_weights)


def result(curves, train_acc, snapshots=None, best_weights=None):
    """The TrainResult of lists of curve values and the final training accuracy."""
    curves = {k: np.asarray(v, dtype=np.int64 if k == "iteration" else np.float64) for k, v in curves.items()}
    best = early_stopping(curves)
    return TrainResult(curves=curves, early_stop_iteration=int(curves["iteration"][best]),
                       early_stop_test_acc=float(curves["test_acc"][best]),
                       early_stop_val_acc=float(curves["val_acc"][best]),
                       final_test_acc=float(curves["test_acc"][-1]), final_train_acc=float(train_acc),
                       snapshots=snapshots or {}, best_weights=best_weights)


