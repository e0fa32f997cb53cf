"""The protocol every experiment kind follows, and the table of kinds.

An experiment is a config (a dataclass whose ``to_dict()`` carries its kind)
and an :class:`Experiment` over it: ``tasks()`` is its plan of runs (store
groups and what each needs, minilottery/plan.py), ``describe(attrs)`` the
line a finished run gets, ``summary(store)`` the rows its report and
``--json`` show. ``run(executor)`` executes the plan into the store, skipping
what is complete, so a rerun resumes.

``KINDS`` maps a kind to ``(Config, Experiment, report)``; commands and
reports both read it. A new kind is one file here, one in reports/, and one
line in ``_NAMES``.
"""
import importlib
from collections.abc import Mapping

import numpy as np

from minilottery.data import SPLIT_SIZES
from minilottery.errors import ConfigError
from minilottery.nn.models import DEEP, INPUT_SHAPES, MODELS, width_error
from minilottery.executors import Serial
from minilottery.plan import DataRef, execute


class Experiment:
    """A plan of runs over ``cfg``, run or resumed into ``store``.

    ``data``: a ``plan.DataRef`` (where every process finds the dataset), or loaded splits, which
    then travel with the jobs (tests, synthetic data).
    """
    kind = None
    json_key = "runs"           # the summary's key in --json

    def __init__(self, cfg, store, data, log=print):
        self.cfg, self.store, self.log = cfg, store, log
        self.data_ref = data if isinstance(data, DataRef) else DataRef.inline_data(data)

    @classmethod
    def check(cls, cfg):
        """Refuse, before any file exists, what the config alone cannot show (the whole plan)."""

    def run(self, executor=None):
        execute(self.tasks(), self.store, executor or Serial(), self.log, self.describe)
        self.store.mark_complete()

    def tasks(self):
        """[plan.Task] of the whole experiment."""
        raise NotImplementedError

    @staticmethod
    def describe(attrs):
        """The line a finished run gets."""
        raise NotImplementedError

    @staticmethod
    def summary(store):
        """The rows of a store of this kind, for its report and ``--json``."""
        raise NotImplementedError


def plain(attrs):
    """A group's attrs as plain Python values, without the store's ``completed`` flag (for --json)."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items() if k != "completed"}


def check_common(model, dataset, seed, trains=(), dropout=0.0, width=1.0):
    """The checks every kind shares: a known network and dataset, a seed, a width and a dropout the
    network has, mini-batches that fit.

    ``trains``: {what: TrainConfig} (what names the training in the message, "" for the only one).
    """
    for name, value, choices in (("model", model, MODELS), ("dataset", dataset, tuple(INPUT_SHAPES))):
        if value not in choices:
            raise ConfigError(f"unknown --{name} {value!r}; choose one of {choices}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ConfigError(f"--seed must be at least 0 (an integer), got {seed}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"--dropout must be in [0, 1), got {dropout}")
    if width_error(model, width):
        raise ConfigError("--" + width_error(model, width))
    if dropout and model in DEEP:
        raise ConfigError(f"--dropout applies to LeNet and Conv-x only, not {model}")
    n = SPLIT_SIZES[dataset][0]
    for what, train in dict(trains).items():
        if train.batch_size > n:
            flag = f"the {what} batch size" if what else "--batch-size"
            raise ConfigError(f"{flag} {train.batch_size} exceeds the {n} training examples of {dataset}")


# kind -> (experiments/ module's config class, experiment class); the report is reports/KIND.py's
_NAMES = {"imp": ("IMPConfig", "IMPExperiment"),
          "deconstructing": ("DeconstructingConfig", "DeconstructingExperiment"),
          "supermask": ("SupermaskConfig", "SupermaskExperiment"),
          "jackpot": ("JackpotConfig", "JackpotExperiment"),
          "instability": ("InstabilityConfig", "InstabilityExperiment"),
          "prune_at_init": ("PruneAtInitConfig", "PruneAtInitExperiment")}


class _Kinds(Mapping):
    """kind -> (Config, Experiment, report), imported on first use (the reports import experiments)."""

    def __getitem__(self, kind):
        config, experiment = _NAMES[kind]
        module = importlib.import_module(f"minilottery.experiments.{kind}")
        report = importlib.import_module(f"minilottery.reports.{kind}").report
        return getattr(module, config), getattr(module, experiment), report

    def __iter__(self):
        return iter(_NAMES)

    def __len__(self):
        return len(_NAMES)


KINDS = _Kinds()
