"""Configurations as TOML files: ``--config FILE.toml`` runs from one, ``--print-config`` writes one.

The file holds what ``to_dict()`` holds: top-level settings, then one table per
nested configuration (``[train]``, or ``[search]`` / ``[pretrain]`` / ``[finetune]``
for a jackpot, ``[imp]`` and ``[imp.train]`` for the Deconstructing comparisons).
A setting left out keeps the value the command would give it; a setting that
TOML cannot hold (``none``) is left out. Reading uses ``tomllib`` (Python 3.11+).
"""
import dataclasses
import json
import typing

from minilottery.errors import ConfigError


def dumps(config, comment=""):
    """TOML text of a configuration dict (scalars and lists; nested dicts as tables)."""
    lines = [f"# {c}" if c else "#" for c in comment.splitlines()] if comment else []
    _table(lines, json.loads(json.dumps(config)), "")
    return "\n".join(lines).strip() + "\n"


def _table(lines, d, name):
    scalars = {k: v for k, v in d.items() if not isinstance(v, dict) and v is not None}
    if name and (scalars or not any(isinstance(v, dict) for v in d.values())):
        lines += ["", f"[{name}]"]
    lines += [f"{k} = {_value(v)}" for k, v in scalars.items()]
    for k, v in d.items():
        if isinstance(v, dict):
            _table(lines, v, f"{name}.{k}" if name else k)


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v) if v == v and abs(v) != float("inf") else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    return json.dumps(v) if isinstance(v, str) else str(v)


def load(path):
    """The dict in a TOML file; a missing or malformed file is refused in one line."""
    try:
        import tomllib
    except ImportError:                              # Python < 3.11
        raise ConfigError("--config needs Python 3.11 or later (tomllib)") from None
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read it ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config {path}: not valid TOML ({e})") from None


def values(cls, d, base, where="--config"):
    """``base`` (a config object) with the settings of ``d`` (a dict from :func:`load`); unknown keys refused."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields) - {"kind"})
    if unknown:
        raise ConfigError(f"{where}: {cls.__name__} has no setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(fields)}")
    out = {}
    for k, v in d.items():
        if k == "kind":
            continue
        f = fields[k]
        if dataclasses.is_dataclass(f.type):
            if not isinstance(v, dict):
                raise ConfigError(f"{where}: [{k}] must be a table of settings, got {v!r}")
            v = dataclasses.replace(getattr(base, k), **values(f.type, v, getattr(base, k), f"{where} [{k}]"))
        elif (typing.get_origin(f.type) or f.type) is tuple:
            v = tuple(v) if isinstance(v, list) else v
        out[k] = v
    return out


def from_toml(cls, d, base):
    """``base`` updated with ``d``: the configuration a ``--config`` file asks for."""
    kind = d.get("kind")
    if kind is not None and base.to_dict().get("kind", kind) != kind:
        raise ConfigError(f"--config holds a {kind!r} configuration; this command runs "
                          f"{base.to_dict().get('kind')!r} experiments")
    return dataclasses.replace(base, **values(cls, d, base))
