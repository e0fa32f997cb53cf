"""Dataclass configs ↔ command-line flags, written once for every command.

A config is a dataclass whose fields carry ``metadata={"help": ..., "choices": ...}``
(a tuple field's ``"kind"`` is its elements' type, int by default);
a field that is itself a dataclass (an experiment's ``train: TrainConfig``) is
flattened, so ``--lr`` sets ``cfg.train.lr``. Flags default to None, which
means "not given": the command fills in the papers' values for the chosen
model, then applies what was given (:func:`overrides`, :func:`build`).
"""
import dataclasses
import json
import typing

from minilottery import lengths
from minilottery.errors import ConfigError


def option(default, help_, **meta):
    """A config field with its help text (and ``choices``, or ``kind`` for a tuple's elements);
    a callable default is a factory (a nested config)."""
    kw = {"default_factory": default} if callable(default) else {"default": default}
    return dataclasses.field(metadata={"help": help_, **meta}, **kw)


def _flat_fields(cls, skip=()):
    """(field, owner-path) for every leaf field of ``cls``, nested dataclasses flattened."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if dataclasses.is_dataclass(f.type):
            yield from ((g, (f.name,) + path) for g, path in _flat_fields(f.type, skip))
        else:
            yield f, ()


def add_flags(parser, cls, skip=(), paper_defaults=(), only=None):
    """Add one ``--flag`` per field of ``cls`` (nested dataclasses flattened), with help texts.

    ``paper_defaults``: names whose default is "the paper's for the model";
    ``only``: add just these names (an example exposing a few of a command's flags).
    """
    for f, _ in _flat_fields(cls, skip):
        if only is not None and f.name not in only:
            continue
        flag = "--" + f.name.replace("_", "-")
        meta = dict(f.metadata)
        default = "the paper's for the model" if f.name in paper_defaults else _default(f)
        help_ = f"{meta.get('help', f.name)}{lengths.HELP if meta.get('length') else ''} (default: {default})"
        origin = typing.get_origin(f.type) or f.type
        if f.type is bool:
            parser.add_argument(flag, action="store_true", default=None, help=help_)
        elif origin is tuple:
            parser.add_argument(flag, type=meta.get("kind", int), nargs="*", default=None, help=help_)
        else:
            parser.add_argument(flag, type=lengths.parse if meta.get("length") else f.type, default=None, choices=meta.get("choices"), help=help_,
                                metavar=None if meta.get("choices") else f.name.upper())


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default if f.default != () else "all"
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "required"


def overrides(args, cls, skip=()):
    """{field name: value} of the flags of ``cls`` that were given on the command line."""
    return {f.name: getattr(args, f.name) for f, _ in _flat_fields(cls, skip)
            if getattr(args, f.name, None) is not None}


def build(cls, base, given, dataset=None):
    """``cls`` from ``base`` (a dict, nested dataclass values allowed) and flat ``given`` overrides.

    A given name that belongs to a nested dataclass field (``lr`` of ``train``) is routed there.
    A length given in epochs (``lengths.Epochs``) becomes iterations of the config's dataset
    (or ``dataset``) at the batch size of the config it lands in.
    """
    values = dict(base)
    nested = {f.name: f.type for f in dataclasses.fields(cls) if dataclasses.is_dataclass(f.type)}
    top = {f.name for f in dataclasses.fields(cls)}
    later = {k: v for k, v in given.items() if isinstance(v, lengths.Epochs)}
    for name, v in [*((k, v) for k, v in given.items() if k not in later), *later.items()]:
        owner = None if name in top else next(
            (n for n, t in nested.items() if name in {g.name for g in dataclasses.fields(t)}), None)
        if owner is None and name not in top:
            raise ConfigError(f"unknown option {name!r} for {cls.__name__}")
        if name in later:      # every other override is in place; a top-level length counts the training's batches
            batch = (values[owner].batch_size if owner else values["batch_size"] if "batch_size" in values
                     else next(values[n] for n in nested).batch_size)
            v = lengths.iterations(v, values.get("dataset", dataset), batch)
        if owner is None:
            values[name] = v
        else:
            values[owner] = dataclasses.replace(values[owner], **{name: v})
    cfg = cls(**values)
    _check_applies(cfg, given)
    return cfg


def _check_applies(cfg, given):
    """Refuse a given option whose field says it applies only under some value of another
    (``applies=(name, values)`` in its metadata) where that value is not chosen: never silently ignored."""
    owners = [cfg] + [getattr(cfg, f.name) for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(f.type)]
    for name in given:
        for obj in owners:
            f = {g.name: g for g in dataclasses.fields(obj)}.get(name)
            if f is not None and "applies" in f.metadata:
                attr, values = f.metadata["applies"]
                if getattr(obj, attr) not in values:
                    raise ConfigError(f"--{name.replace('_', '-')} does not apply to {attr} {getattr(obj, attr)!r}: "
                                      f"it is for {attr} {' or '.join(values)}")
                break


def to_dict(cfg):
    """A JSON-able dict of a (nested) config; tuples become lists."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls, d):
    """The inverse of :func:`to_dict` (unknown keys are refused, naming them)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {unknown}")
    values = {}
    for k, v in d.items():
        t = names[k].type
        if dataclasses.is_dataclass(t):
            v = from_dict(t, v)
        elif (typing.get_origin(t) or t) is tuple:
            v = tuple(v)
        values[k] = v
    return cls(**values)
