"""HDF5 experiment files: round trip, refusals, atomic writes."""
import h5py
import numpy as np
import pytest

from minilottery import store as store_mod
from minilottery.store import ExperimentStore, StoreError


def test_round_trip_is_bitwise(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"weights": {"fc1.W": rng.normal(size=(3, 4)).astype(np.float32),
                          "fc1.b": np.zeros(3, np.float32)},
              "curves": {"val_loss": rng.random(5), "iteration": np.arange(5)},
              "mask": rng.random((3, 4)) > 0.5}
    s = ExperimentStore(tmp_path / "e.h5", {"a": 1, "b": [1, 2]})
    s.write("trials/00/levels/001/ticket", arrays, {"Pm": 0.5})
    back, attrs = s.read("trials/00/levels/001/ticket")
    for part in ("weights", "curves"):
        for k, v in arrays[part].items():
            assert back[part][k].dtype == v.dtype
            np.testing.assert_array_equal(back[part][k], v)
    np.testing.assert_array_equal(back["mask"], arrays["mask"])
    assert attrs["Pm"] == 0.5 and attrs["completed"]
    assert s.done("trials/00/levels/001/ticket") and not s.done("trials/00/levels/002/ticket")


def test_other_configuration_refused_and_file_kept(tmp_path):
    path = tmp_path / "e.h5"
    s = ExperimentStore(path, {"rounds": 3, "seed": 0})
    s.write("x", {"a": np.arange(3)})
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"another configuration \(rounds: file has 3, asked 4\)"):
        ExperimentStore(path, {"rounds": 4, "seed": 0})
    assert path.read_bytes() == before


def test_corrupt_and_foreign_files_are_reported(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(StoreError, match="not a readable HDF5 experiment file"):
        ExperimentStore(bad, {})
    good = tmp_path / "good.h5"
    ExperimentStore(good, {"k": 1}).write("x", {"a": np.arange(10)})
    truncated = tmp_path / "trunc.h5"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(StoreError, match="truncated or corrupt"):
        ExperimentStore(truncated, {"k": 1})
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(StoreError, match="not a minilottery experiment"):
        ExperimentStore(foreign, {})


def test_crash_during_write_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "e.h5"
    s = ExperimentStore(path, {"k": 1})
    s.write("first", {"a": np.arange(3)})

    def boom(g, arrays):
        g.create_dataset("partial", data=np.arange(2))
        raise KeyboardInterrupt                                  # Ctrl-C mid-write

    monkeypatch.setattr(store_mod, "_write_group", boom)
    with pytest.raises(KeyboardInterrupt):
        s.write("second", {"a": np.arange(3)})
    monkeypatch.undo()
    s2 = ExperimentStore(path, {"k": 1})
    assert s2.done("first") and not s2.groups("second")
    assert not (tmp_path / "e.h5.tmp").exists()
