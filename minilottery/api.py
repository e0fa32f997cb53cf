"""The public Python API (re-exported by ``minilottery``): experiments as plain calls, results as plain data.

    import minilottery as ml
    cfg = ml.configure("imp", model="lenet_300_100", iterations="2ep", rounds=3)
    exp = ml.run(cfg, "runs/x.h5", workers=2)          # runs, resumes or grows; prints nothing
    exp.rows()                                          # [{trial, level, Pm, kind, early_stop_test_acc, ...}]
    exp.curves(exp.rows()[0]["group"])["test_acc"]      # a NumPy array
    ml.open("runs/x.h5").table()                        # the report's table, as text

The commands are clients of :func:`run` and :class:`Results`: they add the
flags, the printed report and the files (--json, figures).
"""
import contextlib
import os

import numpy as np

from minilottery import identity, lengths

LENGTHS = ("iterations", "eval_every", "rewind_iteration", "pretrain_iterations", "finetune_iterations")


def kinds():
    """The experiment kinds: imp, deconstructing, supermask, jackpot, instability, prune_at_init."""
    from minilottery.experiments.base import KINDS
    return tuple(KINDS)


def configure(kind, **settings):
    """The papers' protocol of ``kind`` with flat overrides (``lr=2e-3``; lengths also as ``"2ep"``)."""
    from minilottery.experiments.base import KINDS
    if kind not in KINDS:
        from minilottery.errors import ConfigError
        raise ConfigError(f"unknown experiment kind {kind!r}; choose one of {tuple(KINDS)}")
    given = {k: lengths.parse(v) if k in LENGTHS and isinstance(v, str) else v for k, v in settings.items()}
    return KINDS[kind][0].paper(**given)


def reference(cfg):
    """The configuration a default output name is measured against: the papers' for the same model
    (and method), every other setting at its default."""
    from minilottery.experiments.base import KINDS
    d = cfg.to_dict()
    inner = identity.inner(d)
    keep = {"method": d["method"]} if isinstance(d.get("method"), str) else {}
    return KINDS[d["kind"]][0].paper(model=inner["model"], **keep).to_dict()


def default_out(cfg, folder="runs"):
    """``runs/MODEL_DATASET_KIND[...]-SETTINGS.h5``: a name that carries the configuration (identity.py)."""
    return identity.default_out(cfg.to_dict(), reference(cfg), folder)


def run(cfg, out=None, *, data=None, workers=1, scheduler=None, data_dir=None, mirror=None, log=None,
        progress=False, grow=True, executor=None):
    """Run, resume or grow the experiment of ``cfg`` into ``out`` (default :func:`default_out`); return its
    :class:`Results`. Prints nothing unless ``log`` (e.g. ``print``) is given.

    ``data``: loaded splits to use instead of the dataset (tests, synthetic data); ``workers`` /
    ``scheduler``: where the runs go (results are bitwise the same for any); ``grow``: a configuration
    that only adds runs continues the file (identity.py), else any difference is refused.
    """
    from minilottery import lock
    from minilottery.errors import ConfigError
    from minilottery.experiments.base import KINDS
    from minilottery.executors import make_executor
    from minilottery.plan import DataRef
    from minilottery.store import ExperimentStore
    log = log or (lambda *a, **k: None)
    out = default_out(cfg) if out is None else out
    _, experiment, _ = KINDS[cfg.to_dict()["kind"]]
    experiment.check(cfg)
    lock.check_writable(out, "experiment file", ConfigError)
    if data is None:
        data = DataRef(cfg.dataset, data_dir, mirror)
        data.load()                                                    # before any file is made
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with ExperimentStore(out, cfg.to_dict(), grow=grow) as store:
        log(f"experiment file: {os.path.abspath(out)}")
        if store.grown:
            log(f"growing the experiment: {'; '.join(store.grown)}")
        cfg = identity.apply(cfg, store.config)
        with contextlib.nullcontext(executor) if executor is not None else \
                make_executor(workers, scheduler, progress=progress) as ex:    # one given stays open
            experiment(cfg, store, data, log=log).run(ex)
    return Results(out)


def open(path):  # noqa: A001  (ml.open(path), as h5py.File / xarray.open_dataset)
    """The stored experiment at ``path``, for reading (it may still be running)."""
    return Results(path)


class Results:
    """A stored experiment as plain data: its configuration, rows and curves, its table."""

    def __init__(self, path):
        from minilottery.store import ExperimentStore
        self.path = os.fspath(path)
        self.config = ExperimentStore.read_config(self.path)
        self.kind = self.config.get("kind")

    def rows(self, curves=False):
        """[one dict per finished run] with every number the report shows (reports/export.py);
        ``curves=True`` adds each run's training curves as lists."""
        from minilottery.reports import export
        return export.rows(self.path, curves=curves)[1]

    def curves(self, group):
        """{name: NumPy array} of a run's training curves (iteration, train/val/test loss and accuracy)."""
        return {k: np.asarray(v) for k, v in self.arrays(group)["curves"].items()}

    def arrays(self, group):
        """Every array a group holds (weights, masks, scores, curves), as nested dicts of NumPy arrays."""
        from minilottery.store import ExperimentStore
        return ExperimentStore.open_readonly(self.path).read(group)[0]

    def table(self):
        """The report's text (its tables), without printing or drawing."""
        from minilottery.reports import report_for
        lines = []
        report_for(self.path)(self.path, make_plot=False, log=lines.append)
        return "\n".join(str(x) for x in lines)

    def figure(self, png=None, curves=None):
        """Draw the report's figure(s) (``curves``: levels, or () for the LTH's Figure 3); returns the log."""
        from minilottery.reports import report_for
        lines = []
        report_for(self.path)(self.path, png=png, log=lines.append, curves=curves)
        return [x for x in lines if str(x).startswith("plot")]

    def __repr__(self):
        return f"<minilottery.Results {self.kind} {self.path}>"
