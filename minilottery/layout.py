"""Where things live in an experiment store: every group path, spelled once.

IMP (and the Deconstructing comparisons, which are IMP with other choices)::

    trials/TT/theta0                 θ0 of trial TT, one array per parameter ("fc1.W", "fc1.b", ...)
    trials/TT/levels/LLL/mask        mask of level LLL, one bool array per prunable weight
    trials/TT/levels/LLL/fill        frozen fill F of level LLL (mask-0 actions that freeze at a value)
    trials/TT/levels/LLL/ticket      a run: weights/…, curves/…, attrs (summary, Pm, kind)
    trials/TT/levels/LLL/reinit_J    control runs, same layout (random_0 for random pruning)
"""
TRIALS = "trials"


def trial(t):
    """The group of trial t."""
    return f"{TRIALS}/{t:02d}"


def levels(t):
    """The group holding trial t's levels."""
    return f"{trial(t)}/levels"


def run(t, level=None, name=None):
    """Path of a trial, a level, or a named group in a level ("ticket", "reinit_0", "mask", ...)."""
    g = trial(t) if level is None else f"{levels(t)}/{level:03d}"
    return g if name is None else f"{g}/{name}"
