"""Pruning at initialisation with the sanity checks (Frankle et al. 2021), resumable.

For each trial t (its θ0 the seed's draw, as IMP's), each method, sparsity and ablation:
  mask    = global top-k of the method's score at θ0 (lottery/at_init.py), keeping 1 − sparsity;
            ``invert`` keeps the lowest scores; ``shuffle`` permutes the ``none`` mask within each layer;
  run     = the masked network trained with the model's protocol from θ0 ⊙ mask
            (``reinit``: from a fresh draw θ0' ⊙ the ``none`` mask).
Every run of a trial sees the same mini-batch order, so runs differ only by their mask and start.

Store (kind ``prune_at_init``): θ0, one mask and one trained run per variant (layout.py spells them).
"""
import json
from dataclasses import dataclass
from functools import partial

import numpy as np

from minilottery import config, layout
from minilottery.config import option
from minilottery.data import SPLIT_SIZES
from minilottery.errors import ConfigError
from minilottery.experiments.base import Experiment, check_common, plain
from minilottery.layout import fraction_name
from minilottery.lottery.at_init import SCORES, SYNFLOW_ROUNDS, prune_at_init
from minilottery.lottery.resets import reinit_control, reset
from minilottery.lottery.sanity_checks import ABLATIONS, shuffle_within_layers
from minilottery.nn.models import INPUT_SHAPES, MODELS, build_model
from minilottery.plan import Job, Task
from minilottery.protocol import paper_protocol
from minilottery.rng import Streams
from minilottery.train import TrainConfig, train

KIND = "prune_at_init"
METHODS = tuple(SCORES)
# the seeded streams of a trial: (seed, t, PURPOSE, ...)
TRAINING, REINIT, SCORE_BATCH, TIES = 1, 2, 3, 4


@dataclass
class PruneAtInitConfig:
    model: str = option("lenet_300_100", "network", choices=MODELS)
    dataset: str = option("mnist", "dataset", choices=tuple(INPUT_SHAPES))
    train: TrainConfig = option(TrainConfig, "training of every pruned network")
    method: tuple = option(METHODS, f"pruning-at-init scores, of {METHODS}", kind=str)
    sparsity: tuple = option((0.9, 0.98), "fractions of all prunable weights removed", kind=float)
    ablation: tuple = option(("none",), f"sanity checks, of {ABLATIONS}", kind=str)
    trials: int = option(1, "independent trials, each with its own θ0")
    score_examples: int = option(100, "training examples in the batch SNIP and GraSP score on (10 per class)")
    synflow_rounds: int = option(SYNFLOW_ROUNDS, "SynFlow's pruning rounds (exponential schedule)")
    seed: int = option(0, "experiment seed (θ0, data order, score batch, reinitialisation)")

    def __post_init__(self):
        self.method, self.ablation = tuple(self.method), tuple(self.ablation)
        self.sparsity = tuple(float(s) for s in self.sparsity)
        for name, choices in (("method", METHODS), ("ablation", ABLATIONS)):
            bad = [v for v in getattr(self, name) if v not in choices]
            if bad or not getattr(self, name) or len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ConfigError(f"--{name} {list(getattr(self, name))}: give distinct values of {choices}")
        if not self.sparsity or any(not 0.0 <= s < 1.0 for s in self.sparsity) \
                or len({fraction_name(s) for s in self.sparsity}) != len(self.sparsity):
            raise ConfigError(f"--sparsity {list(self.sparsity)}: give distinct fractions in [0, 1)")
        check_common(self.model, self.dataset, self.seed, {"": self.train})
        for name, low in (("trials", 1), ("score_examples", 1), ("synflow_rounds", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if self.score_examples > SPLIT_SIZES[self.dataset][0]:
            raise ConfigError(f"--score-examples {self.score_examples} exceeds the {SPLIT_SIZES[self.dataset][0]} "
                              f"training examples of {self.dataset}")

    @classmethod
    def paper(cls, model="lenet_300_100", **given):
        """The model's protocol for the training, with flat overrides."""
        p = paper_protocol(model)
        return config.build(cls, dict(model=model, dataset=p.dataset, train=p.train), given)

    def to_dict(self):
        return {"kind": KIND, **config.to_dict(self)}

    def variants(self):
        """[(name, method, sparsity, ablation)] of every run of a trial, in order."""
        return [(run_name(m, s, a), m, s, a) for m in self.method for s in self.sparsity for a in self.ablation]


def run_name(method, sparsity, ablation):
    return f"{method}-{ablation}-s{fraction_name(sparsity)}"


group = layout.pai


class PruneAtInitExperiment(Experiment):
    """A pruning-at-initialisation experiment as a plan of runs (minilottery/plan.py)."""
    kind = KIND

    def tasks(self):
        out, masks = [], set()
        for t in range(self.cfg.trials):
            theta0 = group(t, "theta0")
            out.append(Task(theta0, (), partial(self.draw_theta0, t)))
            for name, method, s, ablation in self.cfg.variants():
                source = group(t, "masks", run_name(method, s, "none"))
                made = "none" if ablation == "reinit" else ablation        # reinit trains the none mask
                mask = group(t, "masks", run_name(method, s, made))
                if mask not in masks:
                    deps = (theta0, source) if made == "shuffle" else (theta0,)
                    if made == "shuffle" and source not in masks:
                        out.append(Task(source, (theta0,), partial(self.make_mask, t, method, s, "none")))
                        masks.add(source)
                    out.append(Task(mask, deps, partial(self.make_mask, t, method, s, made)))
                    masks.add(mask)
                out.append(Task(group(t, "runs", name), (theta0, mask),
                                partial(self.job, t, name, (method, s, ablation), mask), f"trial {t} {name}"))
        return out

    def draw_theta0(self, t):
        """θ0 of trial t: the seed's draw, as IMP's (``Streams.from_seed(seed, t)``)."""
        return build_model(self.cfg.model, Streams.from_seed(self.cfg.seed, t), dataset=self.cfg.dataset).get_weights(), {}

    def make_mask(self, t, method, sparsity, ablation):
        cfg = self.cfg
        key = (cfg.seed, t, TIES, METHODS.index(method), round(sparsity * 10 ** 6), ABLATIONS.index(ablation))
        if ablation == "shuffle":
            none = self.store.read(group(t, "masks", run_name(method, sparsity, "none")))[0]
            return mask_result(shuffle_within_layers(none, Streams.from_seed(*key).mask))
        return Job(score_mask, (cfg, self.data_ref, self.store.read(group(t, "theta0"))[0], method, sparsity,
                                ablation == "invert", t, key))

    def job(self, t, name, variant, mask_group):
        cfg, ablation = self.cfg, variant[2]
        theta = self.store.read(group(t, "theta0"))[0]
        if ablation == "reinit":
            theta = reinit_control(cfg.model, Streams.from_seed(cfg.seed, t, REINIT), cfg.dataset)
        mask = {k: v.astype(np.float32) for k, v in self.store.read(mask_group)[0].items()}
        return Job(train_run, (cfg, self.data_ref, (cfg.seed, t, TRAINING), theta, mask, variant,
                               f"trial {t} {name}: "))

    @staticmethod
    def describe(attrs):
        if "test_acc" not in attrs:
            return f"density {100 * attrs['density']:.2f}%"
        return (f"density {100 * attrs['density']:.2f}%, test {100 * attrs['test_acc']:.2f}% "
                f"(early stop {attrs['early_stop_iteration']}: {100 * attrs['early_stop_test_acc']:.2f}%)")

    @staticmethod
    def summary(store):
        """[attrs of every finished run, with its trial and per-layer densities] for reports and --json."""
        out = []
        for t in (int(n) for n in store.groups(layout.TRIALS)):
            for name in store.groups(group(t, "runs")):
                if not store.done(group(t, "runs", name)):
                    continue
                row = plain(store.attrs(group(t, "runs", name)))
                mask = store.attrs(group(t, "masks", name if row["ablation"] != "reinit"
                                         else run_name(row["method"], row["sparsity"], "none")))
                out.append({"trial": t, "run": name, **row,
                            "density_per_layer": json.loads(mask["density_per_layer"])})
        return out


def score_batch(cfg, data, t):
    """The trial's fixed batch of ``score_examples`` training examples (SNIP, GraSP)."""
    x, y = data.train
    idx = np.sort(Streams.from_seed(cfg.seed, t, SCORE_BATCH).mask.choice(x.shape[0], cfg.score_examples,
                                                                         replace=False))
    return x[idx], y[idx]


def score_mask(cfg, data_ref, theta0, method, sparsity, invert, t, key):
    """The mask of one method at one sparsity, scored in a float64 copy of the network."""
    model = build_model(cfg.model, Streams.from_seed(0), dataset=cfg.dataset, dtype=np.float64)
    x, y = score_batch(cfg, data_ref.load(), t)
    rounds = cfg.synflow_rounds if method == "synflow" else 1
    masks = prune_at_init(method, model, theta0, 1.0 - sparsity, x, y, Streams.from_seed(*key).mask,
                          invert=invert, rounds=rounds)
    return mask_result(masks)


def density(masks):
    """The fraction of prunable weights kept (float64)."""
    return sum(int(np.count_nonzero(m)) for m in masks.values()) / sum(m.size for m in masks.values())


def mask_result(masks):
    per_layer = {k: np.count_nonzero(m) / m.size for k, m in sorted(masks.items())}
    return ({k: m.astype(bool) for k, m in masks.items()},
            {"density": density(masks), "density_per_layer": json.dumps(per_layer)})


def train_run(cfg, data_ref, key, theta, mask, variant, label):
    """One pruned network trained from θ ⊙ mask: (arrays, attrs) for the store."""
    rngs = Streams.from_seed(*key)
    model = build_model(cfg.model, rngs, dataset=cfg.dataset)
    reset(model, theta, mask)
    kept = density(mask)
    res = train(model, data_ref.load(), cfg.train, rngs, label=label.replace(": ", f" (density {100 * kept:.2f}%): "))
    method, sparsity, ablation = variant
    return ({"weights": model.get_weights(), "curves": res.curves},
            {**res.summary(), "test_acc": res.final_test_acc, "density": kept,
             "method": method, "ablation": ablation, "sparsity": sparsity})



summary = PruneAtInitExperiment.summary
