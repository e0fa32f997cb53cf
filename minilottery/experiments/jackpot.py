"""Lottery Jackpots (Zhang et al. 2021): jackpots in one pre-trained network against their baselines.

One store per experiment (kind ``jackpot``), one group per unit of work (a rerun skips what is
written; layout.py spells them): the pre-trained network, then per sparsity S (the fraction of the
searched weights pruned, ``jackpot.layer_budgets``) the magnitude-pruned network, the jackpot
search, edge-popup's search at the same budgets, the fine-tuned magnitude network, and the
overlaps of the jackpot mask with the others (X in OVERLAP_WITH).

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
The runs (experiments/jackpot_runs.py) form a plan (minilottery/plan.py): ``pretrained`` first, then per sparsity the four runs,
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

from minilottery import config, layout
from minilottery.layout import fraction_name
from minilottery.config import option
from minilottery.data import epochs
from minilottery.errors import ConfigError, StoreError
from minilottery.experiments.base import Experiment, check_common, plain
from minilottery.experiments.jackpot_runs import RUNS, _model, _pretrained
from minilottery.lottery.jackpot import DEFAULTS, layer_budgets
from minilottery.lottery.jackpot_compare import CRITERIA, criterion_masks, overlaps, search_cost
from minilottery.nn.models import INPUT_SHAPES, MODELS, build_model
from minilottery.plan import Job, Task
from minilottery.protocol import paper_protocol
from minilottery.rng import Streams
from minilottery.store import ExperimentStore
from minilottery.train import TrainConfig

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
    width: float = option(1.0, "channel multiplier of resnet20 and vgg* (CPU-sized runs)")
    search: TrainConfig = option(lambda: search_protocol("mnist"), "the score search of jackpot and edge-popup")
    pretrain: TrainConfig = option(lambda: paper_protocol("lenet_300_100").train,
                                   "training of the pre-trained network", prefix="pretrain", only=("iterations",))
    finetune: TrainConfig = option(lambda: paper_protocol("lenet_300_100").train,
                                   "fine-tuning of the magnitude-pruned network", prefix="finetune",
                                   only=("iterations",))
    sparsities: tuple = option((0.9, 0.95, 0.98), "fractions of the searched weights pruned, one search each",
                               kind=float, flag="sparsity")
    include_classifier: bool = option(False, "search the classifier too (the released code keeps it dense)")
    pretrained: str = option(None, "IMP experiment file whose trial-0 θ0 and dense run are the pre-trained "
                                   "network; without one, it is trained with the pretrain protocol and kept "
                                   "here", shown="none")
    seed: int = option(0, "seed of θ0, data order, edge-popup's scores, random masks")

    def __post_init__(self):
        self.sparsities = tuple(float(s) for s in self.sparsities)
        if self.pretrained is not None:                      # one file whatever the working directory
            self.pretrained = os.path.abspath(self.pretrained)
        check_common(self.model, self.dataset, self.seed,
                     {what: getattr(self, what) for what in ("search", "pretrain", "finetune")}, width=self.width)
        if not self.sparsities or any(not 0.0 < s < 1.0 for s in self.sparsities):
            raise ConfigError(f"--sparsity values must be in (0, 1), got {list(self.sparsities)}")
        names = [fraction_name(s) for s in self.sparsities]
        if len(set(names)) != len(names):
            raise ConfigError(f"--sparsity values repeat: {names}")
        self._check_kept_at_all()
        if self.pretrained is not None:
            imp_source(self.pretrained, self.model, self.dataset, self.width)       # refuses a file that will not do

    def _check_kept_at_all(self):
        """Before any training: every sparsity keeps at least one weight per searched layer (the
        per-layer budgets, which depend on the pre-trained magnitudes, are checked once they exist)."""
        model = build_model(self.model, Streams.from_seed(self.seed, 0), dataset=self.dataset, width=self.width)
        sizes = [n for k, n in model.weight_counts().items()
                 if self.include_classifier or model.weight_kinds()[k] != "output"]
        for s in self.sparsities:
            kept = int(sum(sizes) * (1.0 - s))                           # N − P, P = N − ⌊N·(1 − s)⌋
            if kept < len(sizes):
                raise ConfigError(f"--sparsity {s} keeps {kept} of the {sum(sizes)} searched weights, fewer than "
                                  f"one per searched layer ({len(sizes)}): use a lower sparsity")

    @classmethod
    def paper(cls, model="lenet_300_100", **given):
        """The protocols above for ``model``, with flat overrides of fields (``lr=...`` sets the search,
        ``pretrain_iterations=...`` the pre-training); fine-tuning runs as many iterations as the search
        unless ``finetune_iterations`` is given (None means not given, as for a flag)."""
        given = {k: v for k, v in given.items() if v is not None}
        p = paper_protocol(model)
        dataset = given.get("dataset", p.dataset)
        check_common(model, dataset, 0)
        if "pretrain_iterations" in given and given.get("pretrained") is not None:
            raise ConfigError("--pretrain-iterations has no effect with --pretrained: the network is read from it")
        base = dict(model=model, dataset=dataset, search=search_protocol(dataset), pretrain=p.train, finetune=p.train)
        cfg = config.build(cls, base, {k: v for k, v in given.items() if k != "pretrained"})
        fine = cfg.finetune if "finetune_iterations" in given else replace(cfg.finetune,
                                                                            iterations=cfg.search.iterations)
        return replace(cfg, finetune=fine, pretrained=given.get("pretrained"))

    def to_dict(self):
        return {"kind": KIND, **config.to_dict(self)}


def imp_source(path, model, dataset, width=1.0):
    """(θ0, pre-trained weights, the dense run's attrs) of trial 0 of the IMP experiment at ``path``.

    Refuses (one-line StoreError) a missing or foreign file, an experiment of another kind, model,
    width or dataset, and one whose trial-0 dense run is not finished.
    """
    store = ExperimentStore.open_readonly(path)             # StoreError for missing / not an experiment
    cfg = store.config
    kind = cfg.get("kind")
    if kind != "imp":
        raise StoreError(f"--pretrained {path} holds a {kind!r} experiment, not an IMP experiment "
                         f"(python -m minilottery imp makes one)")
    if (cfg.get("model"), cfg.get("dataset"), cfg.get("width", 1.0)) != (model, dataset, width):
        def net(m, w):
            return m if w == 1.0 else f"{m} at width {w}"
        raise StoreError(f"--pretrained {path} trained {net(cfg.get('model'), cfg.get('width', 1.0))} on "
                         f"{cfg.get('dataset')}; this experiment asks for {net(model, width)} on {dataset}")
    theta0, dense = layout.run(0, name="theta0"), layout.run(0, 0, "ticket")
    if not (store.done(theta0) and store.done(dense)):
        raise StoreError(f"--pretrained {path} has no finished dense run of trial 0 ({dense}): "
                         f"let the IMP experiment finish its level 0 first")
    like = build_model(model, Streams.from_seed(0), dataset=dataset, width=width).get_weights()   # what must be stored
    return store.read(theta0, expect=like)[0], store.read(dense, expect={"weights": like})[0]["weights"], \
        store.attrs(dense)


class JackpotExperiment(Experiment):
    """A jackpot experiment as a plan of runs (minilottery/plan.py), run or resumed into a store."""
    kind = KIND

    json_key = "sparsities"

    def __init__(self, cfg, store, data, log=print):
        super().__init__(cfg, store, data, log)
        self.kinds = _model(cfg).weight_kinds()

    def tasks(self):
        pre = layout.PRETRAINED
        out = [Task(pre, (), self.pretrained_job, "pre-trained network")]
        for s in self.cfg.sparsities:
            g = partial(layout.sparsity, s)
            out += [Task(g(unit), (pre,), partial(self.job, unit, s), g(unit)) for unit in RUNS]
            out.append(Task(g("overlap"), tuple(g(u) for u in RUNS), partial(self.overlap, s)))
        return out

    def pretrained_job(self):
        """Train the pre-trained network on a worker, or read it here from the IMP file (the
        coordinator's file system, never a worker's) and evaluate it there."""
        source = imp_source(self.cfg.pretrained, self.cfg.model, self.cfg.dataset, self.cfg.width) if self.cfg.pretrained else None
        return Job(_pretrained, (self.cfg, self.data_ref, source))

    def budgets(self, weights, s):
        return layer_budgets(weights, s, self.cfg.include_classifier, self.kinds)

    def pretrained(self):
        """The stored pre-trained group, its θ0 and weights checked against the configuration's network first."""
        like = _model(self.cfg).get_weights()
        return self.store.read(layout.PRETRAINED, expect={"theta0": like, "weights": like})[0]

    def job(self, unit, s):
        weights = self.pretrained()["weights"]
        key = (self.cfg.seed, 1, int(round(1e6 * s)))                   # the sparsity's own seeded streams
        return Job(RUNS[unit], (self.cfg, self.data_ref, weights, self.budgets(weights, s), key,
                                f"{layout.sparsity(s, unit)}: "))

    def overlap(self, s):
        """overlap(jackpot mask, X) for X in OVERLAP_WITH (cheap: done by the coordinator)."""
        pre = self.pretrained()
        theta0, weights = pre["theta0"], pre["weights"]
        budgets, rng = self.budgets(weights, s), Streams.from_seed(self.cfg.seed, 2, int(round(1e6 * s))).mask
        masks = {u: self.store.read(layout.sparsity(s, u))[0]["masks"] for u in ("magnitude", "jackpot", "edgepopup")}
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
        pre = layout.PRETRAINED
        dense = plain(store.attrs(pre)) if store.done(pre) else {}
        for name in store.groups(layout.SPARSITY):
            g = partial(layout.sparsity, name)
            row = {"sparsity": float(name), "group": name, "dense_test_acc": dense.get("test_acc")}
            for unit in store.groups(g()):
                if store.done(g(unit)):
                    row[unit] = plain(store.attrs(g(unit)))
            if all(u in row for u in ("magnitude", "jackpot", "edgepopup")):
                curves = {u: store.read(g(u))[0]["curves"] for u in ("jackpot", "edgepopup")}
                t, ratio = search_cost(curves["jackpot"], row["magnitude"]["test_acc"], curves["edgepopup"])
                row["search_cost"] = {"iteration": t, "ratio": None if math.isnan(ratio) else ratio,
                                      "edgepopup_final_test_acc": float(curves["edgepopup"]["test_acc"][-1]),
                                      "edgepopup_iterations": int(curves["edgepopup"]["iteration"][-1])}
            out.append(row)
        return out
