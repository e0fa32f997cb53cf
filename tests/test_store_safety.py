"""The experiment store under stress: two processes, leftovers of killed writers, damaged bytes, fsyncs."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from minilottery import store as store_mod
from minilottery.store import ExperimentStore, StoreError

ROOT = Path(__file__).resolve().parents[1]


def _python(code, *args, **kw):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kw)


HOLDER = """
    import sys, numpy as np
    from minilottery.store import ExperimentStore
    s = ExperimentStore(sys.argv[1], {"k": 1})
    s.write("first", {"a": np.arange(3)})
    print("ready", flush=True)
    sys.stdin.readline()
    s.write("second", {"a": np.arange(4)})
    s.close()
    print("done", flush=True)
"""

# a writer that dies (SIGKILL) in the middle of writing the group named argv[2], after the others
KILLED_MID_WRITE = """
    import os, signal, sys, numpy as np
    from minilottery import h5file, store
    real = h5file.replace_durably
    def dying(final, write):
        if os.path.basename(final) == sys.argv[2].replace("/", "~") + ".h5":
            def half(tmp):
                write(tmp)
                os.truncate(tmp, os.path.getsize(tmp) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            return real(final, half)
        return real(final, write)
    h5file.replace_durably = dying
    s = store.ExperimentStore(sys.argv[1], {"experiment": "A"})
    for g in sys.argv[3:]:
        s.write(g, {"w": np.full(10, 7.0)}, {"kind": "old"})
    s.write(sys.argv[2], {"w": np.zeros(10)})
"""


def test_second_process_is_refused_at_once_and_nothing_is_lost(tmp_path):
    path = tmp_path / "e.h5"
    holder = _python(HOLDER, path)
    try:
        assert holder.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        with pytest.raises(StoreError) as e:
            ExperimentStore(path, {"k": 1})
        assert time.perf_counter() - t0 < 1.0                           # no waiting
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg
        assert f"pid {holder.pid} on host {socket.gethostname()}" in msg and "in use" in msg
        assert ExperimentStore.open_readonly(path).done("first")       # reports still read it
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "done"
    finally:
        holder.kill()
        holder.wait()
    with ExperimentStore(path, {"k": 1}) as s:
        assert s.done("first") and s.done("second")
        np.testing.assert_array_equal(s.read("second")[0]["a"], np.arange(4))


def test_two_writers_in_two_processes_one_wins(tmp_path):
    """Both start together; exactly one holds the experiment, the other stops with a StoreError."""
    path = tmp_path / "e.h5"
    code = """
        import sys, numpy as np
        from minilottery.store import ExperimentStore, StoreError
        try:
            s = ExperimentStore(sys.argv[1], {"k": 1})
        except StoreError as e:
            print("refused", e, flush=True)
            sys.exit(0)
        print("holder", flush=True)
        sys.stdin.readline()
        s.write(sys.argv[2], {"a": np.arange(3)})
        s.close()
    """
    procs = [_python(code, path, f"run{i}") for i in range(2)]
    first = [p.stdout.readline() for p in procs]
    for p, line in zip(procs, first):
        if line.startswith("holder"):
            p.stdin.write("go\n")
            p.stdin.flush()
        assert p.wait() == 0
    assert sorted(line.split()[0] for line in first) == ["holder", "refused"], first
    winner = [i for i, line in enumerate(first) if line.startswith("holder")][0]
    assert ExperimentStore.open_readonly(path).groups("") == [f"run{winner}"]


def test_lock_of_a_killed_writer_is_taken_over(tmp_path):
    path = tmp_path / "e.h5"
    holder = _python(HOLDER, path)
    assert holder.stdout.readline().strip() == "ready"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "e.h5.lock").exists()                          # stale file, no lock on it
    with ExperimentStore(path, {"k": 1}) as s:
        assert s.done("first")
        assert f"pid {os.getpid()} " in (tmp_path / "e.h5.lock").read_text()
    assert not (tmp_path / "e.h5.lock").exists()


def test_leftovers_of_a_killed_writer_are_never_adopted(tmp_path):
    """Kill mid-write, delete X.h5, run another configuration into X.h5: it starts from nothing."""
    path = tmp_path / "x.h5"
    assert _python(KILLED_MID_WRITE, path, "trials/00/theta0").wait() == -signal.SIGKILL
    assert [n for n in os.listdir(f"{path}.d") if n.endswith(".tmp")]            # the half-written group
    (tmp_path / "x.h5.tmp").write_bytes(path.read_bytes())            # and the old version's temporary name
    path.unlink()
    with ExperimentStore(path, {"experiment": "B"}) as s:
        assert s.groups("") == [] and not s.done("trials/00/theta0")
        assert os.listdir(f"{path}.d") == []                          # the stale temporary file is gone
        s.write("trials/00/theta0", {"w": np.ones(3)})
        assert s.read("trials/00/theta0")[0]["w"].tolist() == [1, 1, 1]
    assert ExperimentStore.read_config(path) == {"experiment": "B"}


def test_group_files_without_their_index_are_refused_not_adopted_nor_deleted(tmp_path):
    path = tmp_path / "x.h5"
    assert _python(KILLED_MID_WRITE, path, "b", "a").wait() == -signal.SIGKILL
    path.unlink()
    before = sorted(os.listdir(f"{path}.d"))
    with pytest.raises(StoreError, match="its index .* is missing: move .*x.h5.d away") as e:
        ExperimentStore(path, {"experiment": "B"})
    assert "\n" not in str(e.value)
    assert sorted(os.listdir(f"{path}.d")) == before and not path.exists()


def test_stale_temporary_index_of_another_process_is_removed_not_used(tmp_path):
    path = tmp_path / "x.h5"
    with ExperimentStore(path, {"experiment": "A"}) as s:
        s.write("a", {"w": np.arange(3)})
    stale = tmp_path / ".x.h5.abcd1234.tmp"                          # as a writer killed mid-index leaves it
    stale.write_bytes(path.read_bytes())
    path.unlink()
    os.remove(f"{path}.d/a.h5")
    with ExperimentStore(path, {"experiment": "B"}) as s:
        assert s.groups("") == []
    assert not stale.exists()


def test_a_group_killed_mid_write_is_redone_on_resume(tmp_path):
    path = tmp_path / "x.h5"
    assert _python(KILLED_MID_WRITE, path, "b", "a").wait() == -signal.SIGKILL
    with ExperimentStore(path, {"experiment": "A"}) as s:
        assert s.done("a") and not s.done("b")
        assert sorted(os.listdir(f"{path}.d")) == ["a.h5"]
        s.write("b", {"w": np.zeros(10)})
    assert ExperimentStore.open_readonly(path).read("b")[0]["w"].sum() == 0


def _stored_offset(run_file, dataset):
    """(file offset, size) of a dataset's stored bytes (one chunk: get_offset() is for contiguous ones)."""
    with h5py.File(run_file, "r") as f:
        chunk = f[dataset].id.get_chunk_info(0)
        return chunk.byte_offset, chunk.size


def test_damaged_bytes_in_a_stored_mask_are_reported_never_carried_forward(tmp_path):
    path = tmp_path / "e.h5"
    mask = {"fc1.W": np.random.default_rng(0).random((300, 100)) < 0.8}
    with ExperimentStore(path, {"k": 1}) as s:
        s.write("trials/00/levels/001/mask", mask, {"Pm": 0.8})
    run_file = tmp_path / "e.h5.d" / "trials~00~levels~001~mask.h5"
    offset, size = _stored_offset(run_file, "fc1.W")
    with open(run_file, "r+b") as fh:                                  # 4 KB in the middle of the data
        fh.seek(offset + size // 2 - 2048)
        fh.write(bytes(4096))
    for store in (ExperimentStore.open_readonly(path), ExperimentStore(path, {"k": 1})):   # report, resume
        with pytest.raises(StoreError) as e:
            store.read("trials/00/levels/001/mask")
        msg = str(e.value)
        assert "\n" not in msg and "group trials/00/levels/001/mask is corrupt" in msg and str(run_file) in msg
        with pytest.raises(StoreError, match="corrupt"):
            store.verify()
        store.close()


def test_damaged_group_metadata_is_reported(tmp_path):
    path = tmp_path / "e.h5"
    with ExperimentStore(path, {"k": 1}) as s:
        s.write("g", {"w": np.arange(1000.0)}, {"Pm": 0.5})
    run_file = tmp_path / "e.h5.d" / "g.h5"
    raw = bytearray(run_file.read_bytes())
    offset, size = _stored_offset(run_file, "w")
    for i in range(48, offset):                                       # flip every metadata byte after the superblock
        raw[i] ^= 0xFF
    run_file.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="group g is corrupt"):
        ExperimentStore.open_readonly(path).attrs("g")


def test_every_rename_is_followed_by_an_fsync_of_its_folder(tmp_path, monkeypatch):
    events, real_replace, real_fsync = [], os.replace, os.fsync

    def replace(src, dst):
        events.append(("replace", os.path.abspath(dst)))
        real_replace(src, dst)

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append(("fsync-dir" if os.path.isdir(target) else "fsync-file", target))
        real_fsync(fd)

    monkeypatch.setattr(store_mod.os, "replace", replace)
    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    with ExperimentStore(tmp_path / "e.h5", {"k": 1}) as s:
        s.write("a/b", {"w": np.arange(3)})
        s.write("a/c", {"w": np.arange(3)})
        s.mark_complete()
    monkeypatch.undo()
    replaced = [i for i, e in enumerate(events) if e[0] == "replace"]
    assert len(replaced) == 6                                          # index at creation, 2 x (group + index), completion
    for i in replaced:
        assert events[i - 1][0] == "fsync-file"                        # the new file's bytes first
        assert events[i + 1] == ("fsync-dir", os.path.dirname(events[i][1])), events[i:i + 2]
