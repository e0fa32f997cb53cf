"""Where things live in an experiment store: every group path, spelled once.

IMP (and the Deconstructing comparisons, which are IMP with other choices)::

    trials/TT/theta0                 θ0 of trial TT, one array per parameter ("fc1.W", "fc1.b", ...)
    trials/TT/levels/LLL/mask        mask of level LLL, one bool array per prunable weight
    trials/TT/levels/LLL/ticket      a run: weights/…, curves/…, fill/… (the frozen values F of mask-0
                                     actions that freeze at a value), attrs (summary, Pm, kind)
    trials/TT/levels/LLL/reinit_J    control runs, same layout (random_0 for random pruning)

Supermask and jackpot stores name a run by its fraction (``runs/theta0-k0.50``,
``sparsity/0.955/jackpot``): :func:`fraction_name`, as many decimals as it needs.

A Deconstructing comparison keeps several IMP variants in one store: θ0 and the
dense run (level 0) are shared, every later level lives under its variant::

    variants/VARIANT/trials/TT/levels/LLL/...     (VARIANT = "criterion-mask1-mask0")
"""
TRIALS = "trials"
VARIANTS = "variants"


def _root(variant, level):
    """Where a variant's groups live: shared for θ0 and the dense run (level 0 or none)."""
    return f"{VARIANTS}/{variant}/" if variant and level else ""


def trial(t, variant=None, level=None):
    """The group of trial t."""
    return f"{_root(variant, level)}{TRIALS}/{t:02d}"


def levels(t, variant=None):
    """The group holding trial t's levels (a variant's own levels, 1 and up, when given)."""
    return f"{trial(t, variant, 1)}/levels"


def run(t, level=None, name=None, variant=None):
    """Path of a trial, a level, or a named group in a level ("ticket", "reinit_0", "mask", ...)."""
    g = trial(t, variant, level) if level is None else f"{levels(t, variant if level else None)}/{level:03d}"
    return g if name is None else f"{g}/{name}"


def fraction_name(f):
    """A fraction as a group name: at least two decimals, as many as it needs ("0.90", "0.955")."""
    text = f"{f:.10f}".rstrip("0")
    return text + "0" * max(0, 4 - len(text))
