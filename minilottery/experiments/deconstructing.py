"""Deconstructing Lottery Tickets (Zhou et al. 2019): the paper's three comparisons.

Each comparison varies one of the three choices the IMP loop makes, the other
two held at the LTH's (large_final, rewind, zero):
  criteria  which weights a round keeps (the criterion)
  mask1     what the kept weights restart from (the mask-1 action)
  mask0     what the pruned weights are frozen at (the mask-0 action)
Every variant is an IMP experiment; all variants of one store share θ0 and the
dense run of each trial (level 0 does not depend on the three choices), and a
variant that two comparisons name (large_final-rewind-zero) runs once.
"""
from dataclasses import dataclass, replace

from minilottery import config
from minilottery.config import option
from minilottery.errors import ConfigError
from minilottery.experiments.base import Experiment
from minilottery.experiments.imp import IMPConfig, IMPExperiment, check_plan

KIND = "deconstructing"
LTH = dict(criterion="large_final", mask1="rewind", mask0="zero")
COMPARISONS = {
    "criteria": ("criterion", ("large_final", "small_final", "large_init", "small_init",
                               "large_init_large_final", "small_init_small_final",
                               "magnitude_increase", "movement", "random")),
    "mask1": ("mask1", ("rewind", "reinit", "reshuffle", "constant",
                        "signed_reinit", "signed_reshuffle", "signed_constant")),
    "mask0": ("mask0", ("zero", "freeze_init", "variant1", "variant2")),
}


def variant_name(criterion, mask1, mask0):
    return f"{criterion}-{mask1}-{mask0}"


def variants(comparison):
    """[(label, variant name, {criterion, mask1, mask0})] of one comparison, in the paper's order."""
    if comparison not in COMPARISONS:
        raise ConfigError(f"unknown comparison {comparison!r}; choose one of {tuple(COMPARISONS)}")
    field_, choices = COMPARISONS[comparison]
    out = []
    for choice in choices:
        choice_set = {**LTH, field_: choice}
        out.append((choice, variant_name(**choice_set), choice_set))
    return out


@dataclass
class DeconstructingConfig:
    imp: IMPConfig = option(IMPConfig, "the IMP protocol every variant runs")
    comparisons: tuple = option(tuple(COMPARISONS), "comparisons to run", kind=str, choices=tuple(COMPARISONS),
                                flag="comparison")

    def __post_init__(self):
        self.comparisons = tuple(self.comparisons)
        for c in self.comparisons:
            variants(c)                                             # refuses unknown names
        if not self.comparisons:
            raise ConfigError("name at least one comparison")
        if self.imp.criterion != "large_final" or self.imp.mask1 != "rewind" or self.imp.mask0 != "zero":
            raise ConfigError("the comparisons set criterion, mask1 and mask0 themselves; leave the base IMP at "
                              "the LTH's (large_final, rewind, zero)")

    @classmethod
    def paper(cls, model="lenet_300_100", comparisons=tuple(COMPARISONS), **given):
        """The comparisons over the LTH's IMP protocol for ``model`` (``IMPConfig.paper``), flat overrides."""
        return cls(imp=IMPConfig.paper(model, **given), comparisons=comparisons)

    @property
    def dataset(self):
        return self.imp.dataset

    def to_dict(self):
        return {"kind": KIND, **config.to_dict(self)}

    def plan(self):
        """{variant name: IMPConfig} over the chosen comparisons, each variant once."""
        out = {}
        for c in self.comparisons:
            for _, name, choice in variants(c):
                out.setdefault(name, replace(self.imp, **choice))
        return out


class DeconstructingExperiment(Experiment):
    """Every variant of ``cfg`` as IMP experiments in one store; the shared groups (θ0, dense) once."""
    kind = KIND
    json_key = "variants"
    describe = staticmethod(IMPExperiment.describe)

    @classmethod
    def check(cls, cfg):
        check_plan(cfg.imp)

    @staticmethod
    def summary(store):
        """{variant name: its IMPExperiment.summary} for every variant of the stored comparisons."""
        names = dict.fromkeys(name for c in store.config["comparisons"] for _, name, _ in variants(c))
        return {name: IMPExperiment.summary(store, name) for name in names}

    def tasks(self):
        tasks = {}
        for name, imp_cfg in self.cfg.plan().items():
            exp = IMPExperiment(imp_cfg, self.store, self.data_ref, self.log, variant=name)
            for task in exp.tasks():
                tasks.setdefault(task.group, task)                # θ0 and the dense run: the first variant's
        return list(tasks.values())
