"""``python -m minilottery report FILE``: the table and figure of any experiment file.

The experiment kind stored in the file picks the report (minilottery/reports/).
"""
from minilottery.reports import report_for


def add_arguments(p):
    p.add_argument("file", help="experiment file (.h5) written by any experiment command")
    p.add_argument("--png", default=None, help="plot path (default: FILE with .png)")
    p.add_argument("--no-plot", action="store_true", help="the table only")


def run(args):
    report_for(args.file)(args.file, png=args.png, make_plot=not args.no_plot)
