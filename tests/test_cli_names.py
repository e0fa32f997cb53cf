"""How the program names itself and its defaults in --help."""
from minilottery.commands import build_parser, prog_name


def test_usage_line_names_the_console_script_or_the_module():
    assert prog_name("/home/u/.venv/bin/minilottery") == "minilottery"
    assert prog_name("/src/minilottery/__main__.py") == "python -m minilottery"
    assert build_parser().prog in ("minilottery", "python -m minilottery")
