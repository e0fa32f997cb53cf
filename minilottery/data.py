"""MNIST, Fashion-MNIST and CIFAR-10: verified files in, the papers' splits out, batches on the device.

    splits = load_dataset("mnist")                      # Splits(train, val, test), host arrays
    batches = Batches(*splits.train, batch_size=60, rng=streams.data)
    xb, yb = next(batches)                              # on the active backend

Files come from the official releases: MNIST's four IDX files (gzip), Fashion-MNIST's
four IDX files of the same names (Xiao, Rasul & Vollgraf 2017, from the dataset's
published location, folder ``fashion-mnist``) and CIFAR-10's *binary* archive
``cifar-10-binary.tar.gz`` (nothing is unpickled). Fashion-MNIST is here because it is
an offline set on which a ResNet is not at its ceiling; its numbers are not comparable
to the papers' CIFAR-10 numbers (only the shape of a claim can be checked on it).
Where they are downloaded from and stored (mirror and data-folder settings) is
described in :mod:`minilottery.download` and ``datasets/README.md``. The pins in
:data:`minilottery.datafiles.SHA256` are checked every time a file is used.

Preprocessing (defined here and nowhere else)
---------------------------------------------
* Images: uint8 pixels divided by 255 to float32 in [0, 1], layout NCHW:
  MNIST and Fashion-MNIST ``(N, 1, 28, 28)``, CIFAR-10 ``(N, 3, 32, 32)`` with channels
  R, G, B. (VGG pads grey 28×28 inputs to 32×32 itself, nn/models.py.)
* CIFAR-10 only, after that: per-channel standardisation ``(x - mean[c]) / std[c]``,
  with the mean and population standard deviation (ddof=0) of channel ``c``
  over every pixel of the 45,000 *training-split* images (validation images
  excluded), applied unchanged to the validation and test splits.
  MNIST and Fashion-MNIST are not standardised.
* Labels: int64 class indices 0..9. Augmentation, where a protocol asks for it, is
  applied to training batches only (:class:`Batches`, minilottery/augment.py).

Splits (the papers')
--------------------
MNIST and Fashion-MNIST 55,000 train / 5,000 validation / 10,000 test; CIFAR-10 45,000 / 5,000 /
10,000. The test split is the official test set. The validation split is drawn
from the official training set: ``numpy.random.default_rng(split_seed).permutation(N)``
over its N images; the first 5,000 indices are validation, the rest training,
each then sorted so both keep the official order. ``split_seed`` defaults to 0
and is separate from the training seeds, so every run sees the same split.
"""
from dataclasses import dataclass

import numpy as np

from minilottery import backend
from minilottery.augment import AUGMENTATIONS, augment
from minilottery.datafiles import LOADERS
from minilottery.download import DatasetError

__all__ = ["DatasetError", "Splits", "load_dataset", "Batches", "split_indices"]

# (train, validation, test) sizes; train + validation = the official training set.
SPLIT_SIZES = {"mnist": (55_000, 5_000, 10_000), "fashion_mnist": (55_000, 5_000, 10_000),
               "cifar10": (45_000, 5_000, 10_000)}


def epochs(n, batch, dataset):
    """Iterations in n epochs of a dataset's training split: ⌈n · N_train / batch⌉."""
    return -(-n * SPLIT_SIZES[dataset][0] // batch)


@dataclass
class Splits:
    """Host arrays ``(x, y)``: x float32 NCHW, y int64 (see the module docstring); ``name``: the dataset."""
    train: tuple
    val: tuple
    test: tuple
    name: str = None



def split_indices(n, n_val, split_seed=0):
    """(train, validation) indices into the official training set; see "Splits" above."""
    order = np.random.default_rng(split_seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _channel_stats(x):
    """Per-channel mean and population std (float64, pixel units) of uint8 images (N, C, H, W).

    Computed exactly from each channel's histogram of the 256 pixel values,
    without a float copy of the images.
    """
    v = np.arange(256, dtype=np.float64)
    counts = np.stack([np.bincount(x[:, c].ravel(), minlength=256) for c in range(x.shape[1])])
    counts = counts.astype(np.float64)                  # (C, 256)
    n = counts.sum(axis=1)
    mean = counts @ v / n
    var = (counts * (v - mean[:, None]) ** 2).sum(axis=1) / n
    return mean, np.sqrt(var)


def _to_unit(x):
    """uint8 -> float32 in [0, 1] (divided in place: one allocation)."""
    out = x.astype(np.float32)
    out /= np.float32(255)
    return out


def load_dataset(name, data_dir=None, mirror=None, split_seed=0):
    """Load ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"`` as :class:`Splits` of preprocessed host arrays.

    Downloads and verifies the files first if needed (``data_dir`` and
    ``mirror``: see :mod:`minilottery.download`). Raises :class:`DatasetError`
    for a missing, corrupt or wrong file, ``ValueError`` for an unknown name.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {tuple(LOADERS)}")
    (x, y), (x_test, y_test) = LOADERS[name](data_dir, mirror)
    n_train, n_val, n_test = SPLIT_SIZES[name]
    if len(x) != n_train + n_val or len(x_test) != n_test:
        raise DatasetError(f"{name}: found {len(x)} training and {len(x_test)} test examples, "
                           f"expected {n_train + n_val} and {n_test}")
    train_idx, val_idx = split_indices(len(x), n_val, split_seed)
    parts = [(x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), (x_test, y_test)]
    if name == "cifar10":  # stats of the uint8 training split, rescaled to [0, 1] units
        mean, std = _channel_stats(parts[0][0])
        shift = (mean / 255).astype(np.float32).reshape(1, -1, 1, 1)
        scale = (np.where(std > 0, std, 1.0) / 255).astype(np.float32).reshape(1, -1, 1, 1)
    parts = [(_to_unit(xs), ys) for xs, ys in parts]
    if name == "cifar10":
        for xs, _ in parts:
            xs -= shift  # in place: CIFAR-10 in float32 is 737 MB
            xs /= scale
    return Splits(*parts, name=name)


# ------------------------------------------------------------------------ batches
class Batches:
    """Endless shuffled mini-batches ``(x, y)`` on the active backend: ``next(batches)``.

    The examples are uploaded once (``backend.resident``) and each batch is gathered on
    the device; the order is drawn on the host, so both backends see the same batches.

    Every epoch draws a new permutation of the examples from ``rng`` (a host
    ``numpy.random.Generator``, e.g. ``Streams.data``) and cuts it into
    consecutive batches of ``batch_size``. The last partial batch of an epoch is
    DROPPED: every batch has exactly ``batch_size`` examples and each example
    appears at most once per epoch (MNIST: 55,000 // 60 = 916 batches, a
    different 40 examples left out each epoch).

    ``augment`` ("crop", "crop_flip" or None; minilottery/augment.py) transforms each
    batch on the host with draws from the same ``rng``, after the epoch's permutation.

    Attributes: ``epoch``, the 0-based epoch of the latest batch;
    ``batches_per_epoch``.
    """

    def __init__(self, x, y, batch_size=60, rng=None, augment=None):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator, e.g. Streams.from_seed(seed).data")
        if not 1 <= batch_size <= len(x):
            raise ValueError(f"batch_size {batch_size} must be between 1 and the number "
                             f"of examples ({len(x)})")
        if augment is not None and augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {augment!r}; choose one of {AUGMENTATIONS} or None")
        self.x, self.y, self.batch_size, self.rng, self.augment = x, y, int(batch_size), rng, augment
        self._dx, self._dy = backend.resident(x), backend.resident(y)   # the data stays on the device
        self.batches_per_epoch = len(x) // self.batch_size
        self.epoch = 0
        self._order, self._next = None, 0  # permutation of this epoch, index of the next batch

    def __iter__(self):
        return self

    def __next__(self):
        if self._order is None or self._next == self.batches_per_epoch:
            if self._order is not None:
                self.epoch += 1
            self._order, self._next = self.rng.permutation(len(self.x)), 0
            self._device_order = backend.asarray(self._order)  # one upload an epoch (NumPy: itself)
        idx = self._device_order[self._next * self.batch_size:(self._next + 1) * self.batch_size]
        self._next += 1
        if self.augment is not None:                      # drawn and cut on the host, then moved
            host = self._order[(self._next - 1) * self.batch_size:self._next * self.batch_size]
            return backend.asarray(augment(self.x[host], self.augment, self.rng)), self._dy[idx]
        return self._dx[idx], self._dy[idx]               # gathered where the data lives

