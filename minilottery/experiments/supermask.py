"""Supermask experiments: at initialisation, learned (Zhou et al.) and edge-popup, resumable.

One store per experiment (kind ``supermask``), one group per run (layout.py spells them):
θ0, the dense run (at_init only), and one run per frozen weights × fraction kept (at_init,
edgepopup) or DWR setting (learned).
"""
import json
import math
from dataclasses import dataclass
from functools import partial

from minilottery import config, layout
from minilottery.config import option
from minilottery.layout import fraction_name
from minilottery.backend import asarray, to_numpy
from minilottery.data import epochs
from minilottery.errors import ConfigError
from minilottery.experiments.base import Experiment, check_common, plain
from minilottery.lottery.edgepopup import DEFAULTS as EP
from minilottery.lottery.edgepopup import EdgePopup, kaiming_weights
from minilottery.lottery.pruning import check_kept
from minilottery.lottery.supermask import LearnedSupermask, at_init_masks, evaluate_supermask, install_weights
from minilottery.nn.models import INPUT_SHAPES, MODELS, build_model
from minilottery.plan import Job, Task
from minilottery.protocol import paper_protocol
from minilottery.rng import Streams
from minilottery.train import TrainConfig, evaluate, train

KIND = "supermask"
METHODS = ("at_init", "learned", "edgepopup")
WEIGHTS = {"at_init": ("theta0", "signed_constant"), "learned": ("theta0", "signed_constant"),
           "edgepopup": ("kaiming", "signed_kaiming")}
DWR = {"plain": (False,), "dwr": (True,), "both": (False, True)}
DEFAULT_KEEP = {"at_init": (0.8, 0.5, 0.33, 0.2, 0.1, 0.05, 0.02), "edgepopup": (0.1, 0.3, 0.5, 0.7, 0.9)}

# The papers' training of the scores: Zhou et al.'s learned supermask (2,000 epochs of SGD momentum,
# lr 100, batch 250) and edge-popup's (lottery/edgepopup.py DEFAULTS); at_init trains the dense run
# with the LTH's.
PAPER_TRAIN = {
    "learned": TrainConfig(iterations=epochs(2000, 250, "mnist"), lr=100.0, batch_size=250, optimizer="momentum",
                           momentum=0.9, eval_every=epochs(1, 250, "mnist")),
    "edgepopup": TrainConfig(iterations=epochs(EP["epochs"], EP["batch_size"], "mnist"), lr=EP["lr"],
                             batch_size=EP["batch_size"], optimizer=EP["optimizer"], momentum=EP["momentum"],
                             weight_decay=EP["weight_decay"], schedule=EP["schedule"],
                             eval_every=epochs(1, EP["batch_size"], "mnist")),
}


@dataclass
class SupermaskConfig:
    method: str = option("learned", "at_init, learned or edgepopup", choices=METHODS)
    model: str = option("lenet_300_100", "network", choices=MODELS)
    dataset: str = option("mnist", "dataset", choices=tuple(INPUT_SHAPES))
    width: float = option(1.0, "channel multiplier of resnet20 and vgg* (CPU-sized runs)")
    train: TrainConfig = option(TrainConfig, "training of the scores (at_init: of the dense run)")
    weights: tuple = option((), "frozen weights: theta0, signed_constant (at_init, learned); kaiming, "
                            "signed_kaiming (edgepopup)", kind=str)
    keep: tuple = option((), "fractions kept: at_init's sweep, edgepopup's k values", kind=float)
    dwr: str = option("both", "learned: dynamic weight rescaling off, on, or both", choices=tuple(DWR),
                      applies=("method", ("learned",)))
    score_init: float = option(0.0, "learned: initial score m (σ(m) the initial keep probability)",
                               applies=("method", ("learned",)))
    eval_samples: int = option(10, "learned: sampled masks averaged in the final test accuracy",
                               applies=("method", ("learned",)))
    seed: int = option(0, "seed of θ0, data order and masks")

    def __post_init__(self):
        self.weights, self.keep = tuple(self.weights), tuple(float(k) for k in self.keep)
        if self.method not in METHODS:
            raise ConfigError(f"unknown --method {self.method!r}; choose one of {METHODS}")
        bad = [w for w in self.weights if w not in WEIGHTS[self.method]]
        if bad:
            raise ConfigError(f"--weights {bad} do not apply to {self.method}; choose from {WEIGHTS[self.method]}")
        if self.method == "learned" and self.keep:
            raise ConfigError(f"--keep {list(self.keep)} does not apply to learned: its density is learned "
                              f"(steer it with --score-init)")
        if any(not 0.0 < k <= 1.0 for k in self.keep):
            raise ConfigError(f"--keep fractions must be in (0, 1], got {list(self.keep)}")
        if len({fraction_name(k) for k in self.keep}) != len(self.keep) or len(set(self.weights)) != len(self.weights):
            raise ConfigError(f"--keep {list(self.keep)} or --weights {list(self.weights)} repeat a value")
        if not self.weights or (self.method != "learned" and not self.keep):
            raise ConfigError(f"{self.method} needs at least one --weights value"
                              + ("" if self.method == "learned" else " and one --keep fraction"))
        check_common(self.model, self.dataset, self.seed, {"": self.train}, width=self.width)
        if self.eval_samples < 1:
            raise ConfigError(f"--eval-samples must be at least 1, got {self.eval_samples}")
        if not math.isfinite(self.score_init):
            raise ConfigError(f"--score-init must be a finite number, got {self.score_init}")

    @classmethod
    def paper(cls, method="learned", model="lenet_300_100", **given):
        """The papers' protocol for ``method`` and ``model``, with flat overrides."""
        p = paper_protocol(model)
        base = dict(method=method, model=model, dataset=p.dataset, train=PAPER_TRAIN.get(method, p.train),
                    weights=WEIGHTS.get(method, ()), keep=DEFAULT_KEEP.get(method, ()))
        return config.build(cls, base, given)

    def to_dict(self):
        return {"kind": KIND, **config.to_dict(self)}

    def runs(self):
        """[(group name, weights, variable)] of the experiment, in order."""
        if self.method == "learned":
            return [(layout.supermask_run(w, d), w, d) for w in self.weights for d in DWR[self.dwr]]
        return [(layout.supermask_run(w, k), w, k) for w in self.weights for k in self.keep]


class SupermaskExperiment(Experiment):
    """A supermask experiment as a plan of runs (minilottery/plan.py), run or resumed into a store."""
    kind = KIND

    def tasks(self):
        cfg, at_init = self.cfg, self.cfg.method == "at_init"
        out = [Task(layout.THETA0, (), self.draw_theta0)]
        if at_init:
            out.append(Task(layout.DENSE, (layout.THETA0,), self.dense_job, "dense"))
        deps = (layout.THETA0, layout.DENSE) if at_init else (layout.THETA0,)
        for i, (group, weights, var) in enumerate(cfg.runs()):
            out.append(Task(group, deps, partial(self.job, i, group, weights, var), group))
        return out

    def draw_theta0(self):
        """θ0: the seed's trial-0 draw, as IMP's."""
        return _model(self.cfg, Streams.from_seed(self.cfg.seed, 0)).get_weights(), {}

    def dense_job(self):
        return Job(_dense, (self.cfg, self.data_ref, self.theta0()))

    def theta0(self, group=layout.THETA0):
        """θ0 (or the dense run's weights) as stored, checked against the configuration's network first."""
        like = self.draw_theta0()[0]
        return self.store.read(group, expect=like if group == layout.THETA0 else {"weights": like})[0]

    def job(self, i, group, weights, var):
        cfg = self.cfg
        dense = self.theta0(layout.DENSE)["weights"] if cfg.method == "at_init" else None
        key = (cfg.seed, 0, METHODS.index(cfg.method), i)               # the run's own seeded streams
        return Job(RUNS[cfg.method], (cfg, self.data_ref, self.theta0(), dense, weights, var,
                                      key, f"{group}: "))

    @staticmethod
    def describe(attrs):
        """The line a finished run gets."""
        if "test_acc" not in attrs:
            return f"dense: early stop {attrs['early_stop_iteration']}, test {100 * attrs['early_stop_test_acc']:.2f}%"
        return f"test {100 * attrs['test_acc']:.2f}% at density {100 * attrs['density']:.1f}%"

    @staticmethod
    def summary(store):
        """[attrs and group name of every finished run] of a supermask store, for reports and --json."""
        out = []
        for name in store.groups(layout.RUNS):
            a = store.attrs(layout.supermask_group(name))
            if a.get("completed"):
                out.append({**plain(a), "group": name})
        return out


def _model(cfg, rngs):
    return build_model(cfg.model, rngs, dataset=cfg.dataset, width=cfg.width)


def _dense(cfg, data_ref, theta0):
    """The trained dense network (at_init's mask comes from it), on whichever process runs it."""
    model, rngs = _model(cfg, Streams.from_seed(cfg.seed, 0)), Streams.from_seed(cfg.seed, 0, 9)
    model.set_weights(theta0)
    res = train(model, data_ref.load(), cfg.train, rngs, label="dense: ")
    return {"weights": model.get_weights(), "curves": res.curves}, res.summary()


def _at_init(cfg, data_ref, theta0, dense, weights, keep, key, label):
    rngs, data = Streams.from_seed(*key), data_ref.load()
    ws = {k: v for k, v in theta0.items() if k.endswith(".W")}
    masks = at_init_masks(ws, {k: dense[k] for k in ws}, {k: keep for k in ws}, rngs.mask)
    model = _model(cfg, rngs)
    install_weights(model, theta0, weights)
    model.set_masks(masks)                                          # W ⊙ m, no training at all
    _, val_acc = evaluate(model, *(asarray(a) for a in data.val))
    _, test_acc = evaluate(model, *(asarray(a) for a in data.test))
    per_layer = {k: float(m.mean()) for k, m in masks.items()}
    density = sum(float(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
    return ({"masks": {k: m.astype(bool) for k, m in masks.items()}},
            {"test_acc": test_acc, "val_acc": val_acc, "density": density, "keep": keep,
             "density_per_layer": json.dumps(per_layer), "weights": weights, "method": cfg.method})


def _learned(cfg, data_ref, theta0, dense, weights, dwr, key, label):
    rngs, data = Streams.from_seed(*key), data_ref.load()
    model = _model(cfg, rngs)
    install_weights(model, theta0, weights)
    net = LearnedSupermask(model, rngs.mask, score_init=cfg.score_init, dwr=dwr)
    res = train(net, data, cfg.train, rngs, label=label, keep_best=True)
    net.set_weights(res.best_weights)
    ev = evaluate_supermask(net, *(asarray(a) for a in data.test), samples=cfg.eval_samples)
    return ({"scores": res.best_weights, "curves": res.curves},
            {**res.summary(), **{k: v for k, v in ev.items() if not isinstance(v, dict)},
             "density": ev["expected_density"], "dwr": dwr, "weights": weights, "method": cfg.method,
             "density_per_layer": json.dumps(ev["threshold_density_per_layer"])})


def _edgepopup(cfg, data_ref, theta0, dense, weights, k, key, label):
    rngs, data = Streams.from_seed(*key), data_ref.load()
    model = _model(cfg, rngs)
    kaiming_weights(model, rngs.init, signed=weights == "signed_kaiming")
    net = EdgePopup(model, k, rngs.mask)
    res = train(net, data, cfg.train, rngs, label=label, keep_best=True)
    net.set_weights(res.best_weights)
    _, test_acc = evaluate(net, *(asarray(a) for a in data.test))
    check_kept({key: to_numpy(m) for key, m in net.masks_now.items()}, net.kept_counts(), label)
    per_layer, density = net.density()
    return ({"scores": res.best_weights, "curves": res.curves},
            {**res.summary(), "test_acc": test_acc, "density": density, "keep": k, "weights": weights,
             "method": cfg.method, "density_per_layer": json.dumps(per_layer)})


RUNS = {"at_init": _at_init, "learned": _learned, "edgepopup": _edgepopup}

