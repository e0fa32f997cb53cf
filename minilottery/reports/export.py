"""Results as data: every kind's rows as JSON all the way down, or as a flat CSV, curves on request.

Each report module has ``rows(store, curves=False)``: one dict per finished run
(IMP, Deconstructing, supermask) or per sparsity (jackpot), with every number its
table shows plus the final test and train accuracy, and with ``curves=True`` the
run's training curves under ``"curves"``. Here they become plain JSON (NumPy
scalars and arrays as numbers and lists, JSON strings stored in HDF5 attributes
decoded, NaN as null), or flat CSV columns (nested keys joined with ".", the
curves in a second, long-format file: one line per run and evaluation point).
"""
import csv
import importlib
import json
import math
import os

import numpy as np

from minilottery.store import ExperimentStore


def rows(path, curves=False):
    """(config, rows) of the experiment at ``path``, every value plain Python."""
    store = ExperimentStore.open_readonly(path)
    from minilottery.reports import report_for
    module = importlib.import_module(report_for(path).__module__)      # the stored kind's reports/ module
    return plain(store.config), plain(module.rows(store, curves=curves))


def plain(v):
    """``v`` as JSON-able Python: NumPy values unwrapped, JSON text decoded, NaN and inf as None."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return plain(v.tolist())
    if isinstance(v, np.generic):
        return plain(v.item())
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return plain(json.loads(v))
        except ValueError:
            return v
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def flatten(row, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}; lists of numbers stay whole only where nothing else fits (as JSON)."""
    out = {}
    for k, v in row.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


def write_json(path, config, rows, key="rows"):
    """``{"config": ..., key: rows}`` as JSON (no NaN: None is null)."""
    _folder(path)
    with open(path, "w") as f:
        json.dump({"config": config, key: plain(rows)}, f, indent=1, allow_nan=False)
    return path


def write_csv(path, rows):
    """``rows`` (curves left out) as one flat CSV; with curves, also ``PATH_curves.csv``; returns the paths."""
    _folder(path)
    flat = [flatten({k: v for k, v in r.items() if k != "curves"}) for r in rows]
    _csv(path, flat)
    written = [path]
    if any("curves" in r for r in rows):
        long = []
        for r, f in zip(rows, flat):
            ident = {k: f[k] for k in ("variant", "group", "trial", "level", "Pm", "kind", "weights", "sparsity")
                     if k in f}
            c = r.get("curves") or {}
            sets = [({}, c)] if "iteration" in c else [({"unit": u}, cu) for u, cu in c.items()]
            for extra, cs in sets:
                for i in range(len(cs["iteration"])):
                    long.append({**ident, **extra, **{name: vals[i] for name, vals in cs.items()}})
        written.append(_csv(os.path.splitext(path)[0] + "_curves.csv", long))
    return written


def _csv(path, flat):
    columns = list(dict.fromkeys(k for r in flat for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, columns, restval="")
        w.writeheader()
        w.writerows(flat)
    return path


def _folder(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
