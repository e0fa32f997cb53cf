"""Iterative magnitude pruning with resets and controls (Frankle & Carbin 2019).

For each trial t (its own θ0):
  level 0:  train the dense network from θ0 → θ_f.
  level r:  mask_r = prune(θ_f of level r−1, mask_{r−1})   (iterative), or
            mask_r = prune(θ_f of level 0, 1) to the same per-layer fractions (one-shot);
            ticket:  reset the survivors to θ0 (or θk, late resetting) and train;
            controls (the paper's): K random reinitialisations θ0' ⊙ mask_r, and
            random pruning: a random mask with mask_r's per-layer counts, from θ0.
After r rounds a layer keeps (1 − rate)^r of its weights; Pm is the overall fraction.

Every run is a unit of work in the experiment file; a rerun skips what is
complete, so an interrupted experiment continues at its first unfinished run
and ends with the same results as one never interrupted (each run draws from
its own seeded streams and reads its inputs from the file).
"""
from dataclasses import asdict, dataclass, fields

from minilottery.lottery.pruning import (fraction_remaining, global_magnitude_prune, layer_rates,
                                         magnitude_prune, ones_masks, random_mask_like)
from minilottery.lottery.resets import reinitialize, rewind
from minilottery.nn.models import INPUT_SHAPES, MODELS, build_model
from minilottery.nn.optim import OPTIMIZERS
from minilottery.protocol import paper_protocol
from minilottery.rng import Streams
from minilottery.train import TrainConfig, train

KINDS = ("ticket", "reinit", "random")  # the run kinds; controls are reinit and random


@dataclass
class IMPConfig:
    model: str = "lenet_300_100"
    dataset: str = "mnist"
    iterations: int = 50_000
    lr: float = 1.2e-3
    batch_size: int = 60
    optimizer: str = "adam"
    eval_every: int = 100
    rounds: int = 15                 # pruning levels 1..rounds
    oneshot: bool = False            # prune the dense network straight to each level
    trials: int = 1
    reinit: int = 1                  # K random reinitialisations per trial and level
    random_pruning: bool = False     # the random-pruning control
    control_levels: tuple = ()       # levels that get controls; () means every level
    rewind_iteration: int = 0        # 0: reset to θ0; k > 0: late resetting to θk
    conv_rate: float = 0.0
    fc_rate: float = 0.2
    output_rate: float = 0.1
    global_pruning: bool = False     # one rate (fc_rate) over all layers together
    dropout: float = 0.0
    seed: int = 0

    def __post_init__(self):
        self.control_levels = tuple(int(v) for v in self.control_levels)
        for name, choices in (("model", MODELS), ("dataset", tuple(INPUT_SHAPES)), ("optimizer", tuple(OPTIMIZERS))):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of {choices}")
        for name in ("rounds", "trials"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.reinit < 0 or self.rewind_iteration < 0:
            raise ValueError("reinit and rewind_iteration must be non-negative")
        if self.rewind_iteration >= self.iterations:
            raise ValueError(f"rewind iteration {self.rewind_iteration} must be below the "
                             f"training length {self.iterations}")
        for name in ("fc_rate", "output_rate") + (("conv_rate",) if self.model.startswith("conv") else ()):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name.replace('_', ' ')} must be in (0, 1), got {getattr(self, name)}")
        bad = [v for v in self.control_levels if not 1 <= v <= self.rounds]
        if bad:
            raise ValueError(f"control levels {bad} are outside 1..{self.rounds}")
        self.train_config()  # validates the training fields

    @classmethod
    def paper(cls, model="lenet_300_100", **overrides):
        """The paper's protocol for ``model``, with overrides."""
        p = paper_protocol(model, overrides.get("dropout", 0.0))
        base = dict(model=model, dataset=p.dataset, iterations=p.iterations, lr=p.lr,
                    batch_size=p.batch_size, optimizer=p.optimizer, eval_every=p.eval_every,
                    conv_rate=p.conv_rate, fc_rate=p.fc_rate, output_rate=p.output_rate)
        return cls(**{**base, **overrides})

    def train_config(self):
        return TrainConfig(iterations=self.iterations, lr=self.lr, batch_size=self.batch_size,
                           optimizer=self.optimizer, eval_every=self.eval_every)

    def to_dict(self):
        d = asdict(self)
        d["control_levels"] = list(self.control_levels)
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def has_controls(self, level):
        return level > 0 and (not self.control_levels or level in self.control_levels)


def group(trial, level=None, run=None):
    """HDF5 path of a trial, a level, or a run ("ticket", "reinit_0", "random_0", "mask")."""
    g = f"trials/{trial:02d}"
    if level is not None:
        g += f"/levels/{level:03d}"
    return g if run is None else f"{g}/{run}"


def run_streams(cfg, trial, level, kind, j=0):
    """Independent seeded streams for one run."""
    return Streams.from_seed(cfg.seed, trial, level, KINDS.index(kind), j)


class Experiment:
    """Runs (or resumes) an IMP experiment into an ExperimentStore."""

    def __init__(self, cfg, store, data, progress=True, log=print):
        self.cfg, self.store, self.data, self.progress, self.log = cfg, store, data, progress, log

    # -- the plan ------------------------------------------------------------
    def run(self):
        for t in range(self.cfg.trials):
            self.run_trial(t)
        self.store.mark_complete()

    def run_trial(self, t):
        cfg = self.cfg
        theta0 = self.initial_weights(t)
        self.ensure_run(t, 0, "ticket", 0, theta0, ones_masks(self.weights_only(theta0)))
        theta_reset = self.store.read(group(t, 0, "ticket"))[0]["snapshot"] if cfg.rewind_iteration else theta0
        for level in range(1, cfg.rounds + 1):
            mask = self.ensure_mask(t, level)
            self.ensure_run(t, level, "ticket", 0, theta_reset, mask)
            if not cfg.has_controls(level):
                continue
            for j in range(cfg.reinit):
                theta = reinitialize(cfg.model, run_streams(cfg, t, level, "reinit", j), cfg.dataset, cfg.dropout)
                self.ensure_run(t, level, "reinit", j, theta, mask)
            if cfg.random_pruning:
                ones = ones_masks(mask)
                rnd = random_mask_like(ones, mask, run_streams(cfg, t, level, "random").mask)
                self.ensure_run(t, level, "random", 0, theta0, rnd)

    def initial_weights(self, t):
        """θ0 of trial t, drawn once and stored (a resumed run reads it back)."""
        g = group(t, run="theta0")
        if not self.store.done(g):
            theta0 = build_model(self.cfg.model, Streams.from_seed(self.cfg.seed, t),
                                 dataset=self.cfg.dataset, dropout=self.cfg.dropout).get_weights()
            self.store.write(g, theta0)
        return self.store.read(g)[0]

    @staticmethod
    def weights_only(params):
        return {k: v for k, v in params.items() if k.endswith(".W")}

    def ensure_mask(self, t, level):
        """mask_level of trial t: from the previous ticket (iterative) or the dense run (one-shot)."""
        g = group(t, level, "mask")
        if not self.store.done(g):
            cfg = self.cfg
            src_level = 0 if cfg.oneshot else level - 1
            prev = self.store.read(group(t, src_level, "ticket"))[0]
            final = self.weights_only(prev["weights"])
            base = ones_masks(final) if cfg.oneshot or src_level == 0 else self.read_mask(t, src_level)
            steps = level if cfg.oneshot else 1
            mask = prune_step(cfg, final, base, steps)
            self.store.write(g, {k: v.astype(bool) for k, v in mask.items()},
                             {"Pm": fraction_remaining(mask)})
        return self.read_mask(t, level)

    def read_mask(self, t, level):
        arrays, _ = self.store.read(group(t, level, "mask"))
        return {k: v.astype("float32") for k, v in arrays.items()}

    def ensure_run(self, t, level, kind, j, theta, mask):
        """Train one run unless the file already has it."""
        name = "ticket" if kind == "ticket" else f"{kind}_{j}"
        g = group(t, level, name)
        if not self.store.done(g):
            cfg = self.cfg
            rngs = run_streams(cfg, t, level, kind, j)
            model = build_model(cfg.model, rngs, dataset=cfg.dataset, dropout=cfg.dropout)
            rewind(model, theta, mask)
            snaps = (cfg.rewind_iteration,) if (level == 0 and cfg.rewind_iteration) else ()
            pm = fraction_remaining(mask)
            label = f"trial {t} level {level} (Pm {100 * pm:.1f}%) {name}: "
            res = train(model, self.data, cfg.train_config(), rngs, snapshot_iterations=snaps,
                        progress=self.progress, label=label)
            arrays = {"weights": model.get_weights(), "curves": res.curves}
            if snaps:
                arrays["snapshot"] = res.snapshots[cfg.rewind_iteration]
            self.store.write(g, arrays, {**res.summary(), "Pm": pm, "kind": kind})
            self.log(f"{label}early stop {res.early_stop_iteration}, "
                     f"test {100 * res.early_stop_test_acc:.2f}% (final {100 * res.final_test_acc:.2f}%)")


def prune_step(cfg, final_weights, base_mask, steps=1):
    """New mask from final weights: ``steps`` rounds' worth of the per-layer rates at once."""
    keep = lambda rate: (1.0 - rate) ** steps  # noqa: E731  fraction of base kept
    if cfg.global_pruning:
        return global_magnitude_prune(final_weights, base_mask, 1.0 - keep(cfg.fc_rate))
    rates = layer_rates(final_weights, cfg.conv_rate, cfg.fc_rate, cfg.output_rate)
    return magnitude_prune(final_weights, base_mask, {k: 1.0 - keep(r) for k, r in rates.items() if r > 0})
