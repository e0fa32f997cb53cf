"""The sanity checks of Frankle, Dziugaite, Roy & Carbin (ICLR 2021), "Pruning Neural Networks
at Initialization: Why are We Missing the Mark?".

Each ablation changes one thing a pruning method chose and keeps the rest:
- ``shuffle``: permute the mask within each layer (the per-layer density stays,
  which weights are kept becomes random);
- ``reinit``: keep the mask, reinitialise the kept weights (a fresh draw θ0');
- ``invert``: keep the weights of *lowest* score instead of the highest
  (``at_init.prune_at_init(..., invert=True)``).
A method that only chooses per-layer densities is insensitive to the first two.
"""
import numpy as np

ABLATIONS = ("none", "shuffle", "reinit", "invert")


def shuffle_within_layers(masks, rng):
    """Each layer's mask with its entries permuted at random: the same count, other positions.

    Where another arrangement exists (0 < kept < size) the permutation is redrawn until
    the mask changes, so a shuffle never silently hands back the mask it was given.
    Layers are shuffled in sorted key order (reproducible for a seeded ``rng``).
    """
    out = {}
    for key in sorted(masks):
        m = np.asarray(masks[key])
        flat, kept = m.ravel(), int(np.count_nonzero(m))
        new = flat[rng.permutation(flat.size)]                    # m' = m ∘ π, π uniform
        while 0 < kept < flat.size and np.array_equal(new, flat):
            new = flat[rng.permutation(flat.size)]
        out[key] = new.reshape(m.shape).copy()
    return out
