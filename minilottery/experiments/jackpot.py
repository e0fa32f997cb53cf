"""Lottery Jackpots (Zhang et al. 2021): jackpots in one pre-trained network against their baselines.

One store per experiment (kind ``jackpot``), one group per unit of work (a rerun skips what is written)::

    pretrained               theta0 (θ0), weights (the pre-trained network), curves (trained here only);
                             attrs: source ("trained" or the IMP file), the dense val_acc / test_acc
    sparsity/S/magnitude     masks: the magnitude-pruned network at the jackpot's budgets, no training;
                             attrs: its val_acc / test_acc (= the search's step 0), the budgets
    sparsity/S/jackpot       scores and masks at the validation-selected point, final_masks, curves;
                             attrs: test accuracy there (early_stop_test_acc) and at the end, iterations
    sparsity/S/edgepopup     the same search from U(±1/√fan_in) scores, top-|s| at the same per-layer
                             counts, over the same pre-trained weights: scores, masks, curves
    sparsity/S/finetune      magnitude masks fixed, the kept weights (and the dense classifier) trained
    sparsity/S/overlap       attrs: overlap(jackpot mask, X) overall and per layer (JSON), X in OVERLAP_WITH

S is the sparsity ("0.90"): the fraction of the searched weights pruned (``jackpot.layer_budgets``).

Protocols (defaults of ``JackpotConfig.paper``):
  pretrain  the LTH paper's for the model (protocol.py; LeNet: Adam 1.2e-3, batch 60, 50,000
            iterations), weights chosen at the minimum validation loss; θ0 and data order are those
            of IMP's trial 0, so this is IMP's dense run of the same seed, validation-selected.
  search    the released code's (jackpot.DEFAULTS): SGD momentum 0.9, lr 0.1, weight decay 5e-4 on the
            scores, cosine (per iteration here, per epoch there), batch 256, 30 epochs of the training
            split (MNIST: 6,446 iterations), evaluated once per epoch (215); scores chosen on validation.
  finetune  our choice (the paper quotes fine-tuning results from elsewhere): magnitude pruning, then
            the pre-training optimiser, learning rate and batch size for as many iterations as the
            search (the same number of steps), weights chosen on validation.
The runs form a plan (minilottery/plan.py): ``pretrained`` first, then per sparsity the four runs,
independent of each other (any executor; each bitwise the same on any), then ``overlap``.
Seeds: pre-training as IMP trial 0; every run at sparsity s draws from Streams.from_seed(seed, 1,
round(10⁶·s)) (jackpot and edge-popup see the same mini-batch order); the random criterion and
ties from Streams.from_seed(seed, 2, round(10⁶·s)).
"""
import json
import math
import os
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from minilottery import config, layout
from minilottery.layout import fraction_name
from minilottery.backend import asarray
from minilottery.config import option
from minilottery.data import SPLIT_SIZES, epochs
from minilottery.errors import ConfigError, StoreError
from minilottery.experiments.base import Experiment
from minilottery.lottery.edgepopup import EdgePopup, drop_lowest
from minilottery.lottery.jackpot import DEFAULTS, MASK_SUFFIX, Jackpot, layer_budgets, magnitude_masks
from minilottery.lottery.jackpot_compare import CRITERIA, criterion_masks, overlaps, search_cost
from minilottery.lottery.resets import rewind
from minilottery.nn.models import INPUT_SHAPES, MODELS, build_model
from minilottery.plan import Job, Task
from minilottery.protocol import paper_protocol
from minilottery.rng import Streams
from minilottery.store import ExperimentStore
from minilottery.train import TrainConfig, evaluate, train

KIND = "jackpot"



def search_protocol(dataset):
    """The released code's search (jackpot.DEFAULTS) on ``dataset``, evaluated once per epoch."""
    d = DEFAULTS
    return TrainConfig(iterations=epochs(d["epochs"], d["batch_size"], dataset), lr=d["lr"],
                       batch_size=d["batch_size"], optimizer=d["optimizer"], momentum=d["momentum"],
                       weight_decay=d["weight_decay"], schedule=d["schedule"],
                       eval_every=epochs(1, d["batch_size"], dataset))




@dataclass
class JackpotConfig:
    model: str = option("lenet_300_100", "network", choices=MODELS)
    dataset: str = option("mnist", "dataset", choices=tuple(INPUT_SHAPES))
    search: TrainConfig = option(lambda: search_protocol("mnist"), "the score search of jackpot and edge-popup")
    pretrain: TrainConfig = option(lambda: paper_protocol("lenet_300_100").train,
                                   "training of the pre-trained network")
    finetune: TrainConfig = option(lambda: paper_protocol("lenet_300_100").train,
                                   "fine-tuning of the magnitude-pruned network")
    sparsities: tuple = option((0.9, 0.95, 0.98), "fractions of the searched weights pruned, one search each",
                               kind=float)
    include_classifier: bool = option(False, "search the classifier too (the released code keeps it dense)")
    pretrained: str = option(None, "IMP experiment file whose trial-0 θ0 and dense run are the pre-trained "
                                   "network; None: train one with the pretrain protocol and keep it here")
    seed: int = option(0, "seed of θ0, data order, edge-popup's scores, random masks")

    def __post_init__(self):
        self.sparsities = tuple(float(s) for s in self.sparsities)
        if self.pretrained is not None:                      # one file whatever the working directory
            self.pretrained = os.path.abspath(self.pretrained)
        for name, choices in (("model", MODELS), ("dataset", tuple(INPUT_SHAPES))):
            if getattr(self, name) not in choices:
                raise ConfigError(f"unknown --{name} {getattr(self, name)!r}; choose one of {choices}")
        if not self.sparsities or any(not 0.0 < s < 1.0 for s in self.sparsities):
            raise ConfigError(f"--sparsity values must be in (0, 1), got {list(self.sparsities)}")
        names = [fraction_name(s) for s in self.sparsities]
        if len(set(names)) != len(names):
            raise ConfigError(f"--sparsity values repeat: {names}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ConfigError(f"--seed must be an integer of at least 0, got {self.seed}")
        for what in ("search", "pretrain", "finetune"):
            if getattr(self, what).batch_size > SPLIT_SIZES[self.dataset][0]:
                raise ConfigError(f"the {what} batch size {getattr(self, what).batch_size} exceeds the "
                                  f"{SPLIT_SIZES[self.dataset][0]} training examples of {self.dataset}")
        if self.pretrained is not None:
            imp_source(self.pretrained, self.model, self.dataset)       # refuses a file that will not do

    @classmethod
    def paper(cls, model="lenet_300_100", pretrain_iterations=None, finetune_iterations=None, **given):
        """The protocols above for ``model``; flat overrides (``lr=...``) set the search; fine-tuning runs
        as many iterations as the search unless ``finetune_iterations`` is given."""
        p = paper_protocol(model)
        dataset = given.get("dataset", p.dataset)
        if dataset not in SPLIT_SIZES:
            raise ConfigError(f"unknown --dataset {dataset!r}; choose one of {tuple(SPLIT_SIZES)}")
        if pretrain_iterations is not None and given.get("pretrained") is not None:
            raise ConfigError("--pretrain-iterations has no effect with --pretrained: the network is read from it")
        pre = p.train if pretrain_iterations is None else replace(p.train, iterations=pretrain_iterations)
        base = dict(model=model, dataset=dataset, search=search_protocol(dataset), pretrain=pre, finetune=p.train)
        cfg = config.build(cls, base, {k: v for k, v in given.items() if k != "pretrained"})
        fine = replace(cfg.finetune, iterations=cfg.search.iterations if finetune_iterations is None
                       else finetune_iterations)
        return replace(cfg, finetune=fine, pretrained=given.get("pretrained"))

    def to_dict(self):
        return {"kind": KIND, **config.to_dict(self)}


def budget_attrs(b):
    """Store attrs of a ``Budgets``: sparsity over the searched layers and over every prunable layer."""
    per_layer = {k: b.pruned.get(k, 0) / n for k, n in b.sizes.items()}           # p_l / n_l (dense: 0)
    return {"sparsity": b.sparsity, "sparsity_all": b.sparsity_all, "threshold": b.threshold,
            "pruned": json.dumps(b.pruned), "sizes": json.dumps(b.sizes), "dense_layers": json.dumps(b.dense),
            "sparsity_per_layer": json.dumps(per_layer)}


def imp_source(path, model, dataset):
    """(θ0, pre-trained weights, the dense run's attrs) of trial 0 of the IMP experiment at ``path``.

    Refuses (one-line StoreError) a missing or foreign file, an experiment of another kind, model or
    dataset, and one whose trial-0 dense run is not finished.
    """
    store = ExperimentStore.open_readonly(path)             # StoreError for missing / not an experiment
    cfg = store.config
    kind = cfg.get("kind", "imp")
    if kind != "imp":
        raise StoreError(f"--pretrained {path} holds a {kind!r} experiment, not an IMP experiment "
                         f"(python -m minilottery imp makes one)")
    if (cfg.get("model"), cfg.get("dataset")) != (model, dataset):
        raise StoreError(f"--pretrained {path} trained {cfg.get('model')} on {cfg.get('dataset')}; "
                         f"this experiment asks for {model} on {dataset}")
    theta0, dense = layout.run(0, name="theta0"), layout.run(0, 0, "ticket")
    if not (store.done(theta0) and store.done(dense)):
        raise StoreError(f"--pretrained {path} has no finished dense run of trial 0 ({dense}): "
                         f"let the IMP experiment finish its level 0 first")
    return store.read(theta0)[0], store.read(dense)[0]["weights"], store.attrs(dense)


def _plain(attrs):
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items() if k != "completed"}


class JackpotExperiment(Experiment):
    """A jackpot experiment as a plan of runs (minilottery/plan.py), run or resumed into a store."""
    kind = KIND

    def __init__(self, cfg, store, data, progress=True, log=print, data_ref=None):
        super().__init__(cfg, store, data, progress, log, data_ref)
        self.kinds = _model(cfg).weight_kinds()

    def tasks(self):
        out = [Task("pretrained", (), self.pretrained_job, "pre-trained network")]
        for s in self.cfg.sparsities:
            g = f"sparsity/{fraction_name(s)}"
            out += [Task(f"{g}/{unit}", ("pretrained",), partial(self.job, unit, s, g), f"{g}/{unit}")
                    for unit in RUNS]
            out.append(Task(f"{g}/overlap", tuple(f"{g}/{u}" for u in RUNS), partial(self.overlap, s, g)))
        return out

    def pretrained_job(self):
        """Train the pre-trained network on a worker, or read it here from the IMP file (the
        coordinator's file system, never a worker's) and evaluate it there."""
        source = imp_source(self.cfg.pretrained, self.cfg.model, self.cfg.dataset) if self.cfg.pretrained else None
        return Job(_pretrained, (self.cfg, self.data_ref, self.progress, source))

    def budgets(self, weights, s):
        return layer_budgets(weights, s, self.cfg.include_classifier, self.kinds)

    def job(self, unit, s, g):
        weights = self.store.read("pretrained")[0]["weights"]
        key = (self.cfg.seed, 1, int(round(1e6 * s)))                   # the sparsity's own seeded streams
        return Job(RUNS[unit], (self.cfg, self.data_ref, weights, self.budgets(weights, s), key, f"{g}/{unit}: ",
                                self.progress))

    def overlap(self, s, g):
        """overlap(jackpot mask, X) for X in OVERLAP_WITH (cheap: done by the coordinator)."""
        pre = self.store.read("pretrained")[0]
        theta0, weights = pre["theta0"], pre["weights"]
        budgets, rng = self.budgets(weights, s), Streams.from_seed(self.cfg.seed, 2, int(round(1e6 * s))).mask
        masks = {u: self.store.read(f"{g}/{u}")[0]["masks"] for u in ("magnitude", "jackpot", "edgepopup")}
        others = {"magnitude": masks["magnitude"],
                  **{c: criterion_masks(c, theta0, weights, budgets, rng) for c in CRITERIA},
                  "edgepopup": masks["edgepopup"]}
        found = overlaps(masks["jackpot"], others)
        return {}, {**{name: overall for name, (_, overall) in found.items()},
                    "per_layer": json.dumps({name: per for name, (per, _) in found.items()})}


    @staticmethod
    def describe(attrs):
        """The line a finished run gets."""
        if "early_stop_test_acc" in attrs and "source" not in attrs:
            return (f"test {100 * attrs['early_stop_test_acc']:.2f}% at iteration {attrs['early_stop_iteration']} "
                    f"(chosen on validation), {100 * attrs['final_test_acc']:.2f}% at the end")
        return f"test {100 * attrs['test_acc']:.2f}%" + ("" if "source" in attrs else " (no training)")

    @staticmethod
    def summary(store):
        """[one dict per sparsity of a jackpot store]: the attrs of each finished group (dense test accuracy,
        magnitude, jackpot, edgepopup, finetune, overlap) and, once both searches are done, the search cost."""
        out = []
        dense = _plain(store.attrs("pretrained")) if store.done("pretrained") else {}
        for name in store.groups("sparsity"):
            g, row = f"sparsity/{name}", {"sparsity": float(name), "group": name, "dense_test_acc": dense.get("test_acc")}
            for unit in store.groups(g):
                if store.done(f"{g}/{unit}"):
                    row[unit] = _plain(store.attrs(f"{g}/{unit}"))
            if all(u in row for u in ("magnitude", "jackpot", "edgepopup")):
                curves = {u: store.read(f"{g}/{u}")[0]["curves"] for u in ("jackpot", "edgepopup")}
                t, ratio = search_cost(curves["jackpot"], row["magnitude"]["test_acc"], curves["edgepopup"])
                row["search_cost"] = {"iteration": t, "ratio": None if math.isnan(ratio) else ratio,
                                      "edgepopup_final_test_acc": float(curves["edgepopup"]["test_acc"][-1]),
                                      "edgepopup_iterations": int(curves["edgepopup"]["iteration"][-1])}
            out.append(row)
        return out


# -- the runs: module-level, so that any executor can run them; each returns (arrays, attrs) ---------
def _model(cfg, weights=None):
    """A fresh network (θ drawn from the seed's trial-0 streams, as IMP's θ0), ``weights`` loaded."""
    model = build_model(cfg.model, Streams.from_seed(cfg.seed, 0), dataset=cfg.dataset)
    if weights is not None:
        model.set_weights(weights)
    return model


def _accuracies(net, data):
    (vl, va), (tl, ta) = (evaluate(net, *(asarray(a) for a in split)) for split in (data.val, data.test))
    return {"val_loss": vl, "val_acc": va, "test_loss": tl, "test_acc": ta}


def _bool(masks):
    return {k: np.asarray(m) != 0 for k, m in masks.items()}


def _pretrained(cfg, data_ref, progress, source=None):
    """θ0 and the pre-trained weights: those read from the IMP file (``source``), or trained with
    ``cfg.pretrain``."""
    data = data_ref.load()
    if source is not None:
        theta0, weights, src = source
        return ({"theta0": theta0, "weights": weights},
                {"source": cfg.pretrained, **_accuracies(_model(cfg, weights), data),
                 "source_final_test_acc": float(src.get("final_test_acc", math.nan))})
    model = _model(cfg)
    theta0 = model.get_weights()
    res = train(model, data, cfg.pretrain, Streams.from_seed(cfg.seed, 0, 0, 0, 0), progress=progress,
                label="pretrain: ", keep_best=True)                     # IMP trial 0's dense run, best kept
    return ({"theta0": theta0, "weights": res.best_weights, "curves": res.curves},
            {"source": "trained", **res.summary(), "val_acc": res.early_stop_val_acc,
             "test_acc": res.early_stop_test_acc})


def _magnitude(cfg, data_ref, weights, budgets, key, label, progress):
    start = magnitude_masks(weights, budgets)
    model = _model(cfg)
    rewind(model, weights, start)                                       # W ⊙ m, nothing trained
    return {"masks": _bool(start)}, {**_accuracies(model, data_ref.load()), **budget_attrs(budgets)}


def _search(cfg, data_ref, net, weights, key, label, progress):
    """Train ``net``'s scores with the search protocol; (result, attrs incl. whether W, b are bitwise unchanged)."""
    res = train(net, data_ref.load(), cfg.search, Streams.from_seed(*key), progress=progress, label=label,
                keep_best=True)
    after = net.model.get_weights()
    unchanged = all(after[k].tobytes() == weights[k].tobytes() for k in weights)
    return res, {**res.summary(), "iterations": cfg.search.iterations, "weights_unchanged": unchanged}


def _jackpot(cfg, data_ref, weights, budgets, key, label, progress):
    net = Jackpot(_model(cfg, weights), budgets, masks=magnitude_masks(weights, budgets),
                  kept_score=DEFAULTS["kept_score"], pruned_score=DEFAULTS["pruned_score"])
    res, attrs = _search(cfg, data_ref, net, weights, key, label, progress)
    best, n = res.best_weights, len(MASK_SUFFIX)
    return ({"scores": {k: v for k, v in best.items() if not k.endswith(MASK_SUFFIX)},
             "masks": {k[:-n]: v != 0 for k, v in best.items() if k.endswith(MASK_SUFFIX)},
             "final_masks": _bool(net.masks()), "curves": res.curves}, {**attrs, **budget_attrs(budgets)})


def _edgepopup(cfg, data_ref, weights, budgets, key, label, progress):
    net = EdgePopup(_model(cfg, weights), None, Streams.from_seed(*key).mask, pruned=budgets.pruned)
    res, attrs = _search(cfg, data_ref, net, weights, key, label, progress)
    masks = {k: drop_lowest(np.abs(v), net.pruned[k]) != 0 for k, v in res.best_weights.items()}
    return {"scores": res.best_weights, "masks": masks, "curves": res.curves}, attrs


def _finetune(cfg, data_ref, weights, budgets, key, label, progress):
    model = _model(cfg)
    rewind(model, weights, magnitude_masks(weights, budgets))          # then the kept weights train
    res = train(model, data_ref.load(), cfg.finetune, Streams.from_seed(*key), progress=progress, label=label,
                keep_best=True)
    return {"weights": res.best_weights, "curves": res.curves}, {**res.summary(),
                                                                 "iterations": cfg.finetune.iterations}


RUNS = {"magnitude": _magnitude, "jackpot": _jackpot, "edgepopup": _edgepopup, "finetune": _finetune}

