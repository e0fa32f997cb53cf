"""What makes two configurations one experiment: the settings that may grow, the settings that name a file.

An experiment file keeps its configuration. Pointed at it again, a configuration
that differs only in settings that add runs -- more rounds, trials, random
reinitialisations, control levels, the random-pruning control, another
Deconstructing comparison, another jackpot sparsity, another instability level, another
pruning-at-init method, sparsity or sanity check -- *grows* the file: every
run already there is a run of the new configuration too (each run draws from
streams seeded by its own trial, level and kind, never by how many there are),
so it stays as it is, bitwise, and only the new runs are trained. The file's
configuration becomes the union of the two (:func:`merge`). Any other difference
would change a finished run and is refused, naming only the settings that
differ (:func:`differences`), as dotted keys (``train.iterations``).

A default output name carries the configuration: the settings that differ from
the paper's defaults for the model, outside those that grow, written out when
they are few (``lenet_300_100_mnist_imp-criterion=movement.h5``) and as a short
stable digest otherwise (:func:`default_out`), so variants never collide and a
grown experiment keeps its name (open_lth keys its runs the same way, by the
hyperparameters without the level count).
"""
import hashlib
import json
import os

GROWS = {   # kind -> {dotted key: how two values join}
    "imp": {"rounds": "max", "trials": "max", "reinit": "max", "random_pruning": "any",
            "control_levels": "levels"},
    "deconstructing": {"imp.rounds": "max", "imp.trials": "max", "imp.reinit": "max",
                       "imp.random_pruning": "any", "imp.control_levels": "levels", "comparisons": "union"},
    "jackpot": {"sparsities": "union"},
    "instability": {"trials": "max", "level": "union"},    # not rewind_iteration: the parent trains to the largest k
    "prune_at_init": {"trials": "max", "method": "union", "sparsity": "union", "ablation": "union"},
}
SPELLED_OUT = 40       # a name's settings longer than this are written as a digest


def flat(d, prefix=""):
    """{"train": {"lr": 1}} -> {"train.lr": 1}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _unflat(items):
    out = {}
    for key, v in items.items():
        *path, last = key.split(".")
        node = out
        for p in path:
            node = node.setdefault(p, {})
        node[last] = v
    return out


def inner(cfg):
    """The dict holding model and dataset: a Deconstructing comparison's IMP configuration, else ``cfg``
    (an instability analysis' ``imp`` is a file name)."""
    return cfg["imp"] if isinstance(cfg.get("imp"), dict) else cfg


def kind_of(cfg):
    return cfg.get("kind", "imp")


def differences(old, new, skip=()):
    """['train.iterations: file has 1000, asked 2000', ...] for every leaf that differs, ``skip`` aside."""
    a, b = flat(_plain(old)), flat(_plain(new))
    return [f"{k}: file has {a.get(k)!r}, asked {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if k not in skip and a.get(k) != b.get(k)]


def _join(rule, a, b):
    if rule == "max":
        return max(a, b)
    if rule == "any":
        return bool(a or b)
    if rule == "levels":                     # () means every level: the union of "every" and any is every
        return [] if not a or not b else sorted(set(a) | set(b))
    return list(a) + [v for v in b if v not in a]      # union, the file's order first


def merge(old, new):
    """(the union of two configurations of one experiment, [what differs elsewhere]).

    The first is the configuration the file grows to; the list is empty when growing is all that
    differs, else it names (:func:`differences`) what would change a finished run.
    """
    old, new = _plain(old), _plain(new)
    grows = GROWS.get(kind_of(new), {}) if kind_of(old) == kind_of(new) else {}
    clash = differences(old, new, skip=grows)
    if clash:
        return old, clash
    a, b = flat(old), flat(new)
    merged = {**a, **{k: _join(rule, a[k], b[k]) for k, rule in grows.items() if k in a and k in b}}
    return _unflat(merged), []


def changes(old, new):
    """['rounds: 2 -> 3', ...]: what growing changed."""
    a, b = flat(_plain(old)), flat(_plain(new))
    text = lambda k, v: "all" if k.endswith("control_levels") and v == [] else _text(v)  # noqa: E731  () = every level
    return [f"{k}: {text(k, a.get(k))} -> {text(k, b.get(k))}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def apply(cfg, config):
    """``cfg`` (a config object) with the growing settings of ``config`` (a stored dict): what to run."""
    import dataclasses
    for key in GROWS.get(kind_of(config), {}):
        *path, last = key.split(".")
        value = flat(_plain(config))[key]
        value = tuple(value) if isinstance(value, list) else value
        if path:
            nested = getattr(cfg, path[0])
            cfg = dataclasses.replace(cfg, **{path[0]: dataclasses.replace(nested, **{last: value})})
        else:
            cfg = dataclasses.replace(cfg, **{last: value})
    return cfg


def naming_settings(cfg, reference):
    """{dotted key: value} of ``cfg`` that differ from ``reference`` (the defaults), growing settings aside."""
    a, ref = flat(_plain(cfg)), flat(_plain(reference))
    grows = GROWS.get(kind_of(cfg), {})
    return {k: v for k, v in sorted(a.items()) if k not in grows and ref.get(k) != v}


def default_out(cfg, reference, folder="runs"):
    """``runs/MODEL_DATASET_KIND[_METHOD][-SETTINGS].h5`` (see the module docstring)."""
    cfg = _plain(cfg)
    model = inner(cfg)
    named = isinstance(cfg.get("method"), str)             # supermask's method names the file; a list of methods grows it
    base = f"{model['model']}_{model['dataset']}_{kind_of(cfg)}" + (f"_{cfg['method']}" if named else "")
    settings = naming_settings(cfg, reference)
    if named:
        settings.pop("method", None)
    if not settings:
        return os.path.join(folder, base + ".h5")
    text = "-".join(f"{k.split('.')[-1] if _unique_leaf(k, settings) else k}={_text(v)}" for k, v in settings.items())
    if len(text) > SPELLED_OUT or not all(c.isalnum() or c in "=._-+" for c in text):
        text = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return os.path.join(folder, f"{base}-{text}.h5")


def _unique_leaf(key, settings):
    leaf = key.split(".")[-1]
    return sum(k.split(".")[-1] == leaf for k in settings) == 1


def _text(v):
    if isinstance(v, (list, tuple)):
        return "+".join(_text(x) for x in v) or "none"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _plain(d):
    return json.loads(json.dumps(d))
