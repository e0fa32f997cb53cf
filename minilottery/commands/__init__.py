"""Every command of ``python -m minilottery``, in one place.

Each command is a module here exposing ``add_arguments(parser)`` and
``run(args)``; :func:`main` builds the parser from :data:`COMMANDS` and runs
one under :func:`guarded`, which turns every expected failure into one line on
stderr and exit code 2 (tracebacks only for real bugs). Examples use the same
pieces: :func:`add_io_arguments` and :func:`guarded`.
"""
import argparse
import dataclasses
import importlib
import json
import os
import sys

from minilottery import backend, config, lock
from minilottery.errors import ConfigError, MiniLotteryError, one_line

# command -> (module, one-line help)
COMMANDS = {
    "train": ("minilottery.commands.train", "train one network with the papers' protocol"),
    "imp": ("minilottery.commands.imp", "iterative magnitude pruning experiment (resumable)"),
    "deconstructing": ("minilottery.commands.deconstructing",
                       "Deconstructing Lottery Tickets: criteria, mask-1 and mask-0 actions compared (resumable)"),
    "supermask": ("minilottery.commands.supermask", "supermasks over frozen weights: at init, learned, edge-popup"),
    "jackpot": ("minilottery.commands.jackpot", "Lottery Jackpots: masks searched in a pre-trained network (resumable)"),
    "instability": ("minilottery.commands.instability",
                    "linear mode connectivity of networks and IMP subnetworks rewound to k (resumable)"),
    "prune-at-init": ("minilottery.commands.prune_at_init",
                      "SNIP, GraSP, SynFlow, magnitude, random at initialisation, with sanity checks (resumable)"),
    "report": ("minilottery.commands.report", "table and plot of an experiment file"),
    "bench": ("minilottery.commands.bench", "time training steps against PyTorch"),
}


def add_backend_argument(p):
    p.add_argument("--backend", choices=backend.BACKENDS, default=None,
                   help=f"array backend (default: ${backend.ENV_VAR} or numpy)")


def add_io_arguments(p, out_help=None, json_help=None):
    """Data location, progress, and (when help texts are given) --out and --json."""
    if out_help:
        p.add_argument("--out", default=None, help=out_help)
    if json_help:
        p.add_argument("--json", default=None, help=json_help)
    p.add_argument("--data-dir", default=None,
                   help=f"where datasets are kept (default: $MINILOTTERY_DATA, else {data_root_shown()})")
    p.add_argument("--mirror", default=None,
                   help="folder or URL holding mnist/, fashion-mnist/ and cifar10/ (default $MINILOTTERY_MIRROR)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def data_root_shown():
    """The default data folder as --help shows it (the user's home as ~)."""
    from minilottery.download import default_root
    root, home = str(default_root()), os.path.expanduser("~")
    return "~" + root[len(home):] if home != "/" and root.startswith(home + os.sep) else root


def prog_name(argv0=None):
    """How the user started the program: the ``minilottery`` console script, or ``python -m minilottery``."""
    name = os.path.basename(argv0 if argv0 is not None else sys.argv[0])
    return "python -m minilottery" if name in ("__main__.py", "-m", "-c", "") else "minilottery"


def add_executor_arguments(p):
    """Where an experiment's independent runs go: worker processes here, or a Dask cluster."""
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for independent runs (default: the number of cores; 1 runs "
                        "everything in this process); results are bitwise the same for any number")
    p.add_argument("--scheduler", default=None,
                   help="address of a Dask scheduler (tcp://host:8786) to run the runs on a cluster "
                        "(pip install 'minilottery[cluster]' here and on the workers)")
    p.add_argument("--stack", type=int, default=None, metavar="R",
                   help="train up to R runs of one architecture that are ready together (trials, controls) "
                        "as one stacked network, each run's result as alone (default: 1 on numpy, 16 on "
                        "cupy; LeNet and Conv-2/4/6 without dropout, not yet BatchNorm nets)")


def executor_from_args(args):
    """The executor of ``--workers`` / ``--scheduler``; per-iteration progress unless ``--quiet``."""
    from minilottery.executors import make_executor
    return make_executor(args.workers, args.scheduler, getattr(args, "stack", None), progress=not args.quiet)


def check_writable(path, what):
    """Refuse, before any work, an output path that cannot be written (``lock.check_writable``)."""
    if path is not None:
        lock.check_writable(path, what, ConfigError)


def write_json(path, obj):
    """Write ``obj`` as JSON to ``path``, making its folder if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def add_experiment_arguments(p, cls, paper_defaults, out_help, json_help, skip=()):
    """An experiment command's flags: the config's (their defaults as the numbers they resolve to for the
    ``--model`` / ``--method`` on the command line), --config / --print-config, data and output, --json,
    the executor."""
    config.add_flags(p, cls, skip=skip, paper_defaults=resolved_defaults(cls, paper_defaults))
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help="run the configuration in this TOML file (from --print-config, or report --toml); "
                        "flags given as well override it")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration (as TOML) and the plan (runs, estimated time), and exit")
    add_io_arguments(p, out_help=out_help, json_help=json_help)
    add_executor_arguments(p)


def resolved_defaults(cls, names):
    """{flag: "VALUE for MODEL"} of ``names``: what each default resolves to for the model (and method)
    on the command line (defaults.py); a dict of texts is kept as it is."""
    from minilottery import defaults
    if isinstance(names, dict) or not hasattr(cls, "paper"):
        return names
    choice = {"model": defaults.chosen("--model", "lenet_300_100")}
    if any(f.name == "method" and f.type is str for f in dataclasses.fields(cls)):
        choice["method"] = defaults.chosen("--method", "learned")
    try:
        cfg = cls.paper(**choice)
    except MiniLotteryError:                          # a bad --model: the parser will say so
        return names
    why = "for " + " ".join(choice.values())
    return defaults.shown(cls, cfg, names, why)


def config_from_args(args, cls, skip=()):
    """The configuration a command runs: the papers' protocol (or ``--config FILE``) with the flags given."""
    from minilottery import identity, tomlconfig
    given = config.overrides(args, cls, skip)
    if not getattr(args, "config", None):
        return cls.paper(**given)
    d = tomlconfig.load(args.config)
    inner = identity.inner(d)
    choice = {k: v for k, v in (("model", inner.get("model")), ("method", d.get("method")))
              if isinstance(v, str)}
    base = tomlconfig.from_toml(cls, d, cls.paper(**choice))
    return config.build(cls, {f.name: getattr(base, f.name) for f in dataclasses.fields(cls)}, given)


def print_config(cfg, out, args):
    """--print-config: the configuration as TOML (``--config`` reads it back) and the plan, as comments."""
    from minilottery import estimate, tomlconfig
    from minilottery.store import ExperimentStore
    store = ExperimentStore.open_readonly(out) if os.path.exists(out) else None
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    plan = estimate.plan(cfg, store, workers)
    print(tomlconfig.dumps(cfg.to_dict(), f"{cfg.to_dict()['kind']} experiment into {out}\nplan: {plan['text']}"),
          end="")


def run_command(cfg, args, out=None):
    """Run, resume or grow ``cfg`` as a command: its flags' output (default: a name that carries the
    configuration), data, --json, --print-config and executor."""
    from minilottery import api
    out = args.out if args.out is not None else (out or api.default_out(cfg))    # "" is refused below
    if getattr(args, "print_config", False):
        return print_config(cfg, out, args)
    with executor_from_args(args) as executor:
        return run_in_store(cfg, out, args.data_dir, args.mirror, args.json, executor=executor)


def run_in_store(cfg, out, data_dir=None, mirror=None, json_path=None, log=print, executor=None):
    """Run, resume or grow the experiment of ``cfg`` into ``out`` (``minilottery.run``), print its report,
    write ``{"config", key: summary}`` to ``json_path`` (JSON all the way down: reports/export.plain);
    return the summary."""
    from minilottery import api
    from minilottery.experiments.base import KINDS
    from minilottery.reports import export
    _, experiment, report = KINDS[cfg.to_dict()["kind"]]
    check_writable(json_path, "--json")
    from minilottery.store import ExperimentStore
    results = api.run(cfg, out, data_dir=data_dir, mirror=mirror, log=log, executor=executor)
    report(out, log=log)
    rows = export.plain(experiment.summary(ExperimentStore.open_readonly(out)))   # JSON text decoded
    if json_path:
        export.write_json(json_path, results.config, rows, key=experiment.json_key)
        log(f"wrote {json_path}")
    return rows


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message and where to read the usage, exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = Parser(prog=prog_name(), description="The lottery-ticket literature in plain NumPy.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name != "report":                           # a report computes nothing
            add_backend_argument(p)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(module=module)
    return parser


def run_example(doc, add_own, run, out_help, argv=None):
    """An example's command line: its own flags (``add_own(parser)``), then the backend, data,
    output and worker flags every experiment shares; runs ``run(args)`` under :func:`guarded`."""
    p = Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_own(p)
    add_backend_argument(p)
    add_io_arguments(p, out_help=out_help)
    add_executor_arguments(p)
    args = p.parse_args(argv)
    return guarded(lambda: run(args), args.backend)


def main(argv=None):
    args = build_parser().parse_args(argv)
    return guarded(lambda: importlib.import_module(args.module).run(args), getattr(args, "backend", None))


def guarded(job, backend_name=None):
    """Run ``job()`` as a command: one-line errors with exit code 2, resumable Ctrl-C (130)."""
    try:
        backend.set_backend(backend_name or backend.default_name())  # an unusable backend fails first
        return job() or 0
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to continue where it stopped", file=sys.stderr)
        return 130
    except (MiniLotteryError, OSError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
