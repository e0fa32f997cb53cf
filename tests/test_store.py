"""HDF5 experiment stores: round trip, refusals, atomic writes, the on-disk layout."""
import os

import h5py
import numpy as np
import pytest

from minilottery import h5file, store as store_mod
from minilottery.store import FORMAT, ExperimentStore, StoreError, StoreView


def _files(root):
    """Every file under root (relative path -> bytes)."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    return msg


def test_round_trip_is_bitwise(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"weights": {"fc1.W": rng.normal(size=(3, 4)).astype(np.float32),
                          "fc1.b": np.zeros(3, np.float32)},
              "curves": {"val_loss": rng.random(5), "iteration": np.arange(5)},
              "mask": rng.random((3, 4)) > 0.5,
              "odd": {"scalar": np.array(2.5, np.float16), "bool0d": np.array(True), "int0d": np.int64(-7),
                      "empty": np.zeros((0,), np.float32), "empty2": np.zeros((3, 0), np.int8),
                      "u8": np.arange(7, dtype=np.uint8), "c": np.array([1 + 2j], np.complex64),
                      "strided": np.arange(20.0)[::3], "big_endian": np.arange(4, dtype=">i4")}}
    s = ExperimentStore(tmp_path / "e.h5", {"a": 1, "b": [1, 2]})
    s.write("trials/00/levels/001/ticket", arrays, {"Pm": 0.5, "kind": "ticket"})
    back, attrs = s.read("trials/00/levels/001/ticket")

    def same(a, b, where):
        assert a.keys() == b.keys(), where
        for k in a:
            if isinstance(a[k], dict):
                same(a[k], b[k], f"{where}/{k}")
                continue
            want = np.asarray(a[k])
            assert b[k].dtype == want.dtype and b[k].shape == want.shape, (where, k, b[k].dtype, b[k].shape)
            assert b[k].tobytes() == want.tobytes(), (where, k)
    same(arrays, back, "")
    assert attrs["Pm"] == 0.5 and attrs["kind"] == "ticket" and attrs["completed"]
    assert s.done("trials/00/levels/001/ticket") and not s.done("trials/00/levels/002/ticket")
    assert s.groups("trials/00/levels") == ["001"] and s.groups("trials/00/levels/001/ticket") == \
        ["curves", "mask", "odd", "weights"]
    assert s.attrs("trials/00/levels/001/ticket")["Pm"] == 0.5 and s.attrs("trials/00") == {}
    assert s.groups("nothing/here") == []
    with pytest.raises(StoreError, match="group trials/00/levels/002/ticket is missing"):
        s.read("trials/00/levels/002/ticket")


def test_other_configuration_refused_and_file_kept(tmp_path):
    path = tmp_path / "e.h5"
    with ExperimentStore(path, {"rounds": 3, "seed": 0}) as s:
        s.write("x", {"a": np.arange(3)})
    before = _files(tmp_path)
    with pytest.raises(StoreError, match=r"another configuration \(rounds: file has 3, asked 4\)") as e:
        ExperimentStore(path, {"rounds": 4, "seed": 0})
    assert str(path) in _one_line(e)
    assert _files(tmp_path) == before                           # nothing touched, no lock file left


def test_corrupt_foreign_and_old_files_are_reported(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(StoreError, match="not a readable HDF5 experiment file") as e:
        ExperimentStore(bad, {})
    assert str(bad) in _one_line(e)
    good = tmp_path / "good.h5"
    ExperimentStore(good, {"k": 1}).write("x", {"a": np.arange(10)})
    truncated = tmp_path / "trunc.h5"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(StoreError, match="truncated or corrupt") as e:
        ExperimentStore(truncated, {"k": 1})
    _one_line(e)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(StoreError, match="not a minilottery experiment") as e:
        ExperimentStore(foreign, {})
    _one_line(e)
    old = tmp_path / "old.h5"
    with h5py.File(old, "w") as f:
        f.attrs["format"], f.attrs["config"] = "minilottery-experiment-1", "{}"
    for opener in (lambda: ExperimentStore(old, {}), lambda: ExperimentStore.open_readonly(old)):
        with pytest.raises(StoreError, match="written by an older version of minilottery") as e:
            opener()
        assert str(old) in _one_line(e)


def test_crash_during_write_leaves_previous_state(tmp_path, monkeypatch):
    path = tmp_path / "e.h5"
    s = ExperimentStore(path, {"k": 1})
    s.write("first", {"a": np.arange(3)})

    def boom(g, arrays):
        g.create_dataset("partial", data=np.arange(2))
        raise KeyboardInterrupt                                  # Ctrl-C mid-write

    monkeypatch.setattr(h5file, "write_arrays", boom)
    with pytest.raises(KeyboardInterrupt):
        s.write("second", {"a": np.arange(3)})
    monkeypatch.undo()
    s.close()
    s2 = ExperimentStore(path, {"k": 1})
    assert s2.done("first") and not s2.done("second") and not s2.groups("second")
    assert not [n for n in _files(tmp_path) if n.endswith(".tmp")]


def test_layout_is_one_experiment_for_plain_h5py_from_any_directory(tmp_path, monkeypatch):
    path = tmp_path / "runs" / "x.h5"
    with ExperimentStore(path, {"k": 1}) as s:
        s.write("trials/00/theta0", {"fc1.W": np.ones((2, 2), np.float32)})
        s.write("trials/00/levels/001/ticket", {"weights": {"fc1.W": np.full((2, 2), 3, np.float32)}}, {"Pm": 0.8})
        s.mark_complete()
    assert sorted(_files(tmp_path)) == ["runs/x.h5", "runs/x.h5.d/trials~00~levels~001~ticket.h5",
                                        "runs/x.h5.d/trials~00~theta0.h5"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT and f.attrs["completed"]
        assert f["trials/00/levels/001/ticket/weights/fc1.W"][0, 0] == 3
        assert f["trials/00/levels/001/ticket"].attrs["Pm"] == 0.8
        assert f["trials/00/theta0/fc1.W"].fletcher32
        assert isinstance(f["trials/00"].get("theta0", getlink=True), h5py.ExternalLink)
    r = ExperimentStore.open_readonly(os.path.relpath(path))
    assert r.read("trials/00/theta0")[0]["fc1.W"].sum() == 4


def test_reopening_a_finished_experiment_rewrites_nothing(tmp_path):
    path = tmp_path / "e.h5"
    with ExperimentStore(path, {"k": 1}) as s:
        s.write("a", {"x": np.arange(3)})
        s.mark_complete()
    before = {p: (os.stat(tmp_path / p).st_mtime_ns, os.stat(tmp_path / p).st_ino) for p in _files(tmp_path)}
    with ExperimentStore(path, {"k": 1}) as s:
        assert s.done("a")
        s.mark_complete()
        assert s.bytes_written == 0
    after = {p: (os.stat(tmp_path / p).st_mtime_ns, os.stat(tmp_path / p).st_ino) for p in _files(tmp_path)}
    assert after == before


def test_missing_directory_and_unwritable_paths_give_one_line_errors(tmp_path):
    missing = tmp_path / "nope.h5"
    for opener in (lambda: ExperimentStore.open_readonly(missing), lambda: ExperimentStore.read_config(missing)):
        with pytest.raises(StoreError, match="does not exist") as e:
            opener()
        assert str(missing) in _one_line(e) and "corrupt" not in str(e.value)
    for opener in (lambda: ExperimentStore(tmp_path, {}), lambda: ExperimentStore.open_readonly(tmp_path)):
        with pytest.raises(StoreError, match="is a directory") as e:
            opener()
        _one_line(e)
    plain = tmp_path / "plain.txt"
    plain.write_text("keep me")
    with pytest.raises(StoreError, match="is a file, not a folder") as e:
        ExperimentStore(plain / "sub" / "e.h5", {})
    _one_line(e)
    assert sorted(os.listdir(tmp_path)) == ["plain.txt"] and plain.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_folder_refused_before_anything_is_made(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="no write permission") as e:
            ExperimentStore(ro / "deeper" / "e.h5", {})
        _one_line(e)
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_unwritable_folder_refused_even_for_root(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod.os, "access", lambda p, mode: False)
    with pytest.raises(StoreError, match="no write permission") as e:
        ExperimentStore(tmp_path / "new" / "e.h5", {})
    _one_line(e)
    assert os.listdir(tmp_path) == []


def test_closed_and_readonly_stores_refuse_writes(tmp_path):
    path = tmp_path / "e.h5"
    with ExperimentStore(path, {"k": 1}) as s:
        s.write("a", {"x": np.arange(3)})
    assert not (tmp_path / "e.h5.lock").exists()
    with pytest.raises(StoreError, match="closed"):
        s.write("b", {"x": np.arange(3)})
    r = StoreView(path)
    assert r.config == {"k": 1} and r.done("a")
    assert not hasattr(r, "write") and not hasattr(r, "mark_complete")     # a view has no writing side
    assert isinstance(ExperimentStore.open_readonly(path), StoreView)


def test_a_second_writer_in_the_same_process_is_refused_and_the_first_keeps_writing(tmp_path):
    path = tmp_path / "e.h5"
    with ExperimentStore(path, {"k": 1}) as a:
        with pytest.raises(StoreError, match=f"in use by pid {os.getpid()} ") as e:
            ExperimentStore(path, {"k": 1})
        _one_line(e)
        a.write("x", {"v": np.arange(2)})
    assert not (tmp_path / "e.h5.lock").exists()
    assert StoreView(path).groups("") == ["x"]


def test_bad_group_names_and_nesting_refused(tmp_path):
    with ExperimentStore(tmp_path / "e.h5", {}) as s:
        s.write("a/b", {"x": np.arange(2)})
        for bad in ("a", "a/b/c", "../up", "a~b", "sp ace"):
            with pytest.raises(StoreError) as e:
                s.write(bad, {"x": np.arange(2)})
            _one_line(e)
        with pytest.raises(StoreError, match="group q failed .*dtype object"):
            s.write("q", {"x": np.array([None])})
        assert s.groups("") == ["a"]
