"""One report (a table and a figure) per experiment kind, chosen by the kind the file stores."""
import dataclasses

from minilottery.errors import StoreError
from minilottery.store import ExperimentStore


def report_for(path):
    """The ``report`` function for the experiment stored at ``path`` (the kind's in ``KINDS``).

    A file's configuration must fit its kind's fields exactly (else it was altered); a file without a
    kind is read as IMP only when its fields are exactly IMP's (written before kinds were stored).
    """
    from minilottery.experiments.base import KINDS
    config = ExperimentStore.read_config(path)
    kind = config.get("kind")
    if kind is None and set(config) == _fields(KINDS["imp"][0]) - {"kind"}:
        kind = "imp"
    if kind is None:
        raise StoreError(f"{path} names no experiment kind; was it written by an experiment command?")
    if kind not in KINDS:
        raise StoreError(f"{path} holds a {kind!r} experiment, which this version cannot report; "
                         f"known kinds: {tuple(KINDS)}")
    odd = sorted((set(config) ^ _fields(KINDS[kind][0])) - {"kind"})
    if odd:
        raise StoreError(f"{path} says it holds a {kind!r} experiment, but its configuration does not fit one "
                         f"(fields {', '.join(odd[:4])} missing or unknown): the file was altered; rerun the "
                         f"experiment into a new file")
    return KINDS[kind][2]


def markdown(head, rows):
    """A Markdown table: the ``head`` cells, the rule under them, then one line per list of cells."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def _fields(config_class):
    """The names a stored configuration of this class has: its fields and "kind"."""
    return {f.name for f in dataclasses.fields(config_class)} | {"kind"}


def table_and_figure(path, summary, header, format_table, plot, title, png=None, make_plot=True, log=print):
    """A report whose table and figure both come from the kind's summary rows: ``header(cfg)`` (a line),
    ``format_table(rows)``, and ``plot(rows, png, "TITLE, MODEL / DATASET\nPROTOCOL", trials)``; returns
    the table."""
    from minilottery.protocol import paper_protocol
    from minilottery.reports import figure
    cfg = ExperimentStore.read_config(path)
    rows = summary(ExperimentStore.open_readonly(path))
    if not rows:
        log(f"{path} has no finished runs yet")
        return None
    log(header(cfg))
    table = format_table(rows)
    log(table)
    if make_plot:
        paper = paper_protocol(cfg["model"], cfg.get("dropout", 0.0)).train.iterations
        text = (f"{title}, {cfg['model']} / {cfg['dataset']}\n"
                f"{figure.protocol(cfg['train']['iterations'], paper, cfg['trials'])}")
        figure.draw(lambda png: plot(rows, png, text, cfg["trials"]), path, png, log)
    return table
