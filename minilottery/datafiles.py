"""The datasets' files: where they come from, their SHA-256 pins, and their formats parsed.

MNIST and Fashion-MNIST are four gzip IDX files each (the same names), pinned by the
SHA-256 of their decompressed content; CIFAR-10 is the *binary* archive
``cifar-10-binary.tar.gz`` (nothing is unpickled), pinned by the archive's own. ``LOADERS``
give each dataset's official (train, test) sets as uint8 images and int64 labels; what
becomes of them (splits, preprocessing, batches) is :mod:`minilottery.data`'s.
"""
import math

import numpy as np

from minilottery.download import (DatasetError, data_folder, ensure, gunzip, read_tar_members,
                                  sha256_bytes, sha256_file, sources)

NUM_CLASSES = 10

URLS = {
    "mnist": ("https://storage.googleapis.com/cvdf-datasets/mnist/",
              "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}
FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}  # sub-folder of the data folder and mirror
# SHA-256 pins: MNIST and Fashion-MNIST of each file's DECOMPRESSED content (the .gz bytes depend on
# the compressor, the content is the dataset); CIFAR-10 of the archive itself.
# Module-level so that tests can substitute their own small files.
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    "cifar10": {
        "cifar-10-binary.tar.gz": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    },
}
# ---------------------------------------------------------------- MNIST (IDX)
IDX_IMAGES, IDX_LABELS = 2051, 2049  # magic numbers: 0x0803 / 0x0801 = uint8, 3 / 1 dims


def parse_idx(data, magic, where="IDX data"):
    """The uint8 array in an IDX file's (decompressed) content, after checking its header."""
    kind = "images" if magic == IDX_IMAGES else "labels"
    got = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if got != magic:
        raise DatasetError(f"{where}: magic number {got}, expected {magic} (IDX {kind}); "
                           "not the right file: delete it and run again")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(dims)
    if len(data) < header or len(data) - header != size:
        raise DatasetError(f"{where}: header declares {kind} of shape {dims} = {size} bytes, "
                           f"but {len(data) - header} bytes follow it; delete it and run again")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _mnist_file(folder, filename, magic, mirror, dataset="mnist"):
    expected = SHA256[dataset][filename]

    def check(path):
        content = gunzip(path)
        actual = sha256_bytes(content)
        if actual != expected:
            raise DatasetError(f"SHA-256 of the decompressed content is {actual}, expected {expected}")
        return content

    content = ensure(folder, filename, sources(FOLDERS[dataset], filename, URLS[dataset], mirror), check)
    return parse_idx(content, magic, where=str(folder / filename))


def _mnist_raw(data_dir, mirror, dataset="mnist"):
    """((x, y) official train, (x, y) official test): uint8 images (N, 1, 28, 28), int64 labels.

    MNIST, or Fashion-MNIST (``dataset="fashion_mnist"``: the same format and file names).
    """
    folder = data_folder(FOLDERS[dataset], data_dir)
    out = []
    for part in ("train", "t10k"):
        x = _mnist_file(folder, f"{part}-images-idx3-ubyte.gz", IDX_IMAGES, mirror, dataset)
        y = _mnist_file(folder, f"{part}-labels-idx1-ubyte.gz", IDX_LABELS, mirror, dataset)
        if x.shape[1:] != (28, 28) or len(x) != len(y):
            raise DatasetError(f"{folder}: {part} images {x.shape} do not match {len(y)} labels "
                               "of 28x28 digits; delete the files and run again")
        out.append((x[:, None], _labels(y, folder / f"{part}-labels-idx1-ubyte.gz")))
    return out


def _labels(y, where):
    if len(y) and y.max() >= NUM_CLASSES:
        raise DatasetError(f"{where}: label {y.max()} outside 0..{NUM_CLASSES - 1}")
    return y.astype(np.int64)


# ------------------------------------------------------ CIFAR-10 (binary version)
CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR_TRAIN = tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST = "cifar-10-batches-bin/test_batch.bin"
CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then 1024 R, 1024 G, 1024 B bytes (rows of 32)


def parse_cifar_batch(data, where="CIFAR-10 batch"):
    """uint8 images (N, 3, 32, 32) and int64 labels from a ``*.bin`` file's bytes."""
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise DatasetError(f"{where}: {len(data)} bytes is not a whole number of "
                           f"{CIFAR_RECORD}-byte records")
    rec = np.frombuffer(data, np.uint8).reshape(-1, CIFAR_RECORD)
    return rec[:, 1:].reshape(-1, 3, 32, 32), _labels(rec[:, 0], where)


def _cifar10_raw(data_dir, mirror):
    """((x, y) official train, (x, y) official test): uint8 images (N, 3, 32, 32), int64 labels."""
    folder = data_folder("cifar10", data_dir)
    expected = SHA256["cifar10"][CIFAR_ARCHIVE]

    def check(path):
        actual = sha256_file(path)
        if actual != expected:
            raise DatasetError(f"SHA-256 of the archive is {actual}, expected {expected}")

    ensure(folder, CIFAR_ARCHIVE, sources("cifar10", CIFAR_ARCHIVE, URLS["cifar10"], mirror), check)
    archive = folder / CIFAR_ARCHIVE
    members = read_tar_members(archive, set(CIFAR_TRAIN + (CIFAR_TEST,)))
    parts = [parse_cifar_batch(members[n], f"{archive}:{n}") for n in CIFAR_TRAIN + (CIFAR_TEST,)]
    train = tuple(np.concatenate(a) for a in zip(*parts[:-1]))
    return train, parts[-1]



# ------------------------------------------------------------- every dataset
def _fashion_mnist_raw(data_dir, mirror):
    return _mnist_raw(data_dir, mirror, "fashion_mnist")


LOADERS = {"mnist": _mnist_raw, "fashion_mnist": _fashion_mnist_raw, "cifar10": _cifar10_raw}
