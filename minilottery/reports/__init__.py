"""One report (a table and a figure) per experiment kind, chosen by the kind the file stores."""
import importlib

from minilottery.errors import StoreError
from minilottery.store import ExperimentStore

# experiment kind -> module exposing report(path, png=None, make_plot=True, log=print)
REPORTS = {"imp": "minilottery.reports.imp", "deconstructing": "minilottery.reports.deconstructing",
           "supermask": "minilottery.reports.supermask",
           "jackpot": "minilottery.reports.jackpot"}


def report_for(path):
    """The ``report`` function for the experiment stored at ``path``."""
    kind = ExperimentStore.read_config(path).get("kind", "imp")
    if kind not in REPORTS:
        raise StoreError(f"{path} holds a {kind!r} experiment, which this version cannot report; "
                         f"known kinds: {tuple(REPORTS)}")
    config, fields = ExperimentStore.read_config(path), _fields(kind)
    odd = sorted((set(config) ^ fields) - {"kind"})                # (an IMP file may predate its kind)
    if odd:
        raise StoreError(f"{path} says it holds a {kind!r} experiment, but its configuration does not fit one "
                         f"(fields {', '.join(odd[:4])} missing or unknown): the file was altered; rerun the "
                         f"experiment into a new file")
    return importlib.import_module(REPORTS[kind]).report


# experiment kind -> its configuration class (module, name), whose fields a stored config has, and "kind"
CONFIGS = {"imp": ("minilottery.lottery.imp", "IMPConfig"),
           "deconstructing": ("minilottery.lottery.deconstructing", "DeconstructingConfig"),
           "supermask": ("minilottery.lottery.supermask_experiment", "SupermaskConfig"),
           "jackpot": ("minilottery.lottery.jackpot_experiment", "JackpotConfig")}


def _fields(kind):
    import dataclasses
    module, name = CONFIGS[kind]
    return {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), name))} | {"kind"}
