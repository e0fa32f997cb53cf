"""Training-data augmentation of the deeper networks' protocols (open_lth's CIFAR-10 pipeline).

- ``crop``: pad each image with ``PAD`` = 4 zeros on every side, then cut a window of the
  original size at a random offset (oy, ox) ∈ {0..2·PAD}²;
- ``crop_flip``: the same, then mirror left–right with probability 1/2.
``standard_augmentation(dataset)``: crop_flip for CIFAR-10 and Fashion-MNIST, crop only for
MNIST (a mirrored digit is another digit or none). Every draw comes from the generator given
(the data stream, after the epoch's permutation), so a seeded run is bitwise reproducible;
evaluation is never augmented. The padding is 0 in the preprocessed units: black for the
[0, 1] digits and clothes, the training mean for standardised CIFAR-10 (torchvision pads
black pixels before standardising; the difference is stated, not copied).
"""
import numpy as np

from minilottery.errors import ConfigError

PAD = 4
AUGMENTATIONS = ("crop", "crop_flip")
STANDARD = {"mnist": "crop", "fashion_mnist": "crop_flip", "cifar10": "crop_flip"}


def standard_augmentation(dataset):
    """The papers' augmentation for ``dataset`` (see the module docstring)."""
    if dataset not in STANDARD:
        raise ConfigError(f"no standard augmentation known for dataset {dataset!r}; "
                          f"choose one of {AUGMENTATIONS} or none")
    return STANDARD[dataset]


def augment(x, kind, rng):
    """Host images x (B, C, H, W) cropped [and flipped] at random; a new array."""
    if kind not in AUGMENTATIONS:
        raise ConfigError(f"unknown augmentation {kind!r}; choose one of {AUGMENTATIONS}")
    b, c, h, w = x.shape
    oy, ox = rng.integers(0, 2 * PAD + 1, size=(2, b))          # window offsets in the padded image
    flip = rng.random(b) < 0.5 if kind == "crop_flip" else np.zeros(b, dtype=bool)
    padded = np.pad(x, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))
    rows = oy[:, None] + np.arange(h)                            # (B, H)
    cols = np.where(flip[:, None], ox[:, None] + w - 1 - np.arange(w), ox[:, None] + np.arange(w))  # (B, W)
    return padded[np.arange(b)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]  # y[n, c, i, j] = pad(x)[n, c, oy+i, ox+j or mirrored]
