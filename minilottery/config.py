"""Dataclass configs ↔ command-line flags, written once for every command.

A config is a dataclass whose fields are made with :func:`option` (a help
text, ``choices``, a tuple field's ``kind`` of elements, int by default).
A field that is itself a dataclass (an experiment's ``train: TrainConfig``)
is flattened, so ``--lr`` sets ``cfg.train.lr``; a nested field with a
``prefix`` gives its flags that prefix (``--pretrain-iterations`` sets
``cfg.pretrain.iterations``), and ``only`` limits them to a few names. A
field's flag is its name as users type it: ``flag="sparsity"`` names the
flag of the field ``sparsities``. Flags default to None, which means "not
given": the command fills in the papers' values for the chosen model, then
applies what was given (:func:`overrides`, :func:`build`).
"""
import dataclasses
import json
import typing

from minilottery import lengths
from minilottery.errors import ConfigError


def option(default, help_, **meta):
    """A config field with its help text and, in ``meta``: ``choices``, ``kind`` (a tuple's elements),
    ``flag`` (the flag's name when it is not the field's), ``prefix`` / ``only`` (a nested config's
    flags: prefixed, and just these names); a callable default is a factory (a nested config)."""
    kw = {"default_factory": default} if callable(default) else {"default": default}
    return dataclasses.field(metadata={"help": help_, **meta}, **kw)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One flag of a config: the field, the name it is given by (``dest``), its nested owner, its help."""
    field: dataclasses.Field
    dest: str
    owner: str = None
    help: str = ""

    @property
    def flag(self):
        return "--" + self.field.metadata.get("flag", self.dest).replace("_", "-")


def leaves(cls, skip=()):
    """Every flag of ``cls``: leaf fields, nested dataclasses flattened (one level of prefixes)."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if not dataclasses.is_dataclass(f.type):
            yield Leaf(f, f.name, None, f.metadata.get("help", f.name))
            continue
        prefix, only = f.metadata.get("prefix"), f.metadata.get("only")
        for leaf in leaves(f.type, skip):
            if only is None or leaf.dest in only:
                yield Leaf(leaf.field, f"{prefix}_{leaf.dest}" if prefix else leaf.dest, f.name,
                           f"{f.metadata.get('help')}: {leaf.help}" if prefix else leaf.help)


def add_flags(parser, cls, skip=(), paper_defaults=(), only=None):
    """Add one flag per leaf of ``cls`` (:func:`leaves`), with help texts.

    ``paper_defaults``: names whose default is "the paper's for the model", or {name: default text};
    ``only``: add just these names (an example exposing a few of a command's flags).
    """
    defaults = paper_defaults if isinstance(paper_defaults, dict) else dict.fromkeys(
        paper_defaults, "the paper's for the model")
    for leaf in leaves(cls, skip):
        f = leaf.field
        if only is not None and leaf.dest not in only:
            continue
        meta = dict(f.metadata)
        length = lengths.HELP if meta.get("length") else ""
        help_ = f"{leaf.help}{length} (default: {defaults.get(leaf.dest, _default(f))})"
        origin = typing.get_origin(f.type) or f.type
        kw = dict(default=None, dest=leaf.dest, help=help_)
        if f.type is bool:
            parser.add_argument(leaf.flag, action="store_true", **kw)
            continue
        kw.update(choices=meta.get("choices"), metavar=None if meta.get("choices") else leaf.flag[2:].replace("-", "_").upper())
        if origin is tuple:
            parser.add_argument(leaf.flag, type=meta.get("kind", int), nargs="*", **kw)
        else:
            parser.add_argument(leaf.flag, type=lengths.parse if meta.get("length") else f.type, **kw)


def _default(f):
    if "shown" in f.metadata:
        return f.metadata["shown"]
    if f.default is not dataclasses.MISSING:
        return f.default if f.default != () else "all"
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "required"


def overrides(args, cls, skip=()):
    """{name: value} of the flags of ``cls`` that were given on the command line."""
    return {leaf.dest: getattr(args, leaf.dest) for leaf in leaves(cls, skip)
            if getattr(args, leaf.dest, None) is not None}


def build(cls, base, given, dataset=None):
    """``cls`` from ``base`` (a dict, nested dataclass values allowed) and flat ``given`` overrides.

    A given name that belongs to a nested dataclass field (``lr`` of ``train``, ``pretrain_iterations``
    of ``pretrain``) is routed there. A length given in epochs (``lengths.Epochs``) becomes iterations
    of the config's dataset (or ``dataset``) at the batch size of the config it lands in.
    """
    values = dict(base)
    top = {f.name for f in dataclasses.fields(cls)}
    routes = {leaf.dest: leaf for leaf in leaves(cls) if leaf.owner is not None}
    nested = [f.name for f in dataclasses.fields(cls) if dataclasses.is_dataclass(f.type)]
    later = {k: v for k, v in given.items() if isinstance(v, lengths.Epochs)}
    for name, v in [*((k, v) for k, v in given.items() if k not in later), *later.items()]:
        if name not in top and name not in routes:
            raise ConfigError(f"unknown option {name!r} for {cls.__name__}")
        owner = None if name in top else routes[name].owner
        if name in later:      # every other override is in place; a top-level length counts the training's batches
            batch = (values[owner].batch_size if owner else values["batch_size"] if "batch_size" in values
                     else values[nested[0]].batch_size)
            v = lengths.iterations(v, values.get("dataset", dataset), batch)
        if owner is None:
            values[name] = v
        else:
            values[owner] = dataclasses.replace(values[owner], **{routes[name].field.name: v})
    cfg = cls(**values)
    _check_applies(cfg, {leaf.dest: leaf for leaf in leaves(cls) if leaf.dest in given})
    return cfg


def _check_applies(cfg, given):
    """Refuse a given option whose field says it applies only under some value of another
    (``applies=(name, values)`` in its metadata) where that value is not chosen: never silently ignored.

    ``given``: {dest: Leaf} of the options given."""
    for leaf in given.values():
        if "applies" not in leaf.field.metadata:
            continue
        obj = cfg if leaf.owner is None else getattr(cfg, leaf.owner)
        attr, values = leaf.field.metadata["applies"]
        if getattr(obj, attr) not in values:
            raise ConfigError(f"{leaf.flag} does not apply to {attr} {getattr(obj, attr)!r}: "
                              f"it is for {attr} {' or '.join(values)}")


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
