"""Iterative magnitude pruning with resets and controls (Frankle & Carbin 2019).

For each trial t (its own θ0):
  level 0:  train the dense network from θ0 → θ_f.
  level r:  mask_r = prune(θ_f of level r−1, mask_{r−1})   (iterative), or
            mask_r = prune(θ_f of level 0, 1) to the same per-layer fractions (one-shot);
            ticket:  reset the survivors to θ0 (or θk, late resetting) and train (``retrain``:
                     rewind, the LTH's; lr_rewind: keep the final weights, masked, and replay the
                     whole learning-rate schedule, Renda et al. 2020; finetune: keep them and train
                     at the schedule's final rate; every choice retrains ``iterations`` iterations);
            controls (the paper's): K random reinitialisations θ0' ⊙ mask_r, and
            random pruning: a random mask with mask_r's per-layer counts, from θ0.
After r rounds a layer keeps (1 − rate)^r of its weights; Pm is the overall fraction.

Every run is a unit of work in the experiment file; a rerun skips what is
complete, so an interrupted experiment continues at its first unfinished run
and ends with the same results as one never interrupted (each run draws from
its own seeded streams and reads its inputs from the file).
"""
from dataclasses import dataclass, replace
from functools import partial

from minilottery import config, layout
from minilottery.config import option
from minilottery.errors import ConfigError
from minilottery.experiments.base import Experiment, check_common, plain
from minilottery.lottery.actions import CODE_NAMES, MASK0, MASK1, mask0_apply, mask1_start
from minilottery.experiments import imp_runs as runs
from minilottery.experiments.imp_runs import finetune_config, model_of
from minilottery.lottery.criteria import CRITERIA
from minilottery.lottery.imp_round import prune_step, round_plan
from minilottery.lottery.pruning import fraction_remaining, ones_masks, random_mask_like
from minilottery.lottery.resets import reinit_control
from minilottery.nn.models import INPUT_SHAPES, MODELS, build_model
from minilottery.nn.stacked import stacks
from minilottery.plan import Job, Task
from minilottery.protocol import paper_protocol
from minilottery.rng import Streams
from minilottery.train import TrainConfig

KIND = "imp"                            # the experiment kind stored in the file
RUN_KINDS = ("ticket", "reinit", "random")  # the run kinds; controls are reinit and random
RETRAIN = ("rewind", "lr_rewind", "finetune")


@dataclass
class IMPConfig:
    model: str = option("lenet_300_100", "network", choices=MODELS)
    dataset: str = option("mnist", "dataset", choices=tuple(INPUT_SHAPES))
    width: float = option(1.0, "channel multiplier of resnet20 and vgg* (CPU-sized runs)")
    train: TrainConfig = option(TrainConfig, "training of every run")
    rounds: int = option(15, "pruning levels 1..rounds")
    oneshot: bool = option(False, "prune the dense network straight to each level")
    trials: int = option(1, "independent trials, each with its own θ0")
    reinit: int = option(1, "K random reinitialisations per trial and level (the control)")
    random_pruning: bool = option(False, "the random-pruning control")
    control_levels: tuple = option((), "levels that get controls")
    rewind_iteration: int = option(0, "0: reset to θ0; k > 0: late resetting to θk")
    retrain: str = option("rewind", "what a pruned level retrains from: rewind (θ0 or θk, the LTH), lr_rewind "
                          "(its final weights, masked, with the lr schedule replayed), finetune (its final "
                          "weights, masked, at the schedule's final lr)", choices=RETRAIN)
    conv_rate: float = option(0.0, "fraction of remaining conv weights pruned per round")
    fc_rate: float = option(0.2, "fraction of remaining hidden fully connected weights pruned per round "
                                 "(under --global-pruning: the one global rate)")
    output_rate: float = option(0.1, "fraction of remaining output-layer weights pruned per round; 0: never "
                                     "pruned (resnet20 and vgg*, as the paper: their fc stays dense)")
    global_pruning: bool = option(False, "one rate (fc_rate) over the pruned layers together: the lowest "
                                         "criterion scores of all of them go (resnet20 and vgg*: the default; "
                                         "ResNet's 1x1 shortcut convs are never pruned, as the paper)")
    criterion: str = option("large_final", "mask criterion: which weights a round keeps", choices=tuple(CRITERIA))
    mask1: str = option("rewind", "mask-1 action: what kept weights restart from", choices=tuple(MASK1))
    mask0: str = option("zero", "mask-0 action: what pruned weights are frozen at (freeze_init_zero_mask and "
                        "freeze_init_zero_all: the paper's code names of variant1 and variant2)",
                    choices=tuple(MASK0) + tuple(CODE_NAMES))
    dropout: float = option(0.0, "dropout rate after hidden dense layers")
    seed: int = option(0, "experiment seed (θ0, data order, controls)")

    def __post_init__(self):
        self.control_levels = tuple(int(v) for v in self.control_levels)
        check_common(self.model, self.dataset, self.seed, {"": self.train}, self.dropout, self.width)
        for name, low in (("rounds", 1), ("trials", 1), ("reinit", 0), ("rewind_iteration", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if self.rewind_iteration >= self.train.iterations:
            raise ConfigError(f"--rewind-iteration {self.rewind_iteration} must be below --iterations "
                              f"{self.train.iterations}")
        has_conv = self.model != "lenet_300_100"
        for name in ("fc_rate",) + (("conv_rate",) if has_conv else ()):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in (0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.output_rate < 1.0:
            raise ConfigError(f"--output-rate must be in [0, 1) (0: never pruned), got {self.output_rate}")
        if not has_conv and self.conv_rate != 0.0:
            raise ConfigError(f"--conv-rate {self.conv_rate} given, but {self.model} has no conv layers")
        for name, choices in (("criterion", CRITERIA), ("mask1", MASK1), ("mask0", {**MASK0, **CODE_NAMES}),
                              ("retrain", RETRAIN)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"unknown --{name} {getattr(self, name)!r}; choose one of {tuple(choices)}")
        if self.retrain != "rewind":
            odd = [f"--{n.replace('_', '-')} {v}" for n, v, plain in (("rewind_iteration", self.rewind_iteration, 0),
                   ("mask1", self.mask1, "rewind"), ("mask0", self.mask0, "zero")) if v != plain]
            if odd:
                raise ConfigError(f"--retrain {self.retrain} keeps the final weights; {odd[0]} applies to "
                                  f"--retrain rewind only")
        bad = [v for v in self.control_levels if not 1 <= v <= self.rounds]
        if bad:
            raise ConfigError(f"--control-levels {bad} are outside 1..{self.rounds}")

    @classmethod
    def paper(cls, model="lenet_300_100", **given):
        """The paper's protocol for ``model``, with flat overrides (``lr=...`` sets ``train.lr``)."""
        p = paper_protocol(model, given.get("dropout", 0.0))
        base = dict(model=model, dataset=p.dataset, train=p.train, conv_rate=p.conv_rate,
                    fc_rate=p.fc_rate, output_rate=p.output_rate, global_pruning=p.global_pruning)
        return config.build(cls, base, given)

    def to_dict(self):
        return {"kind": KIND, **config.to_dict(self)}

    def has_controls(self, level):
        return level > 0 and (not self.control_levels or level in self.control_levels)


class IMPExperiment(Experiment):
    """An IMP experiment as a plan of runs (minilottery/plan.py), run or resumed into a store.

    ``variant`` names one IMP variant among several in a store (a Deconstructing
    comparison): its levels 1.. live under that name, θ0 and the dense run are shared.
    """
    kind = KIND

    def __init__(self, cfg, store, data, log=print, variant=None):
        super().__init__(cfg, store, data, log)
        self.kinds, self.variant = weight_kinds(cfg), variant
        self.stackable = stacks(_shape_model(cfg))       # its runs can train stacked (no BatchNorm, no dropout)

    @classmethod
    def check(cls, cfg):
        check_plan(cfg)

    def path(self, t, level=None, name=None):
        return layout.run(t, level, name, self.variant)

    @staticmethod
    def describe(attrs):
        """The line a finished IMP run gets."""
        return (f"Pm {100 * attrs['Pm']:.1f}%, early stop {attrs['early_stop_iteration']}, test "
                f"{100 * attrs['early_stop_test_acc']:.2f}% (final {100 * attrs['final_test_acc']:.2f}%)")

    @staticmethod
    def summary(store, variant=None):
        """[one dict per finished run]: its trial, level, run name and attrs (kind, Pm, the training summary).

        ``variant``: one IMP variant of a store holding several (its levels and the shared dense run).
        """
        rows = []
        for trial in store.groups(layout.TRIALS):
            t = int(trial)
            found = [int(v) for v in store.groups(layout.levels(t))]
            if variant:
                found = [v for v in found if v == 0] + [int(v) for v in store.groups(layout.levels(t, variant))]
            for level in sorted(set(found)):
                for run in store.groups(layout.run(t, level, variant=variant)):
                    a = {} if run == "mask" else store.attrs(layout.run(t, level, run, variant))
                    if a.get("completed", False):
                        rows.append({"trial": t, "level": level, "run": run, **plain(a)})
        return rows

    # -- the plan: what each group needs -------------------------------------------------------
    def tasks(self):
        return [task for t in range(self.cfg.trials) for task in self.trial_tasks(t)]

    def trial_tasks(self, t):
        cfg, path = self.cfg, partial(self.path, t)
        theta0, dense = path(name="theta0"), path(0, "ticket")
        reset = (dense,) if cfg.rewind_iteration else ()
        out = [Task(theta0, (), partial(self.draw_theta0, t)),
               Task(dense, (theta0,), partial(self.job, t, 0, "ticket"), self.label(t, 0, "ticket"))]
        for level in range(1, cfg.rounds + 1):
            src = self.source_level(level)
            before = (path(src, "ticket"),) + ((path(src, "mask"),) if src else ())
            mask = path(level, "mask")
            out.append(Task(mask, before + (theta0,) + reset, partial(self.make_mask, t, level)))
            out.append(Task(path(level, "ticket"), (mask, theta0) + before + reset,
                            partial(self.job, t, level, "ticket"), self.label(t, level, "ticket")))
            if cfg.has_controls(level):
                for j in range(cfg.reinit):
                    out.append(Task(path(level, f"reinit_{j}"), (mask, theta0), partial(self.job, t, level, "reinit", j),
                                    self.label(t, level, f"reinit_{j}")))
                if cfg.random_pruning:
                    out.append(Task(path(level, "random_0"), (mask, theta0), partial(self.job, t, level, "random"),
                                    self.label(t, level, "random_0")))
        return out

    def label(self, t, level, name):
        return f"{self.variant + ' ' if self.variant and level else ''}trial {t} level {level} {name}"

    # -- cheap work, done by the coordinator ---------------------------------------------------
    def draw_theta0(self, t):
        """θ0 of trial t, drawn once and stored (a resumed run reads it back)."""
        return model_of(self.cfg, Streams.from_seed(self.cfg.seed, t)).get_weights(), {}

    def read(self, t, level=None, name=None):
        return self.store.read(self.path(t, level, name), expect=self.expect(level, name))[0]

    def expect(self, level, name):
        """The arrays a stored group must hold, shapes and dtypes as the configuration's network has them."""
        if not hasattr(self, "_like"):
            self._like = build_model(self.cfg.model, Streams.from_seed(self.cfg.seed, 0), dataset=self.cfg.dataset,
                                     dropout=self.cfg.dropout, width=self.cfg.width).get_weights()
        if name == "theta0":
            return self._like
        if name == "mask":
            return {k: (v.shape, bool) for k, v in self.weights_only(self._like).items()}
        return {"weights": self._like, **({"snapshot": self._like} if level == 0 and self.cfg.rewind_iteration else {})}

    @staticmethod
    def weights_only(params):
        return {k: v for k, v in params.items() if k.endswith(".W")}

    def source_level(self, level):
        """The level whose trained ticket a level's mask is made from."""
        return 0 if self.cfg.oneshot else level - 1

    def reset_point(self, t):
        """What tickets restart from: θ0, or θk of the dense run under late resetting."""
        return self.read(t, 0, "ticket")["snapshot"] if self.cfg.rewind_iteration else self.read(t, name="theta0")

    def make_mask(self, t, level):
        """mask_level of trial t: from the previous ticket (iterative) or the dense run (one-shot),
        scored by the criterion on (w_init = θ0, or θk under late resetting; w_final)."""
        cfg, src = self.cfg, self.source_level(level)
        final = self.weights_only(self.read(t, src, "ticket")["weights"])
        base = ones_masks(final) if cfg.oneshot or src == 0 else self.read_mask(t, src)
        steps = level if cfg.oneshot else 1
        rng = Streams.from_seed(cfg.seed, t, level, len(RUN_KINDS)).mask   # ties and `random`
        mask = prune_step(cfg, self.kinds, self.weights_only(self.reset_point(t)), final, base, rng, steps)
        return {k: v.astype(bool) for k, v in mask.items()}, {"Pm": fraction_remaining(mask)}

    def read_mask(self, t, level):
        return {k: v.astype("float32") for k, v in self.read(t, level, "mask").items()}

    def ticket_start(self, t, level, start, mask, rng):
        """(start weights, fills) of a level's ticket: the mask-1 action on the kept weights, then
        the mask-0 action on the pruned ones (w_final from the source level's ticket). Both work
        from ``start``, the reset point: θ0, or θk under late resetting (so freeze_init freezes at θk)."""
        cfg, src = self.cfg, self.source_level(level)
        src_run = self.read(t, src, "ticket")
        starts = mask1_start(cfg.mask1, self.weights_only(start), mask, rng)
        prev_mask = None if cfg.oneshot or src == 0 else self.read_mask(t, src)
        prev_fill = None if cfg.oneshot else src_run.get("fill")
        starts, fills = mask0_apply(cfg.mask0, starts, self.weights_only(start),   # θ0, or θk: as mask-1
                                    self.weights_only(src_run["weights"]), mask, prev_mask, prev_fill)
        return {**start, **starts}, {k: f for k, f in fills.items() if f is not None}

    def job(self, t, level, kind, j=0):
        """The training run of one group, as a Job: its start, mask and frozen fills read here."""
        cfg = self.cfg
        key = (cfg.seed, t, level, RUN_KINDS.index(kind), j)      # the run's own seeded streams
        theta0 = self.read(t, name="theta0")
        mask = ones_masks(self.weights_only(theta0)) if level == 0 else self.read_mask(t, level)
        start, fills = theta0, {}
        if kind == "ticket" and level > 0:
            start = self.reset_point(t) if cfg.retrain == "rewind" else self.read(t, self.source_level(level),
                                                                                  "ticket")["weights"]
            rngs = Streams.from_seed(*key)
            model_of(cfg, rngs)                                    # as the run: init drawn
            start, fills = self.ticket_start(t, level, start, mask, rngs.init)
        elif kind == "reinit":
            start = reinit_control(cfg.model, Streams.from_seed(*key), cfg.dataset, cfg.dropout, cfg.width)
        elif kind == "random":
            start, mask = theta0, random_mask_like(ones_masks(mask), mask, Streams.from_seed(*key).mask)
        snaps = (cfg.rewind_iteration,) if (level == 0 and cfg.rewind_iteration) else ()
        label = self.label(t, level, "ticket" if kind == "ticket" else f"{kind}_{j}") + ": "
        run_cfg = replace(cfg, train=finetune_config(cfg.train)) if cfg.retrain == "finetune" and \
            kind == "ticket" and level > 0 else cfg
        stack = None if fills or snaps or not self.stackable else (
            (cfg.model, cfg.dataset, run_cfg.train, self.data_ref), runs.train_runs_stacked)   # one architecture
        return Job(runs.train_run, (run_cfg, self.data_ref, key, kind, start, mask, fills, snaps, label), stack=stack)


def _shape_model(cfg):
    """The configured network, built only to read its layers (kinds and sizes)."""
    return model_of(cfg, Streams.from_seed(0))


def weight_kinds(cfg):
    """{"layer.W": "conv" | "fc" | "output"} of the configured model."""
    return _shape_model(cfg).weight_kinds()


def check_plan(cfg):
    """Refuse, before any file exists, a pruning plan under which a layer would empty or stop shrinking."""
    return round_plan(_shape_model(cfg), cfg)
