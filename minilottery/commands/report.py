"""``python -m minilottery report FILE``: the table and figure of any experiment file, and its results as data.

The experiment kind stored in the file picks the report (minilottery/reports/);
``--csv`` / ``--json`` write every finished run as a flat row (reports/export.py),
``--curves`` adds the training-curve figure and, with them, the curves.
"""
from minilottery.commands import check_writable
from minilottery.errors import ConfigError
from minilottery.reports import report_for
from minilottery.reports import export


def add_arguments(p):
    p.add_argument("file", help="experiment file (.h5) written by any experiment command")
    p.add_argument("--png", default=None, help="plot path (default: FILE with .png)")
    p.add_argument("--no-plot", action="store_true", help="the table only")
    p.add_argument("--curves", type=int, nargs="*", default=None, metavar="LEVEL",
                   help="also draw test accuracy against iteration (IMP: of the tickets of these levels, default "
                        "the levels nearest the LTH paper's Figure 3; supermask: every trained run), and put the "
                        "curves in --csv (FILE_curves.csv beside it) and --json")
    p.add_argument("--csv", default=None, help="write one flat row per finished run to this CSV file")
    p.add_argument("--json", default=None, help="write the configuration and the rows to this JSON file")
    p.add_argument("--toml", default=None, help="write the stored configuration to this TOML file "
                                                "(run it again, or a variant, with COMMAND --config FILE)")


def run(args):
    if args.png is not None and not args.no_plot:                    # before the file is read
        if not args.png.lower().endswith(".png"):
            raise ConfigError(f"--png {args.png!r} must name a .png file (the figure is written as PNG)")
        check_writable(args.png, "--png")
    if args.toml:
        from minilottery import tomlconfig
        from minilottery.store import ExperimentStore
        with open(args.toml, "w") as f:
            f.write(tomlconfig.dumps(ExperimentStore.read_config(args.file), f"the configuration of {args.file}"))
        print(f"wrote {args.toml}")
    report_for(args.file)(args.file, png=args.png, make_plot=not args.no_plot, curves=args.curves)
    if args.csv or args.json:
        cfg, rows = export.rows(args.file, curves=args.curves is not None)
        for path in export.write_csv(args.csv, rows) if args.csv else ():
            print(f"wrote {path}")
        if args.json:
            print(f"wrote {export.write_json(args.json, cfg, rows)}")
