"""Data loading: real MNIST through the mirror, tiny hand-written MNIST / CIFAR-10
files for the format and corruption cases, and the batch iterators."""
import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from minilottery import data, datafiles, download
from minilottery.backend import to_numpy
from minilottery.data import Batches, DatasetError, load_dataset, split_indices

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def leftovers(folder):
    """Files in a data folder, temporary ones included."""
    return sorted(os.listdir(folder)) if folder.exists() else []


# ------------------------------------------------------------------ real MNIST
@pytest.fixture(scope="module")
def real(mirror, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    return data_dir, load_dataset("mnist", data_dir=data_dir, mirror=mirror)


def test_real_mnist_shapes_dtypes_ranges(real):
    data_dir, s = real
    for (x, y), n in zip((s.train, s.val, s.test), (55_000, 5_000, 10_000)):
        assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
    assert sorted(os.listdir(data_dir / "mnist")) == sorted(MNIST_FILES)  # no temp files


def test_real_mnist_split_seed(real, tmp_path):
    data_dir, s = real
    # the files are present: they are verified and used, the (missing) mirror is never asked
    nowhere = str(tmp_path / "nowhere")
    again = load_dataset("mnist", data_dir=data_dir, mirror=nowhere, split_seed=0)
    other = load_dataset("mnist", data_dir=data_dir, mirror=nowhere, split_seed=1)
    for a, b in zip((s.train, s.val, s.test), (again.train, again.val, again.test)):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(s.val[1], other.val[1])
    assert not np.array_equal(s.train[0], other.train[0])
    assert np.array_equal(s.test[0], other.test[0])  # the test set never moves


def test_real_mnist_split_is_disjoint_and_covers_training_set(real):
    data_dir, s = real
    train_idx, val_idx = split_indices(60_000, 5_000, 0)
    assert len(train_idx) == 55_000 and len(val_idx) == 5_000
    assert not set(train_idx) & set(val_idx)
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(60_000))
    (x, y), (xt, yt) = datafiles._mnist_raw(data_dir, None)
    assert np.array_equal(s.train[0], x[train_idx] / np.float32(255))
    assert np.array_equal(s.train[1], y[train_idx]) and np.array_equal(s.val[1], y[val_idx])
    assert np.array_equal(s.test[0], xt / np.float32(255)) and np.array_equal(s.test[1], yt)


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match="mnist.*cifar10"):
        load_dataset("imagenet")


# ------------------------------------------------------------------ tiny MNIST
def idx_bytes(a, magic):
    return (magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in a.shape)
            + a.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A mirror folder with 12 + 5 MNIST-format images; pins and split sizes patched to match."""
    rng = np.random.default_rng(0)
    arrays = {"train": (rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), rng.integers(0, 10, 12)),
              "t10k": (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5))}
    folder = tmp_path / "mirror" / "mnist"
    folder.mkdir(parents=True)
    pins = {}
    for part, (x, y) in arrays.items():
        for kind, a, magic in (("images-idx3", x, 2051), ("labels-idx1", y, 2049)):
            content = idx_bytes(a, magic)
            (folder / f"{part}-{kind}-ubyte.gz").write_bytes(gzip.compress(content))
            pins[f"{part}-{kind}-ubyte.gz"] = sha(content)
    monkeypatch.setitem(datafiles.SHA256, "mnist", pins)
    monkeypatch.setitem(data.SPLIT_SIZES, "mnist", (9, 3, 5))
    return folder.parent, arrays


def test_mirror_accepts_folder_and_file_url(tiny_mnist, tmp_path):
    mirror, arrays = tiny_mnist
    a = load_dataset("mnist", data_dir=tmp_path / "a", mirror=str(mirror))
    b = load_dataset("mnist", data_dir=tmp_path / "b", mirror=mirror.as_uri())
    assert [len(p[0]) for p in (a.train, a.val, a.test)] == [9, 3, 5]
    for p, q in zip((a.train, a.val, a.test), (b.train, b.val, b.test)):
        np.testing.assert_array_equal(p[0], q[0])
    np.testing.assert_array_equal(a.test[0][:, 0], arrays["t10k"][0] / np.float32(255))
    np.testing.assert_array_equal(a.test[1], arrays["t10k"][1])
    assert leftovers(tmp_path / "b" / "mnist") == sorted(MNIST_FILES)


def test_environment_settings_and_argument_precedence(tiny_mnist, tmp_path, monkeypatch):
    mirror, _ = tiny_mnist
    monkeypatch.setenv("MINILOTTERY_MIRROR", mirror.as_uri())
    monkeypatch.setenv("MINILOTTERY_DATA", str(tmp_path / "env"))
    load_dataset("mnist")
    assert leftovers(tmp_path / "env" / "mnist") == sorted(MNIST_FILES)
    assert download.sources("mnist", "f.gz", ("https://x/",), mirror="/m") == ["file:///m/mnist/f.gz"]
    assert download.data_folder("mnist", tmp_path / "arg") == tmp_path / "arg" / "mnist"
    monkeypatch.delenv("MINILOTTERY_MIRROR")
    assert download.sources("mnist", "f.gz", datafiles.URLS["mnist"]) == [
        "https://storage.googleapis.com/cvdf-datasets/mnist/f.gz",
        "https://ossci-datasets.s3.amazonaws.com/mnist/f.gz"]
    assert download.sources("cifar10", "c.tar.gz", ("http://h/base/",), mirror="http://m/d/") == [
        "http://m/d/cifar10/c.tar.gz"]


def test_truncated_gzip_present_is_reported(tiny_mnist, tmp_path):
    mirror, _ = tiny_mnist
    load_dataset("mnist", data_dir=tmp_path, mirror=mirror)
    f = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"(?s)train-images-idx3-ubyte\.gz.*gzip.*delete it"):
        load_dataset("mnist", data_dir=tmp_path, mirror=mirror)


def test_truncated_gzip_in_mirror_is_not_kept(tiny_mnist, tmp_path):
    mirror, _ = tiny_mnist
    f = mirror / "mnist" / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:50])
    with pytest.raises(DatasetError, match=r"(?s)t10k-images-idx3-ubyte\.gz.*gzip.*mirror"):
        load_dataset("mnist", data_dir=tmp_path, mirror=mirror)
    assert leftovers(tmp_path / "mnist") == sorted(MNIST_FILES[:2])


def test_wrong_checksum_names_file_expected_and_actual(tiny_mnist, tmp_path):
    mirror, _ = tiny_mnist
    content = idx_bytes(np.zeros(5, np.uint8), 2049)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(content))
    expected = datafiles.SHA256["mnist"]["t10k-labels-idx1-ubyte.gz"]
    with pytest.raises(DatasetError) as e:
        load_dataset("mnist", data_dir=tmp_path, mirror=mirror)
    msg = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and expected in msg and sha(content) in msg
    assert "delete it and run again" in msg


def test_wrong_checksum_download_is_not_kept(tiny_mnist, tmp_path, monkeypatch):
    mirror, _ = tiny_mnist
    monkeypatch.setitem(datafiles.SHA256["mnist"], "train-images-idx3-ubyte.gz", "0" * 64)
    with pytest.raises(DatasetError, match=r"(?s)MINILOTTERY_MIRROR.*expected 0{64}"):
        load_dataset("mnist", data_dir=tmp_path, mirror=mirror)
    assert leftovers(tmp_path / "mnist") == []


def test_wrong_magic_number(tiny_mnist, tmp_path, monkeypatch):
    labels = idx_bytes(np.zeros(3, np.uint8), 2049)
    with pytest.raises(DatasetError, match="magic number 2049, expected 2051"):
        datafiles.parse_idx(labels, datafiles.IDX_IMAGES)
    with pytest.raises(DatasetError, match="magic number None"):
        datafiles.parse_idx(b"\x00", datafiles.IDX_LABELS)
    # through the loader: a label file served (with a matching pin) as the training images
    mirror, _ = tiny_mnist
    (mirror / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(labels))
    monkeypatch.setitem(datafiles.SHA256["mnist"], "train-images-idx3-ubyte.gz", sha(labels))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: magic number 2049"):
        load_dataset("mnist", data_dir=tmp_path, mirror=mirror)


def test_idx_declared_size_must_match_length():
    good = idx_bytes(np.zeros((2, 28, 28), np.uint8), 2051)
    assert datafiles.parse_idx(good, datafiles.IDX_IMAGES).shape == (2, 28, 28)
    for bad in (good[:-1], good + b"\x00", good[:10]):
        with pytest.raises(DatasetError, match="header declares images"):
            datafiles.parse_idx(bad, datafiles.IDX_IMAGES)


def test_mirror_missing_a_file_leaves_nothing(tiny_mnist, tmp_path):
    mirror, _ = tiny_mnist
    (mirror / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"(?s)could not get .*t10k-labels-idx1-ubyte\.gz.*mirror"):
        load_dataset("mnist", data_dir=tmp_path, mirror=mirror)
    assert leftovers(tmp_path / "mnist") == sorted(MNIST_FILES[:3])


class Broken(io.BytesIO):
    """A download that delivers some bytes, then fails."""

    def __init__(self, error):
        super().__init__(b"\x1f\x8b" + b"x" * 100)
        self.error = error

    def read(self, *args):
        if self.tell() > 0:
            raise self.error
        return super().read(10)


@pytest.mark.parametrize("error", [ConnectionResetError("reset by peer"), KeyboardInterrupt()])
def test_interrupted_download_leaves_nothing(tiny_mnist, tmp_path, monkeypatch, error):
    mirror, _ = tiny_mnist
    monkeypatch.setattr(download, "urlopen", lambda url, timeout: Broken(error))
    with pytest.raises(DatasetError if isinstance(error, Exception) else KeyboardInterrupt):
        load_dataset("mnist", data_dir=tmp_path, mirror=mirror)
    assert leftovers(tmp_path / "mnist") == []


# ------------------------------------------------------------------ tiny CIFAR-10
def cifar_bin(x, y):
    """Records in the official binary format: label byte, then the R, G, B planes."""
    return b"".join(bytes([label]) + img.astype(np.uint8).tobytes() for img, label in zip(x, y))


def write_tar(path, members, extra=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for info in extra:
            tar.addfile(info)
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return sha(path.read_bytes())


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    """Official-format batches of 4 training records each and 3 test records; split 15/5/3."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (23, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, 23).astype(np.int64)
    members = {f"cifar-10-batches-bin/data_batch_{i + 1}.bin": cifar_bin(x[4 * i:4 * i + 4], y[4 * i:4 * i + 4])
               for i in range(5)}
    members["cifar-10-batches-bin/test_batch.bin"] = cifar_bin(x[20:], y[20:])
    members["cifar-10-batches-bin/batches.meta.txt"] = b"airplane\n"
    monkeypatch.setitem(data.SPLIT_SIZES, "cifar10", (15, 5, 3))
    archive = tmp_path / "mirror" / "cifar10" / "cifar-10-binary.tar.gz"

    def make(extra=(), **changes):
        pin = write_tar(archive, {**members, **changes}, extra)
        monkeypatch.setitem(datafiles.SHA256, "cifar10", {"cifar-10-binary.tar.gz": pin})
        return archive.parent.parent
    return make, x, y


def test_cifar10_binary_format_and_standardisation(tiny_cifar, tmp_path):
    make, x, y = tiny_cifar
    s = load_dataset("cifar10", data_dir=tmp_path / "d", mirror=make())
    train_idx, val_idx = split_indices(20, 5, 0)
    u = x / 255.0
    mean = u[train_idx].mean(axis=(0, 2, 3), keepdims=True)
    std = u[train_idx].std(axis=(0, 2, 3), keepdims=True)
    for (xs, ys), idx in zip((s.train, s.val, s.test), (train_idx, val_idx, np.arange(20, 23))):
        assert xs.shape == (len(idx), 3, 32, 32) and xs.dtype == np.float32 and ys.dtype == np.int64
        np.testing.assert_allclose(xs, (u[idx] - mean) / std, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(ys, y[idx])
    np.testing.assert_allclose(s.train[0].mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(s.train[0].std(axis=(0, 2, 3)), 1, atol=1e-5)
    assert leftovers(tmp_path / "d" / "cifar10") == ["cifar-10-binary.tar.gz"]


def test_cifar10_path_traversal_refused(tiny_cifar, tmp_path):
    make, _, _ = tiny_cifar
    mirror = make(**{"../evil.bin": b"x" * 3073})
    with pytest.raises(DatasetError, match=r"'\.\./evil\.bin' would land outside.*refusing"):
        load_dataset("cifar10", data_dir=tmp_path / "d", mirror=mirror)
    assert not list(tmp_path.rglob("evil.bin"))


def test_cifar10_absolute_path_refused(tiny_cifar, tmp_path):
    make, _, _ = tiny_cifar
    with pytest.raises(DatasetError, match="would land outside"):
        load_dataset("cifar10", data_dir=tmp_path / "d", mirror=make(**{"/tmp/evil.bin": b"x"}))


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_cifar10_links_refused(tiny_cifar, tmp_path, kind):
    make, _, _ = tiny_cifar
    link = tarfile.TarInfo("cifar-10-batches-bin/link.bin")
    link.type, link.linkname = kind, "/etc/passwd"
    with pytest.raises(DatasetError, match="is a link.*refusing"):
        load_dataset("cifar10", data_dir=tmp_path / "d", mirror=make(extra=[link]))


def test_cifar10_bad_records_and_missing_members(tiny_cifar, tmp_path):
    make, _, _ = tiny_cifar
    with pytest.raises(DatasetError, match=r"test_batch\.bin: 3072 bytes is not a whole number"):
        load_dataset("cifar10", data_dir=tmp_path / "a",
                     mirror=make(**{"cifar-10-batches-bin/test_batch.bin": b"\x00" * 3072}))
    with pytest.raises(DatasetError, match=r"label 200"):
        load_dataset("cifar10", data_dir=tmp_path / "b",
                     mirror=make(**{"cifar-10-batches-bin/test_batch.bin": b"\xc8" * 3073}))
    with pytest.raises(DatasetError, match="found 20 training and 1 test examples, expected 20 and 3"):
        load_dataset("cifar10", data_dir=tmp_path / "c",
                     mirror=make(**{"cifar-10-batches-bin/test_batch.bin": b"\x01" * 3073}))


def test_cifar10_archive_checksum(tiny_cifar, tmp_path, monkeypatch):
    make, _, _ = tiny_cifar
    mirror = make()
    load_dataset("cifar10", data_dir=tmp_path, mirror=mirror)
    archive = tmp_path / "cifar10" / "cifar-10-binary.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-1])
    expected = datafiles.SHA256["cifar10"]["cifar-10-binary.tar.gz"]
    with pytest.raises(DatasetError, match=rf"(?s)cifar-10-binary\.tar\.gz.*{expected}.*delete it"):
        load_dataset("cifar10", data_dir=tmp_path, mirror=mirror)


# ------------------------------------------------------------------ batches
def toy(n=50):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 1, 2) / 7
    return x, np.arange(n, dtype=np.int64)


def take(batches, k):
    return [tuple(to_numpy(a) for a in next(batches)) for _ in range(k)]


def test_batches_each_example_once_per_epoch_and_reshuffled():
    x, y = toy(50)
    b = Batches(x, y, batch_size=10, rng=np.random.default_rng(3))
    assert b.batches_per_epoch == 5
    epochs = []
    for e in range(3):
        got = take(b, 5)
        assert b.epoch == e
        for xb, yb in got:
            assert xb.shape == (10, 1, 2) and xb.dtype == np.float32 and yb.dtype == np.int64
            np.testing.assert_array_equal(xb, x[yb])
        order = np.concatenate([yb for _, yb in got])
        np.testing.assert_array_equal(np.sort(order), y)
        epochs.append(order)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


def test_batches_drop_the_partial_batch():
    x, y = toy(23)
    b = Batches(x, y, batch_size=5, rng=np.random.default_rng(0))
    seen = np.concatenate([yb for _, yb in take(b, 4)])
    assert len(set(seen.tolist())) == 20 and b.epoch == 0
    next(b)
    assert b.epoch == 1


def test_batches_deterministic_for_a_seed():
    x, y = toy(50)
    a = take(Batches(x, y, 7, np.random.default_rng(5)), 20)
    b = take(Batches(x, y, 7, np.random.default_rng(5)), 20)
    c = take(Batches(x, y, 7, np.random.default_rng(6)), 20)
    assert all(np.array_equal(p[1], q[1]) for p, q in zip(a, b))
    assert not all(np.array_equal(p[1], q[1]) for p, q in zip(a, c))


def test_batches_refuse_bad_arguments():
    x, y = toy(10)
    with pytest.raises(ValueError, match="batch_size 11"):
        Batches(x, y, batch_size=11, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        Batches(x, y, batch_size=5)
    with pytest.raises(ValueError, match="9"):
        Batches(x, y[:9], batch_size=5, rng=np.random.default_rng(0))


def test_default_data_folder_is_the_checkout_or_a_user_cache_never_the_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("MINILOTTERY_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    checkout = Path(download.__file__).resolve().parents[1]
    assert download.data_root() == checkout / "datasets"             # running from this checkout
    installed = tmp_path / "site-packages" / "minilottery" / "download.py"
    monkeypatch.setattr(download, "__file__", str(installed))         # an installed copy: no checkout beside it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert download.data_root() == tmp_path / "cache" / "minilottery"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.data_root() == tmp_path / "home" / ".cache" / "minilottery"
    monkeypatch.setenv("MINILOTTERY_DATA", str(tmp_path / "env"))   # the setting still wins
    assert download.data_root() == tmp_path / "env"
    assert download.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert not (tmp_path / "datasets").exists()


def test_dataset_error_leads_with_the_mirror_fix_and_is_short(tiny_mnist, tmp_path):
    mirror, _ = tiny_mnist
    (mirror / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as e:
        load_dataset("mnist", data_dir=tmp_path, mirror=mirror)
    msg = str(e.value)
    assert msg.startswith("could not get mnist/t10k-labels-idx1-ubyte.gz: set MINILOTTERY_MIRROR")
    assert "\n" not in msg and len(msg) < 400, msg
