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
    return importlib.import_module(REPORTS[kind]).report
