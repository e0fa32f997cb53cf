"""What the weights restart from after pruning (Deconstructing Lottery Tickets, Zhou et al. 2019).

Mask-1 actions set the start of the *kept* weights, per layer:
``MASK1[name](w0, mask, rng) -> start``, w0 the layer's whole θ0 weight. Late
resetting is the caller's: pass θk as w0 and every action works from θk
(rewind to θk, shuffles of θk, α from θk). Values at pruned positions are
returned as computed; the mask-0 action decides them.

Mask-0 actions set the *pruned* weights, frozen and never trained, per layer:
``MASK0[name](start, w0, w_final, mask, prev_mask, prev_fill) -> (start', fill)``.
The layer computes
    W_eff = W ⊙ m + (1 − m) ⊙ F
with F = fill (None means F = 0); start' is the trainable start, exactly +0.0 at
pruned positions. fill is 0 at kept positions. Only positions pruned *now*
(prev_mask 1, mask 0) get a fill from the rule; positions pruned at an earlier
level (prev_mask 0) keep prev_fill (0 where prev_fill is None); prev_mask None
means the layer was dense before. w0 is the reset point, the value a weight
restarts training from (θ0, or θk under late resetting, as for mask-1):
variant1/2 compare |w_f| against |w0|, and freeze at w0.
The paper's code names freeze_init_zero_mask / freeze_init_zero_all are
accepted for variant1 / variant2 (``CODE_NAMES``).

sign(θ0): a weight of exactly 0 (or −0.0) counts as positive, so the signed
actions give it +|v| (signed_constant: +α). Glorot θ0 is never exactly 0.
α = the population standard deviation (ddof=0) of the layer's whole w0,
computed in float64 and rounded once to the weight's dtype. Every output keeps
the weight's dtype.
"""
import numpy as np

from minilottery.errors import ConfigError


def _alpha(w0):
    return w0.dtype.type(np.std(w0, dtype=np.float64))           # α = sqrt(mean((θ0 − mean θ0)²))


def _signed(v, w0):
    return np.where(w0 < 0, -np.abs(v), np.abs(v)).astype(w0.dtype, copy=False)  # |v| · sign(θ0), sign(0) = +1


def rewind(w0, mask, rng):
    return w0.copy()                                              # θ0 (θk under late resetting)


def reinit(w0, mask, rng):
    """Deconstructing's "reinit" (not the LTH's reinit control, resets.reinit_control)."""
    return rng.permutation(w0.ravel()).reshape(w0.shape)          # π(θ0) over the whole layer


def reshuffle(w0, mask, rng):
    out = w0.copy()                                               # θ0 values permuted among kept positions
    kept = np.flatnonzero(np.ravel(mask))
    out.ravel()[kept] = rng.permutation(w0.ravel()[kept])
    return out


def constant(w0, mask, rng):
    a = _alpha(w0)                                                # ±α, signs fair coins
    return np.where(rng.integers(0, 2, size=w0.shape) == 1, a, -a).astype(w0.dtype, copy=False)


def signed_reinit(w0, mask, rng):
    return _signed(reinit(w0, mask, rng), w0)                     # |π(θ0)| · sign(θ0)


def signed_reshuffle(w0, mask, rng):
    return _signed(reshuffle(w0, mask, rng), w0)                  # |π_kept(θ0)| · sign(θ0)


def signed_constant(w0, mask, rng):
    return _signed(np.full_like(w0, _alpha(w0)), w0)              # α · sign(θ0)


MASK1 = {fn.__name__: fn for fn in (
    rewind, reinit, reshuffle, constant, signed_reinit, signed_reshuffle, signed_constant)}


def _check_dtypes(w0, *others):
    for a in others:
        if a is not None and a.dtype != w0.dtype:
            raise TypeError(f"arrays of dtype {a.dtype} and {w0.dtype} mixed; nothing casts silently")


def _frozen(rule_value, start, w0, mask, prev_mask, prev_fill):
    """(start', fill): start' = start ⊙ m; fill = prev_fill where pruned earlier, the rule where pruned now, 0 where kept."""
    _check_dtypes(w0, start, prev_fill)
    kept = np.asarray(mask) != 0
    before = np.ones_like(kept) if prev_mask is None else np.asarray(prev_mask) != 0
    if np.any(kept & ~before):
        raise ConfigError("a mask revives a weight pruned at an earlier level")
    new_start = np.where(kept, start, w0.dtype.type(0.0))          # start' = start ⊙ m, +0.0 where pruned
    if rule_value is None and prev_fill is None:
        return new_start, None                                    # F = 0 everywhere
    fill = np.zeros_like(w0)
    now = before & ~kept
    if rule_value is not None:
        fill[now] = rule_value[now]                               # F = rule at positions pruned now
    if prev_fill is not None:
        fill[~before] = prev_fill[~before]                        # F = earlier F at positions pruned before
    return new_start, fill


def _shrank(w0, w_final):
    return np.abs(w_final) < np.abs(w0)                           # |w_f| < |w_i|: moved toward 0


def zero(start, w0, w_final, mask, prev_mask=None, prev_fill=None):
    return _frozen(None, start, w0, mask, prev_mask, prev_fill)   # F = 0 (the LTH)


def freeze_init(start, w0, w_final, mask, prev_mask=None, prev_fill=None):
    return _frozen(w0, start, w0, mask, prev_mask, prev_fill)     # F = θ0


def variant1(start, w0, w_final, mask, prev_mask=None, prev_fill=None):
    _check_dtypes(w0, w_final)
    rule = np.where(_shrank(w0, w_final), w0.dtype.type(0.0), w0)    # F = 0 if |w_f| < |w_i| else θ0
    return _frozen(rule, start, w0, mask, prev_mask, prev_fill)


def variant2(start, w0, w_final, mask, prev_mask=None, prev_fill=None):
    new_start, fill = variant1(start, w0, w_final, mask, prev_mask, prev_fill)   # pruned: as variant1
    new_start[_shrank(w0, w_final)] = 0                            # kept and |w_f| < |w_i|: start at 0
    return new_start, fill


MASK0 = {fn.__name__: fn for fn in (zero, freeze_init, variant1, variant2)}
CODE_NAMES = {"freeze_init_zero_mask": "variant1", "freeze_init_zero_all": "variant2"}


def get_mask1(name):
    """The mask-1 action called ``name``; ConfigError naming the choices otherwise."""
    if name not in MASK1:
        raise ConfigError(f"unknown mask-1 action {name!r}; choose one of {tuple(MASK1)}")
    return MASK1[name]


def get_mask0(name):
    """The mask-0 action called ``name`` (a code name of ``CODE_NAMES`` too); ConfigError otherwise."""
    name = CODE_NAMES.get(name, name)
    if name not in MASK0:
        raise ConfigError(f"unknown mask-0 action {name!r}; choose one of {tuple(MASK0) + tuple(CODE_NAMES)}")
    return MASK0[name]


def mask1_start(action, start, masks, rng):
    """{key: start of the kept weights} for every layer of ``masks`` (sorted key order for the draws);
    ``start``: the reset point's weights, θ0 or θk (the actions' w0)."""
    fn = get_mask1(action)
    return {key: fn(start[key], masks[key], rng) for key in sorted(masks)}


def mask0_apply(action, starts, start, final_weights, masks, prev_masks=None, prev_fills=None):
    """({key: start'}, {key: fill or None}) for every layer of ``masks``.

    starts: the mask-1 action's; start: the reset point's weights, θ0 or θk (the actions' w0);
    prev_masks: the masks of the previous level (None: dense before); prev_fills:
    the fills it returned (None, or a dict whose values may be None).
    """
    fn = get_mask0(action)
    new_starts, fills = {}, {}
    for key in sorted(masks):
        prev_mask = None if prev_masks is None else prev_masks[key]
        prev_fill = None if prev_fills is None else prev_fills.get(key)
        new_starts[key], fills[key] = fn(starts[key], start[key], final_weights[key],
                                         masks[key], prev_mask, prev_fill)
    return new_starts, fills
