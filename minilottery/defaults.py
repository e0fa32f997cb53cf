"""What ``--help`` shows as a default: the number it resolves to for the model (and method) on the command line.

A command's parser is built before its flags are read, so :func:`chosen` looks
ahead in the command line for ``--model`` (or ``--method``); :func:`shown` then
gives each flag the value the papers' protocol sets for that choice, e.g.
``--iterations (default: 50000 for lenet_300_100)``. An example passes its own
quick protocol's configuration, so its help shows the numbers it runs.
"""
import sys


def chosen(flag, default, argv=None):
    """The value of ``--flag`` on the command line (``--flag X`` or ``--flag=X``), else ``default``."""
    argv = sys.argv[1:] if argv is None else argv
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return default


def value_of(cfg, leaf):
    """The value a flag (a ``config.leaves`` entry) has in the config object ``cfg`` (nested at any depth)."""
    import dataclasses
    owner = getattr(cfg, leaf.owner) if leaf.owner else cfg
    todo = [owner]
    while todo:
        obj = todo.pop(0)
        if leaf.field in dataclasses.fields(obj):
            return getattr(obj, leaf.field.name)
        todo += [getattr(obj, f.name) for f in dataclasses.fields(obj) if dataclasses.is_dataclass(f.type)]
    return getattr(owner, leaf.field.name)


def text(v):
    if isinstance(v, (tuple, list)):
        return " ".join(text(x) for x in v) if v else "none"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def shown(cls, cfg, names, why):
    """{flag dest: "VALUE WHY"} for the flags of ``cls`` named in ``names``, their values in ``cfg``."""
    from minilottery import config
    return {leaf.dest: f"{text(value_of(cfg, leaf))} {why}".strip() for leaf in config.leaves(cls)
            if leaf.dest in names}


def example(cls, quick, paper, names):
    """{flag: "10000 in the quick protocol; --paper: 50000"}: an example's --help shows what it runs."""
    q, p = shown(cls, quick, names, ""), shown(cls, paper, names, "")
    return {k: f"{q[k]} in the quick protocol; --paper: {p[k]}" if q[k] != p[k] else q[k] for k in q}
