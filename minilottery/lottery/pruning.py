"""Magnitude pruning (layer-wise or global) and the random-pruning control.

Masks are host ``numpy`` arrays of 0/1 in the weight's dtype, keyed like the
model's weights (``"fc1.W"``); biases are never pruned. Every pruning step
removes an exact count of the *remaining* weights:
    k_l = round(rate_l · remaining_l)
choosing those with the smallest score |w| (ties broken by flat index, lowest
first), so masks only shrink. After r rounds a layer keeps (1 − rate_l)^r.
"""
import numpy as np



def layer_rates(kinds, conv_rate, fc_rate, output_rate):
    """{"layer.W": rate} from the papers' per-kind rates; kinds from ``Sequential.weight_kinds()``."""
    by_kind = {"conv": conv_rate, "fc": fc_rate, "output": output_rate}
    return {key: by_kind[kind] for key, kind in kinds.items()}


def check_rates(rates, masks):
    for key, rate in rates.items():
        if key not in masks:
            raise ValueError(f"no prunable layer {key!r}; prunable weights are {sorted(masks)}")
        if not 0.0 < rate < 1.0:
            raise ValueError(f"pruning rate for {key} must be in (0, 1), got {rate}")


def prune_counts(masks, rates):
    """{key: number of remaining weights to remove}, refusing to empty a layer."""
    counts = {}
    for key, rate in rates.items():
        remaining = int(masks[key].sum())
        k = int(round(rate * remaining))
        if remaining - k < 1:
            raise ValueError(f"pruning {key} at rate {rate} would leave no weights "
                             f"({remaining} remain); use fewer rounds or a lower rate")
        counts[key] = k
    return counts


def _drop_smallest(score, mask, k):
    """Zero the k remaining entries of ``mask`` with the smallest score (stable on ties)."""
    new = mask.copy()
    alive = np.flatnonzero(mask.ravel())
    order = alive[np.argsort(score.ravel()[alive], kind="stable")]
    new.ravel()[order[:k]] = 0
    return new


def magnitude_prune(weights, masks, rates):
    """Layer-wise: remove round(rate · remaining) smallest-|w| weights of each layer.

    weights, masks: {key: host array}; rates: {key: rate in (0, 1)} (layers
    absent from rates are left as they are). Returns new masks.
    """
    check_rates(rates, masks)
    counts = prune_counts(masks, rates)
    out = {k: m.copy() for k, m in masks.items()}
    for key, k in counts.items():
        out[key] = _drop_smallest(np.abs(weights[key]), masks[key], k)
    return out


def global_magnitude_prune(weights, masks, rate, keys=None):
    """Global: remove round(rate · remaining) smallest-|w| weights across ``keys`` together."""
    keys = sorted(masks) if keys is None else list(keys)
    check_rates({k: rate for k in keys}, masks)
    flat_w = np.concatenate([np.abs(weights[k]).ravel() for k in keys])
    flat_m = np.concatenate([masks[k].ravel() for k in keys])
    k = int(round(rate * flat_m.sum()))
    new_flat = _drop_smallest(flat_w, flat_m, k)
    out, start = {k_: m.copy() for k_, m in masks.items()}, 0
    for key in keys:
        n = masks[key].size
        out[key] = new_flat[start:start + n].reshape(masks[key].shape)
        if out[key].sum() < 1:
            raise ValueError(f"global pruning at rate {rate} would leave layer {key} empty")
        start += n
    return out


def random_prune(masks, counts, rng):
    """Control: remove ``counts[key]`` remaining weights of each layer at random positions."""
    out = {k: m.copy() for k, m in masks.items()}
    for key, k in counts.items():
        out[key] = _drop_smallest(rng.random(masks[key].shape), masks[key], k)
    return out


def random_mask_like(masks, reference, rng):
    """A random mask with the same per-layer number of kept weights as ``reference``."""
    counts = {k: int(masks[k].sum() - reference[k].sum()) for k in reference}
    return random_prune(masks, counts, rng)


def ones_masks(weights):
    """Dense masks (all ones) shaped like the weights."""
    return {k: np.ones_like(w) for k, w in weights.items()}


def fraction_remaining(masks):
    """Pm: fraction of prunable weights still in the network."""
    return float(sum(m.sum() for m in masks.values()) / sum(m.size for m in masks.values()))
