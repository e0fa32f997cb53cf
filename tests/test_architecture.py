"""The house's one-way data flow, checked on the sources: the mask math (lottery/) imports no
plumbing, the engine (nn/) no lottery, and no module is over the house's size."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "minilottery"
PLUMBING = ("minilottery.store", "minilottery.plan", "minilottery.layout", "minilottery.commands",
            "minilottery.reports", "minilottery.experiments", "minilottery.h5file", "minilottery.lock")


def imports(path):
    """Every module name ``path`` imports (``from a import b`` gives a and a.b)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def offending(folder, banned):
    return sorted((p.name, m) for p in (ROOT / folder).glob("*.py") for m in imports(p)
                  if any(m == b or m.startswith(b + ".") for b in banned))


def test_lottery_is_mask_math_only():
    assert offending("lottery", PLUMBING) == []


def test_nn_never_imports_lottery():
    assert offending("nn", ("minilottery.lottery",) + PLUMBING) == []


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_far_over_300_lines(path):
    assert len(path.read_text().splitlines()) <= 350
