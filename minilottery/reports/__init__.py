"""One report (a table and a figure) per experiment kind, chosen by the kind the file stores."""
from minilottery.errors import StoreError
from minilottery.store import ExperimentStore


def report_for(path):
    """The ``report`` function for the experiment stored at ``path`` (the kind's in ``KINDS``)."""
    from minilottery.experiments.base import KINDS
    kind = ExperimentStore.read_config(path).get("kind")
    if kind is None:
        raise StoreError(f"{path} names no experiment kind; was it written by an experiment command?")
    if kind not in KINDS:
        raise StoreError(f"{path} holds a {kind!r} experiment, which this version cannot report; "
                         f"known kinds: {tuple(KINDS)}")
    return KINDS[kind][2]
