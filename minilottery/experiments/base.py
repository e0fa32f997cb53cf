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

from minilottery.plan import DataRef, Serial, execute


class Experiment:
    """A plan of runs over ``cfg``, run or resumed into ``store``.

    ``data_ref`` says where workers find the data (default: ``data`` itself, shipped to them).
    """
    kind = None

    def __init__(self, cfg, store, data, progress=True, log=print, data_ref=None):
        self.cfg, self.store, self.progress, self.log = cfg, store, progress, log
        self.data_ref = data_ref or DataRef.inline_data(data)
        self.data_ref.provide(data)

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


# kind -> (experiments/ module's config class, experiment class); the report is reports/KIND.py's
_NAMES = {"imp": ("IMPConfig", "IMPExperiment"),
          "deconstructing": ("DeconstructingConfig", "DeconstructingExperiment"),
          "supermask": ("SupermaskConfig", "SupermaskExperiment"),
          "jackpot": ("JackpotConfig", "JackpotExperiment")}


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
