"""The experiment store against hostile or careless use: links, renames, crafted files, a full disk.

An experiment file is untrusted input: whatever its bytes, a reader gets its arrays or one line
naming the file and the group; a writer deletes only the temporary files it can prove it wrote.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from minilottery import h5file
from minilottery.store import ExperimentStore, StoreError
from tests.test_store_safety import HOLDER, _python

ROOT = Path(__file__).resolve().parents[1]
THETA0 = {"fc1.W": np.arange(6, dtype=np.float32).reshape(2, 3), "fc1.b": np.zeros(2, np.float32)}


def _one_line(excinfo, *fragments):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for f in fragments:
        assert str(f) in msg, (f, msg)
    return msg


def _store(path, config=None):
    with ExperimentStore(path, config or {"k": 1}) as s:
        s.write("trials/00/theta0", THETA0)
    return path


def _index(path, links, config='{"k": 1}'):
    """A crafted index: {group: (file, object path)} external links; config as given (None: absent)."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = h5file.FORMAT
        if config is not None:
            f.attrs["config"] = config
        for g, (target, obj) in links.items():
            f[g] = h5py.ExternalLink(target, obj)


def _readers(path):
    return [lambda: ExperimentStore.open_readonly(path).read("trials/00/theta0"),
            lambda: ExperimentStore(path, {"k": 1}).read("trials/00/theta0")]


# -- 1: nothing outside the store deleted ---------------------------------------------------
def test_a_store_folder_that_is_a_symlink_is_refused_and_nothing_there_deleted(tmp_path):
    path = _store(tmp_path / "x.h5")
    big = tmp_path / "big"
    os.rename(f"{path}.d", big)
    os.symlink(big, f"{path}.d")
    (big / "other.h5").write_bytes(b"someone else's")
    (big / ".notes.tmp").write_text("keep")
    before = sorted(os.listdir(big))
    with pytest.raises(StoreError) as e:
        ExperimentStore(path, {"k": 1})
    _one_line(e, f"{path}.d", "symbolic link")
    assert sorted(os.listdir(big)) == before and not (tmp_path / "x.h5.lock").exists()


def test_a_writer_deletes_only_its_own_temporary_names(tmp_path):
    path = _store(tmp_path / "x.h5")
    runs = Path(f"{path}.d")
    theirs = [tmp_path / ".notes.tmp", tmp_path / ".x.h5.tmp", runs / ".notes.tmp", runs / "other.h5",
              runs / ".trials~00~theta0.h5.short.tmp"]
    ours = [tmp_path / ".x.h5.abcd_123.tmp", runs / ".trials~00~theta0.h5.k2j4h5g6.tmp"]
    for p in theirs + ours:
        p.write_bytes(b"x")
    with ExperimentStore(path, {"k": 1}) as s:
        assert s.done("trials/00/theta0")
    assert all(p.exists() for p in theirs) and not any(p.exists() for p in ours)


def test_a_plain_file_where_the_store_folder_goes_is_refused_before_the_index_is_made(tmp_path):
    (tmp_path / "x.h5.d").write_text("mine")
    with pytest.raises(StoreError) as e:
        ExperimentStore(tmp_path / "x.h5", {"k": 1})
    _one_line(e, "x.h5.d is a file")
    assert sorted(os.listdir(tmp_path)) == ["x.h5.d"] and (tmp_path / "x.h5.d").read_text() == "mine"


# -- 3: one lock per experiment, whatever path names it ----------------------------------------
def test_a_second_writer_through_a_symlink_to_the_index_is_refused(tmp_path):
    path = tmp_path / "e.h5"
    holder = _python(HOLDER, path)
    try:
        assert holder.stdout.readline().strip() == "ready"
        os.symlink(path, tmp_path / "link.h5")
        with pytest.raises(StoreError) as e:
            ExperimentStore(tmp_path / "link.h5", {"k": 1})
        _one_line(e, "in use", f"pid {holder.pid}")
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "done"
    finally:
        holder.kill()
        holder.wait()
    assert ExperimentStore.open_readonly(path).groups("") == ["first", "second"]


def test_a_dangling_symlink_as_output_is_refused(tmp_path):
    os.symlink(tmp_path / "nowhere" / "gone.h5", tmp_path / "out.h5")
    with pytest.raises(StoreError) as e:
        ExperimentStore(tmp_path / "out.h5", {"k": 1})
    _one_line(e, "out.h5", "symbolic link", "does not exist")
    assert os.path.islink(tmp_path / "out.h5") and sorted(os.listdir(tmp_path)) == ["out.h5"]


# -- 4: stored arrays checked against what the configuration implies ---------------------------
def test_stored_shapes_and_dtypes_are_checked_before_use(tmp_path):
    path = tmp_path / "x.h5"
    with ExperimentStore(path, {"k": 1}) as s:
        s.write("trials/00/theta0", {"fc1.W": THETA0["fc1.W"].astype(np.float16), "fc1.b": THETA0["fc1.b"]})
        s.write("trials/00/other", {"fc1.W": np.zeros((3, 2), np.float32), "fc1.b": THETA0["fc1.b"]})
    for group, fragment in (("trials/00/theta0", "float16"), ("trials/00/other", "(3, 2)")):
        with pytest.raises(StoreError) as e:
            ExperimentStore.open_readonly(path).read(group, expect=THETA0)
        _one_line(e, group, fragment, "fc1.W", "implies float32 (2, 3)", "does not match")
    assert ExperimentStore.open_readonly(path).read("trials/00/theta0", expect={"fc1.b": ((2,), "float32")})


# -- 5: a full disk --------------------------------------------------------------------------
def test_an_hdf5_failure_on_close_is_one_line_and_keeps_what_was_written(tmp_path, monkeypatch):
    path = _store(tmp_path / "x.h5")
    real_exit = h5py.File.__exit__

    def failing_exit(self, *exc):
        real_exit(self, *exc)
        raise RuntimeError("Can't decrement id ref count (file write failed: errno = 28, "
                           "error message = 'No space left on device')")

    with ExperimentStore(path, {"k": 1}) as s:
        monkeypatch.setattr(h5py.File, "__exit__", failing_exit)
        with pytest.raises(StoreError) as e:
            s.write("trials/00/levels/000/ticket", {"w": np.ones(10)})
        monkeypatch.undo()
        _one_line(e, path, "trials/00/levels/000/ticket", "No space left on device", "kept", "rerun")
    s = ExperimentStore.open_readonly(path)
    assert s.groups("trials/00") == ["theta0"] and s.read("trials/00/theta0")[0]["fc1.W"].sum() == 15


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root only; skipped where mount is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_is_one_line_and_every_written_group_survives(small_disk):
    path, written = small_disk / "x.h5", []
    rng = np.random.default_rng(0)
    with ExperimentStore(path, {"k": 1}) as s:
        with pytest.raises(StoreError) as e:
            for i in range(20):
                s.write(f"g{i:02d}", {"a": rng.random(50_000)})
                written.append(f"g{i:02d}")
        _one_line(e, path, "No space left on device", "kept", "rerun")
    assert 3 <= len(written) < 20
    s = ExperimentStore.open_readonly(path)
    s.verify()
    assert s.groups("") == written


@pytest.mark.slow
def test_imp_on_a_full_disk_exits_2_with_one_line(small_disk, tmp_path, mirror):
    cmd = [sys.executable, "-m", "minilottery", "imp", "--iterations", "100", "--eval-every", "100",
           "--rounds", "3", "--reinit", "1", "--workers", "1", "--quiet", "--out", str(small_disk / "x.h5"),
           "--mirror", mirror, "--data-dir", str(tmp_path / "data")]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and "No space left on device" in r.stderr, r.stderr[-2000:]
    ExperimentStore.open_readonly(small_disk / "x.h5").verify()


# -- 8: legal stores accepted ------------------------------------------------------------------
def test_a_symlinked_index_is_the_experiment_it_points_to(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    path = _store(tmp_path / "a" / "x.h5")
    link = tmp_path / "b" / "link.h5"
    os.symlink(path, link)
    assert ExperimentStore.open_readonly(link).read("trials/00/theta0")[0]["fc1.W"].sum() == 15
    with ExperimentStore(link, {"k": 1}) as s:
        assert s.done("trials/00/theta0")
        s.write("trials/00/more", {"w": np.ones(2)})
    assert os.path.islink(link) and sorted(os.listdir(tmp_path / "b")) == ["link.h5"]
    assert ExperimentStore.open_readonly(path).groups("trials/00") == ["more", "theta0"]


def test_a_store_renamed_with_its_folder_reads_and_resumes(tmp_path):
    old = _store(tmp_path / "x.h5")
    new = tmp_path / "moved" / "y.h5"
    new.parent.mkdir()
    os.rename(old, new)
    os.rename(f"{old}.d", f"{new}.d")
    assert ExperimentStore.open_readonly(new).read("trials/00/theta0")[0]["fc1.W"].sum() == 15
    with ExperimentStore(new, {"k": 1}) as s:
        s.write("trials/00/more", {"w": np.ones(2)})
    with h5py.File(new, "r") as f:                                   # the links name the new folder again
        assert f["trials/00/theta0/fc1.W"][()].sum() == 15 and f["trials/00/more/w"][()].sum() == 2


# -- 9: crafted files ------------------------------------------------------------------------
@pytest.mark.parametrize("config, fragment", [("{not json", "not a JSON object"), ("[1, 2]", "not a JSON object"),
                                              (7, "not a JSON object"), (None, "no config attribute")])
def test_a_crafted_config_attribute_is_one_line(tmp_path, config, fragment):
    path = tmp_path / "x.h5"
    _index(path, {}, config)
    for opener in (lambda: ExperimentStore.open_readonly(path), lambda: ExperimentStore(path, {"k": 1}),
                   lambda: ExperimentStore.read_config(path)):
        with pytest.raises(StoreError) as e:
            opener()
        _one_line(e, path, fragment)


def test_index_links_outside_the_store_are_refused_and_never_opened(tmp_path):
    path = _store(tmp_path / "x.h5")
    foreign = tmp_path / "other.h5"
    with h5py.File(foreign, "w") as f:
        f["fc1.W"] = np.ones((2, 3), np.float32)
        f.attrs["completed"] = True
    for target, obj in (("/etc/passwd", "/"), ("other.h5", "/"), ("../x.h5.d/trials~00~theta0.h5", "/"),
                        ("x.h5.d/trials~00~theta0.h5", "/fc1.W"), ("x.h5.d/evil.h5", "/")):
        _index(path, {"trials/00/theta0": (target, obj)})
        for opener in _readers(path):
            with pytest.raises(StoreError) as e:
                opener()
            _one_line(e, path, "trials/00/theta0", target)


def test_a_group_named_dotdot_is_refused(tmp_path):
    path = _store(tmp_path / "x.h5")
    _index(path, {"trials/../theta0": ("x.h5.d/trials~..~theta0.h5", "/")})
    for opener in (lambda: ExperimentStore.open_readonly(path), lambda: ExperimentStore(path, {"k": 1})):
        with pytest.raises(StoreError) as e:
            opener()
        _one_line(e, path, "trials/..")


def _craft_group(path, fill):
    """Replace trial 0's θ0 file by what ``fill(h5 file)`` makes (marked complete, as a store's would be)."""
    with h5py.File(f"{path}.d/trials~00~theta0.h5", "w") as f:
        fill(f)
        f.attrs["completed"] = True


@pytest.mark.parametrize("name, fill, fragment", [
    ("4 TB declared", lambda f: f.create_dataset("fc1.W", shape=(10 ** 12,), dtype="float32"), "declares shape"),
    ("external link", lambda f: f.__setitem__("fc1.W", h5py.ExternalLink("/etc/passwd", "/")), "ExternalLink"),
    ("foreign link", lambda f: f.__setitem__("fc1.W", h5py.ExternalLink("../other.h5", "/w")), "ExternalLink"),
    ("soft link", lambda f: f.__setitem__("fc1.W", h5py.SoftLink("/x")), "SoftLink"),
    ("strings", lambda f: f.create_dataset("fc1.W", data=np.array([b"ab", b"cd"])), "not a numeric"),
    ("scalar lie", lambda f: f.create_dataset("fc1.W", data=np.ones(4)).attrs.__setitem__("scalar", True),
     "marked scalar"),
])
def test_crafted_group_files_are_one_line_naming_file_and_group(tmp_path, name, fill, fragment):
    path = _store(tmp_path / "x.h5")
    _craft_group(path, fill)
    for opener in _readers(path) + [lambda: ExperimentStore.open_readonly(path).verify()]:
        with pytest.raises(StoreError) as e:
            opener()
        _one_line(e, f"{path}.d/trials~00~theta0.h5", "group trials/00/theta0", fragment)


def test_a_foreign_hdf5_file_in_place_of_a_group_is_refused(tmp_path):
    path = _store(tmp_path / "x.h5")
    with h5py.File(f"{path}.d/trials~00~theta0.h5", "w") as f:       # right name, not the store's: no mark
        f["fc1.W"] = np.ones((2, 3), np.float32)
    for opener in _readers(path):
        with pytest.raises(StoreError) as e:
            opener()
        _one_line(e, "group trials/00/theta0", "completed")


def test_config_attribute_survives_a_json_round_trip(tmp_path):
    path = _store(tmp_path / "x.h5", {"b": [1, 2], "a": 0.1})
    assert json.loads(json.dumps(ExperimentStore.read_config(path))) == {"a": 0.1, "b": [1, 2]}
