"""HDF5 experiment stores: a small index plus one file per written group; locked, checksummed, crash-safe.

The files and their fields are described in ``h5file.py``.

A write makes the group's file under a fresh temporary name (``.NAME.XXXXXXXX.tmp``),
fsyncs it, renames it into place and fsyncs the folder; then it rewrites the index
the same way (``runs/.x.h5.XXXXXXXX.tmp``). That rename is the commit: a crash or
Ctrl-C at any instant leaves the previous index, and the next writer deletes, under
the lock, what no index refers to (temporary files, unlinked group files). Bytes
written: each group once, plus the small index per write; a finished experiment
reopened writes nothing.

One writer per experiment (``flock`` on the ``.lock`` file, see ``lock.py``): another
process is refused at once, with the holder's pid and host. Stores of one process on
one file share the lock and the index; the lock goes with the last one's ``close()``
(or ``with`` block, or garbage collection) or with the process.
``ExperimentStore.open_readonly(PATH)`` takes no lock and reads the index as it is
when opened: that is how reports read an experiment that is still running.
``store.bytes_written`` counts the bytes a store object has put on disk; ``verify()`` reads
every group, checking every checksum.
"""
import json
import os
import re
import threading

import h5py

from minilottery import h5file
from minilottery.errors import StoreError, one_line
from minilottery.h5file import FORMAT, write_file
from minilottery.lock import ExclusiveLock, LockHeld, check_writable, fsync_dir

_HELD = {}          # realpath -> _Shared: this process's writable stores, one lock and index per file


def _diff(old, new):
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k}: file has {old.get(k)!r}, asked {new.get(k)!r}" for k in keys if old.get(k) != new.get(k))


class _Shared:
    """What the stores of one process on one experiment share: the lock and the index."""

    def __init__(self, config_json, runs, complete):
        self.config_json, self.runs, self.complete, self.lock = config_json, runs, complete, None
        self.config = json.loads(config_json)
        self.pid, self.count, self.mutex = os.getpid(), 1, threading.RLock()

    @classmethod
    def read(cls, path):
        """What the index at ``path`` holds (StoreError if it is not an experiment's index)."""
        return cls(*h5file.read_index(path))


class ExperimentStore:
    def __init__(self, path, config=None, *, readonly=False):
        """Open ``path`` for ``config`` (a JSON-able dict), creating it if absent, and lock it; refuses
        another configuration, a file another process holds, a corrupt or foreign file.
        ``readonly=True``: an existing experiment, no lock, ``config`` optional (checked if given)."""
        self.path, self.readonly, self.closed, self.bytes_written = os.fspath(path), readonly, False, 0
        self._key, self._folder = os.path.realpath(self.path), os.path.dirname(os.path.abspath(self.path))
        if readonly:
            self._sh = _Shared.read(self.path)
            if config is not None:
                self._check_config(self._sh, config)
            self.config = self._sh.config
            return
        if config is None:
            raise TypeError("a writable ExperimentStore needs the experiment's configuration")
        self.config = dict(config)
        sh = _HELD.get(self._key)
        if sh is not None and sh.pid == os.getpid():            # (a forked child takes its own lock)
            self._check_config(sh, self.config)
            sh.count += 1
            self._sh = sh
        else:
            self._sh = _HELD[self._key] = self._open_locked()

    @classmethod
    def open_readonly(cls, path):
        """An existing experiment for reading only: no lock, the index as it is now."""
        return cls(path, readonly=True)

    @staticmethod
    def read_config(path):
        """The configuration dict stored in an experiment file (validating the file)."""
        return json.loads(h5file.read_index(os.fspath(path))[0])

    def _check_config(self, sh, config):
        if sh.config != json.loads(json.dumps(config)):
            raise StoreError(f"{self.path} holds an experiment with another configuration "
                             f"({_diff(sh.config, config)}); choose another output file "
                             f"or rerun with the file's configuration")

    def _open_locked(self):
        check_writable(self.path)
        lock = ExclusiveLock(self.path + ".lock")
        try:
            os.makedirs(self._folder, exist_ok=True)
            lock.acquire()
        except LockHeld as e:
            raise StoreError(f"{self.path} is in use by {e.holder} (lock {lock.path}): wait for that run to "
                             f"finish or stop it; reports can open the file read-only meanwhile") from None
        except OSError as e:
            raise StoreError(f"{self.path} cannot be locked ({one_line(e)}): choose a writable output path") from None
        try:
            fresh = not os.path.exists(self.path)
            sh = _Shared(json.dumps(self.config, sort_keys=True), {}, False) if fresh else _Shared.read(self.path)
            self._check_config(sh, self.config)
            self._clean(sh, fresh)
            self._sh, sh.lock = sh, lock
            if fresh:
                self._write_index()
            return sh
        except BaseException:
            lock.release()
            raise

    def _clean(self, sh, fresh):
        """Under the lock: delete temporary files and group files that no index links to."""
        base, runs = os.path.basename(self.path), self.path + ".d"
        stale = [os.path.join(self._folder, n) for n in os.listdir(self._folder)
                 if re.fullmatch(r"\." + re.escape(base) + r"\.[a-z0-9_]{8}\.tmp", n)]
        if os.path.isdir(runs):
            names, linked = os.listdir(runs), {os.path.basename(f) for f in sh.runs.values()}
            if fresh and any(n.endswith(".h5") for n in names):
                raise StoreError(f"{runs} holds group files but its index {self.path} is missing: move "
                                 f"{runs} away to start afresh, or choose another output file")
            stale += [os.path.join(runs, n) for n in names
                      if (n.startswith(".") and n.endswith(".tmp")) or (n.endswith(".h5") and n not in linked)]
        for p in stale:
            os.remove(p)
        for d in {os.path.dirname(p) for p in stale}:
            fsync_dir(d)

    # -- reading ------------------------------------------------------------
    def _locate(self, group):
        """(written group, path inside its file) for a group at or under a written group, else None."""
        parts = group.split("/")
        for i in range(1, len(parts) + 1):
            if "/".join(parts[:i]) in self._sh.runs:
                return "/".join(parts[:i]), "/".join(parts[i:]) or "/"
        return None

    def _in_run(self, group, what):
        """what(h5 file) on a written group's file; StoreError naming file and group where it is damaged."""
        path = os.path.join(self._folder, self._sh.runs[group])
        try:
            with h5py.File(path, "r") as f:
                return what(f)
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            raise StoreError(f"{path}: group {group} is {'corrupt' if os.path.exists(path) else 'missing'} "
                             f"({one_line(e)}): its data cannot be trusted; restore the file from a backup, "
                             f"or rerun the experiment into a new file") from None

    def done(self, group):
        """True when ``group`` was written completely."""
        return _norm(group) in self._sh.runs

    def read(self, group):
        """(arrays, attrs) of a written group, checksums verified; arrays nest as dicts for subgroups."""
        group = _norm(group)
        if group not in self._sh.runs:
            raise StoreError(f"{self.path}: group {group} is missing or incomplete: run the experiment to write it")
        return self._in_run(group, lambda f: (h5file.read_arrays(f), dict(f.attrs)))

    def attrs(self, group):
        """Attributes of a group, without reading its arrays ({} for a group on the way to written ones)."""
        group, loc = _norm(group), self._locate(_norm(group))
        if loc is not None:
            return self._in_run(loc[0], lambda f: dict(f[loc[1]].attrs))
        if group and not any(g.startswith(group + "/") for g in self._sh.runs):
            raise StoreError(f"{self.path}: group {group} does not exist: run the experiment to write it")
        return {}

    def groups(self, group):
        """Names of the members of ``group`` (empty if absent)."""
        group, loc = _norm(group), self._locate(_norm(group))
        if loc is not None:
            return self._in_run(loc[0], lambda f: sorted(f[loc[1]].keys()) if loc[1] in f else [])
        prefix = group + "/" if group else ""
        return sorted({g[len(prefix):].split("/")[0] for g in self._sh.runs if g.startswith(prefix)})

    def verify(self):
        """Read every written group, checking every checksum (StoreError at the first damaged one)."""
        for g in sorted(self._sh.runs):
            self.read(g)

    # -- writing -------------------------------------------------------------
    def write(self, group, arrays, attrs=None):
        """Write ``arrays`` (nested dict of numpy arrays) and ``attrs`` under ``group``, atomically."""
        self._writable()
        group = _norm(group)
        if any(p in ("", ".", "..") or not re.fullmatch(r"[\w.\-]+", p) for p in group.split("/")):
            raise StoreError(f"{self.path}: group name {group!r} is not valid: use names of letters, digits, "
                             f"'_', '.' and '-' separated by '/'")
        clash = [g for g in self._sh.runs if g.startswith(group + "/") or group.startswith(g + "/")]
        if clash:
            raise StoreError(f"{self.path}: group {group} would nest with the written group {clash[0]}: "
                             f"write groups side by side")
        runs, name = self.path + ".d", group.replace("/", "~") + ".h5"

        def fill(f):
            h5file.write_arrays(f, arrays)
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
            f.attrs["completed"] = True          # last: marks the group whole
        with self._sh.mutex:
            try:
                if not os.path.isdir(runs):
                    os.mkdir(runs)
                    fsync_dir(self._folder)
                self.bytes_written += write_file(os.path.join(runs, name), fill)
                target = os.path.basename(runs) + "/" + name
                if self._sh.runs.get(group) != target:         # else the index links it already
                    self._sh.runs[group] = target
                    self._write_index()
            except (OSError, TypeError, ValueError) as e:
                raise StoreError(f"{self.path}: writing group {group} failed ({one_line(e)}); the groups "
                                 f"written before are kept: fix the cause and rerun") from None

    def mark_complete(self):
        """Record that every run is written (writes nothing where that is recorded already)."""
        self._writable()
        with self._sh.mutex:
            if not self._sh.complete:
                self._sh.complete = True
                self._write_index()

    def _writable(self):
        if self.readonly or self.closed:
            raise StoreError(f"{self.path} was opened {'read-only' if self.readonly else 'and closed'}: "
                             f"open it with ExperimentStore(path, config) to write")

    def _write_index(self):
        sh = self._sh

        def fill(f):
            f.attrs["format"], f.attrs["config"] = FORMAT, sh.config_json
            if sh.complete:
                f.attrs["completed"] = True
            for g, target in sorted(sh.runs.items()):
                f[g] = h5py.ExternalLink(target, "/")
        self.bytes_written += write_file(self.path, fill)

    # -- lifetime --------------------------------------------------------------
    def close(self):
        """Release the lock (with the last store of this process on the file); idempotent."""
        if self.closed or self.readonly:
            self.closed = True
            return
        self.closed, sh = True, self._sh
        sh.count -= 1
        if sh.count == 0 and sh.pid == os.getpid():
            sh.lock.release()
            if _HELD.get(self._key) is sh:
                del _HELD[self._key]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _norm(group):
    return str(group).strip("/")


