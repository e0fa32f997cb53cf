"""Where things live in an experiment store: every group path, spelled once.

IMP (and the Deconstructing comparisons, which are IMP with other choices)::

    trials/TT/theta0                 θ0 of trial TT, one array per parameter ("fc1.W", "fc1.b", ...)
    trials/TT/levels/LLL/mask        mask of level LLL, one bool array per prunable weight
    trials/TT/levels/LLL/ticket      a run: weights/…, curves/…, fill/… (the frozen values F of mask-0
                                     actions that freeze at a value), attrs (summary, Pm, kind)
    trials/TT/levels/LLL/reinit_J    control runs, same layout (random_0 for random pruning)

A Deconstructing comparison keeps several IMP variants in one store: θ0 and the
dense run (level 0) are shared, every later level lives under its variant::

    variants/VARIANT/trials/TT/levels/LLL/...     (VARIANT = "criterion-mask1-mask0")

Supermask (at_init, learned, edge-popup)::

    theta0                   θ0 (Glorot normal, the seed's trial-0 draw, as IMP's)
    dense                    the trained dense run (at_init only): weights, curves, summary
    runs/WEIGHTS-KEY         one run: scores (learned, edge-popup), curves, masks, summary attrs;
                             WEIGHTS the frozen weights (theta0, signed_constant; kaiming,
                             signed_kaiming), KEY the fraction kept (``k0.50``) or DWR (plain, dwr)

Jackpot (S the sparsity, "0.90": the fraction of the searched weights pruned)::

    pretrained               theta0 (θ0), weights (the pre-trained network), curves (trained here only);
                             attrs: source ("trained" or the IMP file), the dense val_acc / test_acc
    sparsity/S/magnitude     masks: the magnitude-pruned network at the jackpot's budgets, no training;
                             attrs: its val_acc / test_acc (= the search's step 0), the budgets
    sparsity/S/jackpot       scores and masks at the validation-selected point, final_masks, curves;
                             attrs: test accuracy there (early_stop_test_acc) and at the end, iterations
    sparsity/S/edgepopup     the same search from U(±1/√fan_in) scores, top-|s| at the same per-layer
                             counts, over the same pre-trained weights: scores, masks, curves
    sparsity/S/finetune      magnitude masks fixed, the kept weights (and the dense classifier) trained
    sparsity/S/overlap       attrs: overlap(jackpot mask, X) overall and per layer (JSON)

Prune-at-init (NAME = METHOD-ABLATION-sS, S the sparsity: ``snip-shuffle-s0.90``)::

    trials/TT/theta0         θ0 (the seed's draw of trial TT, as IMP's)
    trials/TT/masks/NAME     a mask (the reinit check trains the ``none`` mask: it has none of its own);
                             attrs: density, density_per_layer (JSON)
    trials/TT/runs/NAME      a trained pruned network: weights, curves; attrs: summary, test_acc (final)

Instability (LLL the level, KKKKKK the rewind iteration k)::

    trials/TT/theta0                          θ0 (the IMP file's, or the seed's draw)
    trials/TT/parent                          snapshots/KKKKKK: W_k of the dense network; curves
    trials/TT/levels/LLL/mask                 the IMP mask of level LLL (> 0), copied from the IMP file
    trials/TT/levels/LLL/rewind/KKKKKK/copy_C one of the two copies: weights, curves, summary
    trials/TT/levels/LLL/rewind/KKKKKK/path   alpha, test_error, train_error; attrs: instability

Fractions in names have as many decimals as they need (:func:`fraction_name`).
"""
TRIALS = "trials"
VARIANTS = "variants"
THETA0, DENSE, RUNS = "theta0", "dense", "runs"                 # supermask
PRETRAINED, SPARSITY = "pretrained", "sparsity"                 # jackpot


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


def supermask_run(weights, variable):
    """``runs/WEIGHTS-KEY``: KEY ``dwr`` / ``plain`` for a bool (learned), ``kF`` for a fraction kept."""
    key = ("dwr" if variable else "plain") if isinstance(variable, bool) else f"k{fraction_name(variable)}"
    return supermask_group(f"{weights}-{key}")


def supermask_group(name):
    """``runs/NAME``: a supermask run by its name in the store."""
    return f"{RUNS}/{name}"


def sparsity(s, unit=None):
    """``sparsity/S`` of a jackpot store (``s`` a fraction, or a stored name), or a unit in it."""
    g = f"{SPARSITY}/{s if isinstance(s, str) else fraction_name(s)}"
    return g if unit is None else f"{g}/{unit}"


def pai(t, what, name=None):
    """Prune-at-init: ``trials/TT/theta0``, ``trials/TT/masks/NAME``, ``trials/TT/runs/NAME``."""
    return f"{trial(t)}/{what}" + (f"/{name}" if name else "")


def rewound(t, what=None, level=None, k=None):
    """Instability: ``trials/TT/{theta0,parent}``, ``.../levels/LLL/mask``, ``.../levels/LLL/rewind/KKKKKK/NAME``."""
    g = trial(t) if level is None else run(t, level)
    if k is not None:
        g += f"/rewind/{k:06d}"
    return g if what is None else f"{g}/{what}"
