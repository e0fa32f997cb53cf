"""Instability analysis (Frankle, Dziugaite, Roy & Carbin, ICML 2020), resumable.

For each trial t, level L (0: the dense network; L > 0: the IMP mask of level L, read from
an IMP experiment file) and rewind iteration k:
  start   = W_k ⊙ m_L, W_k the dense network after k iterations from θ0 (W_0 = θ0);
  copies  = two trainings of the start for the remaining T − k iterations of the schedule,
            differing only in their SGD noise: data-order seeds ``order_seeds`` (trial t adds 100·t)
            and their own dropout streams;
  path    = test (and training) error at ``points`` evenly spaced α of (1 − α) W₁ + α W₂
            (masks shared); instability = max error − mean of the endpoints' errors. A network with
            BatchNorm gets its running statistics recomputed at every point, endpoints included: the
            average of the batch statistics of ``bn_batches`` training mini-batches (a fixed seeded
            draw), forwarded in train mode (``interpolation.recompute_batchnorm``).
W_k comes from a ``parent``: the dense network trained max(k) iterations from θ0 with the
IMP dense run's streams and schedule, so it is the IMP experiment's own dense trajectory.
The masks are those of the IMP experiment's levels (found with its own reset, θ0 by
default), rewound here to each k.

Store (kind ``instability``): θ0, the parent, the IMP masks, the copies and the paths (layout.py).
"""
from dataclasses import dataclass, fields, replace
from functools import partial

import numpy as np

from minilottery import config, layout
from minilottery.config import option
from minilottery.errors import ConfigError
from minilottery.experiments.base import Experiment, check_common
from minilottery.lottery.interpolation import POINTS, batchnorm_layers, error_curve, instability, recompute_batchnorm
from minilottery.lottery.pruning import ones_masks
from minilottery.lottery.resets import reset
from minilottery.nn.models import INPUT_SHAPES, MODELS, build_model
from minilottery.plan import Job, Task
from minilottery.protocol import paper_protocol
from minilottery.rng import Streams
from minilottery.train import TrainConfig, train

KIND = "instability"
COPY, BN = 7, 8             # the copies' streams (seed, t, COPY, c); BatchNorm batches' (seed, BN)


@dataclass(frozen=True)
class Segment(TrainConfig):
    """Iterations start + 1 .. start + iterations of a schedule ``total`` iterations long."""
    start: int = 0
    total: int = 1

    def lr_at(self, it):
        full = TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})
        return replace(full, iterations=self.total).lr_at(self.start + it)


def segment(cfg, start, stop, **kw):
    """``cfg`` (a TrainConfig) restricted to its iterations start + 1 .. stop."""
    base = {f.name: getattr(cfg, f.name) for f in fields(TrainConfig)}
    return Segment(**{**base, "iterations": stop - start, **kw}, start=start, total=cfg.iterations)


@dataclass
class InstabilityConfig:
    model: str = option("lenet_300_100", "network", choices=MODELS)
    dataset: str = option("mnist", "dataset", choices=tuple(INPUT_SHAPES))
    train: TrainConfig = option(TrainConfig, "training of the parent and of every copy")
    rewind_iteration: tuple = option((0, 100, 500, 2000), "iterations k the copies start from")
    level: tuple = option((0,), "levels: 0 the dense network, L > 0 the IMP mask of level L")
    imp: str = option("", "IMP experiment file whose levels' masks (and θ0) are used")
    trials: int = option(1, "independent trials, each with its own θ0")
    points: int = option(POINTS, "evenly spaced α in [0, 1] on the path")
    train_examples: int = option(None, "training examples whose error is measured on the path "
                                       "(default: all; 0: none)")
    order_seeds: tuple = option((1, 2), "data-order seeds of the two copies (trial t adds 100·t)")
    bn_batches: int = option(100, "BatchNorm networks: training mini-batches (of --batch-size) whose statistics, "
                                  "averaged, become the running statistics at every point of the path")
    dropout: float = option(0.0, "dropout rate after hidden dense layers")
    seed: int = option(0, "experiment seed (θ0, the parent's data order)")

    def __post_init__(self):
        self.rewind_iteration = tuple(int(k) for k in self.rewind_iteration)
        self.level, self.order_seeds = tuple(int(v) for v in self.level), tuple(int(s) for s in self.order_seeds)
        check_common(self.model, self.dataset, self.seed, {"": self.train}, self.dropout)
        ks, T = self.rewind_iteration, self.train.iterations
        if not ks or len(set(ks)) != len(ks) or any(not 0 <= k < T for k in ks):
            raise ConfigError(f"--rewind-iteration {list(ks)}: give distinct iterations in [0, {T}) "
                              f"(--iterations {T})")
        if not self.level or len(set(self.level)) != len(self.level) or min(self.level) < 0:
            raise ConfigError(f"--level {list(self.level)}: give distinct levels, 0 or more")
        if max(self.level) > 0 and not self.imp:
            raise ConfigError(f"--level {list(self.level)} needs the IMP experiment of those levels (--imp FILE)")
        if len(self.order_seeds) != 2 or self.order_seeds[0] == self.order_seeds[1] or min(self.order_seeds) < 0:
            raise ConfigError(f"--order-seeds needs two different non-negative seeds, got {list(self.order_seeds)}")
        for name, low in (("trials", 1), ("points", 2), ("bn_batches", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if self.train_examples is not None and self.train_examples < 0:
            raise ConfigError(f"--train-examples must be 0 or more, got {self.train_examples}")

    @classmethod
    def paper(cls, model="lenet_300_100", **given):
        p = paper_protocol(model, given.get("dropout", 0.0))
        return config.build(cls, dict(model=model, dataset=p.dataset, train=p.train), given)

    def to_dict(self):
        return {"kind": KIND, **config.to_dict(self)}


group = layout.rewound


class InstabilityExperiment(Experiment):
    """An instability analysis as a plan of runs (minilottery/plan.py), run or resumed into a store."""
    kind = KIND
    json_key = "paths"

    def tasks(self):
        cfg, out = self.cfg, []
        for t in range(cfg.trials):
            theta0, parent = group(t, "theta0"), group(t, "parent")
            out.append(Task(theta0, (), partial(self.theta0, t)))
            if max(cfg.rewind_iteration) > 0:
                out.append(Task(parent, (theta0,), partial(self.parent_job, t), f"trial {t} parent"))
            for level in cfg.level:
                mask = group(t, "mask", level)
                if level:
                    out.append(Task(mask, (), partial(self.imp_mask, t, level)))
                for k in cfg.rewind_iteration:
                    deps = (theta0,) + ((parent,) if k else ()) + ((mask,) if level else ())
                    copies = tuple(group(t, f"copy_{c}", level, k) for c in (0, 1))
                    for c, name in enumerate(copies):
                        out.append(Task(name, deps, partial(self.copy_job, t, level, k, c),
                                        f"trial {t} level {level} k {k} copy {c}"))
                    out.append(Task(group(t, "path", level, k), copies + ((mask,) if level else ()),
                                    partial(self.path_job, t, level, k), f"trial {t} level {level} k {k} path"))
        return out

    # -- inputs --------------------------------------------------------------------------------
    def imp_store(self):
        from minilottery.store import ExperimentStore
        return ExperimentStore.open_readonly(self.cfg.imp)

    def theta0(self, t):
        """θ0 of trial t: the IMP file's, or the seed's draw (``Streams.from_seed(seed, t)``, as IMP's)."""
        if self.cfg.imp:
            return self.imp_store().read(layout.run(t, name="theta0"))[0], {}
        cfg = self.cfg
        return build_model(cfg.model, Streams.from_seed(cfg.seed, t), dataset=cfg.dataset,
                           dropout=cfg.dropout).get_weights(), {}

    def imp_mask(self, t, level):
        return self.imp_store().read(layout.run(t, level, "mask"))[0], {"level": level}

    def mask(self, t, level, like):
        if not level:
            return ones_masks({k: v for k, v in like.items() if k.endswith(".W")})
        return {k: v.astype(np.float32) for k, v in self.store.read(group(t, "mask", level))[0].items()}

    def start(self, t, k):
        """W_k of trial t (θ0 at k = 0)."""
        if k == 0:
            return self.store.read(group(t, "theta0"))[0]
        return self.store.read(group(t, "parent"))[0]["snapshots"][f"{k:06d}"]

    # -- jobs ----------------------------------------------------------------------------------
    def parent_job(self, t):
        cfg = self.cfg
        ks = tuple(k for k in cfg.rewind_iteration if k)
        key = (cfg.seed, t, 0, 0, 0)                     # the streams of IMP's dense run of trial t
        return Job(parent_run, (cfg, self.data_ref, key, self.store.read(group(t, "theta0"))[0],
                                segment(cfg.train, 0, max(ks)), ks, f"trial {t} parent: "))

    def copy_job(self, t, level, k, c):
        cfg = self.cfg
        start = self.start(t, k)
        seg = segment(cfg.train, k, cfg.train.iterations, data_order_seed=cfg.order_seeds[c] + 100 * t)
        return Job(copy_run, (cfg, self.data_ref, (cfg.seed, t, COPY, c), start, self.mask(t, level, start), seg,
                              f"trial {t} level {level} k {k} copy {c}: "))

    def path_job(self, t, level, k):
        w = [self.store.read(group(t, f"copy_{c}", level, k))[0]["weights"] for c in (0, 1)]
        return Job(path_run, (self.cfg, self.data_ref, w[0], w[1], self.mask(t, level, w[0]), level, k))

    @staticmethod
    def describe(attrs):
        if "instability" in attrs:
            return (f"Pm {100 * attrs['Pm']:.1f}%, test error {100 * attrs['endpoint_test_errors'][0]:.2f}% / "
                    f"{100 * attrs['endpoint_test_errors'][1]:.2f}%, instability {100 * attrs['instability']:.2f} "
                    f"points")
        return f"final test {100 * attrs['final_test_acc']:.2f}%"

    @staticmethod
    def summary(store):
        """[one row per (trial, level, k)]: the error curves and the instability, for reports and --json."""
        out = []
        for t in (int(n) for n in store.groups(layout.TRIALS)):
            for level in (int(n) for n in store.groups(layout.levels(t))):
                for k in (int(n) for n in store.groups(group(t, level=level) + "/rewind")):
                    g = group(t, "path", level, k)
                    if not store.done(g):
                        continue
                    arrays, attrs = store.read(g)
                    row = {"trial": t, "level": level, "rewind_iteration": k}
                    row.update({n: np.asarray(v).tolist() for n, v in attrs.items()
                                if n not in ("completed", "level", "rewind_iteration")})
                    row.update({n: np.asarray(v).tolist() for n, v in arrays.items()})
                    out.append(row)
        return out


def parent_run(cfg, data_ref, key, theta0, seg, ks, label):
    rngs = Streams.from_seed(*key)
    model = build_model(cfg.model, rngs, dataset=cfg.dataset, dropout=cfg.dropout)
    reset(model, theta0, ones_masks({k: v for k, v in theta0.items() if k.endswith(".W")}))   # as IMP's dense run
    res = train(model, data_ref.load(), seg, rngs, snapshot_iterations=ks, label=label)
    return ({"snapshots": {f"{k:06d}": res.snapshots[k] for k in ks}, "curves": res.curves},
            {**res.summary(), "iterations": seg.iterations})


def copy_run(cfg, data_ref, key, start, mask, seg, label):
    rngs = Streams.from_seed(*key)
    model = build_model(cfg.model, rngs, dataset=cfg.dataset, dropout=cfg.dropout)
    reset(model, start, mask)                                        # W_k ⊙ m
    res = train(model, data_ref.load(), seg, rngs, label=label)
    return {"weights": model.get_weights(), "curves": res.curves}, res.summary()


def path_run(cfg, data_ref, w1, w2, mask, level, k):
    data = data_ref.load()
    model = build_model(cfg.model, Streams.from_seed(0), dataset=cfg.dataset, dropout=cfg.dropout)
    model.set_masks(mask)
    splits = {"test": data.test}
    n = data.train[0].shape[0] if cfg.train_examples is None else min(cfg.train_examples, data.train[0].shape[0])
    if n:
        splits["train"] = tuple(a[:n] for a in data.train)
    prepare = None
    if batchnorm_layers(model):
        x = data.train[0]
        order = Streams.from_seed(cfg.seed, BN).data.permutation(x.shape[0])
        bs = cfg.train.batch_size
        batches = [x[order[i * bs:(i + 1) * bs]] for i in range(min(cfg.bn_batches, x.shape[0] // bs))]
        prepare = partial(recompute_batchnorm, batches=batches)
    errors = error_curve(model, w1, w2, splits, cfg.points, prepare=prepare)
    pm = sum(float(m.sum()) for m in mask.values()) / sum(m.size for m in mask.values())
    arrays = {"alpha": np.linspace(0.0, 1.0, cfg.points), **{f"{s}_error": e for s, e in errors.items()}}
    attrs = {"level": level, "rewind_iteration": k, "Pm": pm, "instability": instability(errors["test"]),
             "endpoint_test_errors": [float(errors["test"][0]), float(errors["test"][-1])],
             "train_examples": n}
    if n:
        attrs["train_instability"] = instability(errors["train"])
    return arrays, attrs


summary = InstabilityExperiment.summary
