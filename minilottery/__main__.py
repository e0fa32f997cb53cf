"""Command line: ``python -m minilottery {train,imp,report,bench} ...``.

The papers' hyperparameters are the defaults (minilottery/protocol.py).
"""
import argparse
import importlib
import sys

from minilottery import backend

# subcommand -> module exposing add_arguments(parser) and run(args)
COMMANDS = {
    "train": ("minilottery.cli_train", "train one network with the papers' protocol"),
    "imp": ("minilottery.lottery.cli", "iterative magnitude pruning experiment (resumable)"),
    "report": ("minilottery.report", "table and plot of an experiment file"),
    "bench": ("minilottery.bench", "time training steps against PyTorch"),
}


def add_common(p):
    """Options every subcommand shares."""
    p.add_argument("--backend", choices=backend.BACKENDS, default=None,
                   help=f"array backend (default: ${backend.ENV_VAR} or numpy)")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m minilottery", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_common(p)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(module=module)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return guarded(lambda: importlib.import_module(args.module).run(args), args.backend)


def guarded(job, backend_name=None):
    """Run ``job()`` as a command: clear one-line errors, exit codes, resumable Ctrl-C."""
    try:
        if backend_name:
            backend.set_backend(backend_name)
        return job() or 0
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to continue where it stopped", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
