"""HDF5 experiment stores: a small index plus one file per written group; locked, checksummed, crash-safe.

Two classes: :class:`StoreView` (``store_view.py``), an experiment as it is on disk,
read-only and unlocked (that is how reports read an experiment that is still running),
and :class:`ExperimentStore`, the one writer of an experiment. The files and their
fields are described in ``h5file.py``.

A write makes the group's file under a fresh temporary name (``.NAME.XXXXXXXX.tmp``),
fsyncs it, renames it into place and fsyncs the folder; then it rewrites the index
the same way (``runs/.x.h5.XXXXXXXX.tmp``). That rename is the commit: a crash or
Ctrl-C at any instant leaves the previous index, and the next writer deletes, under
the lock, the temporary files of that pattern and nothing else (a group file no index
links to is replaced when its group is written again). The store's folder
(``x.h5.d``) must be its own: a symbolic link or a plain file there is refused.
Bytes written: each group once, plus the small index per write; a finished experiment
reopened writes nothing.

Paths are resolved first: an index reached through a symbolic link is the experiment it
points to (its folder, its lock), and a store renamed or moved with its folder reads as
before. One writer per experiment (``flock`` on the ``.lock`` file, see ``lock.py``):
another writer, in this process or another, is refused at once, with the holder's pid
and host; the lock goes with ``close()`` (or the ``with`` block, or garbage collection)
or with the process. A new experiment whose run diverges is discarded when its ``with``
block ends (``discard()``): a diverged run leaves no file. ``bytes_written`` counts the bytes a store object has put on disk;
``verify()`` reads every group, checking every checksum.
"""
import contextlib
import json
import os
import re

import h5py

from minilottery import h5file
from minilottery.errors import DivergenceError, StoreError, one_line
from minilottery.h5file import FORMAT, group_file, valid_group, write_file
from minilottery.store_view import StoreView, _norm
from minilottery.lock import ExclusiveLock, LockHeld, check_writable, fsync_dir

__all__ = ["FORMAT", "StoreError", "StoreView", "ExperimentStore"]


class ExperimentStore(StoreView):
    """The one writer of an experiment: locked, resumable, atomic group writes."""

    def __init__(self, path, config, grow=False):
        """Open ``path`` for ``config`` (a JSON-able dict), creating it if absent, and lock it; refuses
        another configuration, a file another writer holds, a corrupt or foreign file, a folder that
        is not the store's own. ``grow=True``: a configuration that only adds runs continues the file,
        whose configuration becomes the union (identity.py; ``self.config`` is then what to run,
        ``self.grown`` what changed)."""
        if config is None:
            raise TypeError("an ExperimentStore needs the experiment's configuration")
        self.path, self.closed, self.bytes_written, self._lock = os.fspath(path), False, 0, None
        self.created = False
        self._real = os.path.realpath(self.path)
        self._folder, self._runs_dir = os.path.dirname(self._real), self._real + ".d"
        check_writable(self.path)
        self._check_folder()
        lock = ExclusiveLock(self._real + ".lock")
        try:
            os.makedirs(self._folder, exist_ok=True)
            lock.acquire()
        except LockHeld as e:
            raise StoreError(f"{self.path} is in use by {e.holder} (lock {lock.path}): wait for that run to "
                             f"finish or stop it; reports can open the file read-only meanwhile") from None
        except OSError as e:
            raise StoreError(f"{self.path} cannot be locked ({one_line(e)}): choose a writable output path") from None
        try:
            fresh = self.created = not os.path.exists(self._real)
            cfg = json.loads(json.dumps(config))
            self._load((json.dumps(cfg, sort_keys=True), cfg, {}, False) if fresh else h5file.read_index(self._real))
            self.grown = self._check_config(config, grow)
            self._clean(fresh)
            own = os.path.basename(self._real) + ".d/"
            if fresh or self.grown or any(t != own + group_file(g) for g, t in self._links.items()):
                with self._writing("the index"):
                    self._write_index()
        except BaseException:
            lock.release()
            raise
        self._lock = lock

    @classmethod
    def open_readonly(cls, path):
        """An existing experiment for reading only (a :class:`StoreView`)."""
        return StoreView(path)

    def _check_folder(self):
        """Refuse a store folder that is not the store's own (a link elsewhere, a plain file)."""
        d = self._runs_dir
        if os.path.islink(d):
            raise StoreError(f"{d} is a symbolic link (to {os.readlink(d)}): a store's folder must be its own, "
                             f"since the store deletes its stale temporary files there; move the folder itself "
                             f"to {d}, or choose another output file")
        if os.path.lexists(d) and not os.path.isdir(d):
            raise StoreError(f"{d} is a file, not the store's folder: move it away, or choose another output file")

    def _clean(self, fresh):
        """Under the lock: delete the temporary files of the store's own patterns, nothing else."""
        base = re.escape(os.path.basename(self._real))
        stale = [os.path.join(self._folder, n) for n in os.listdir(self._folder)
                 if re.fullmatch(r"\." + base + r"\.[a-z0-9_]{8}\.tmp", n)]
        if os.path.isdir(self._runs_dir):
            names = os.listdir(self._runs_dir)
            if fresh and any(n.endswith(".h5") for n in names):
                raise StoreError(f"{self._runs_dir} holds group files but its index {self.path} is missing: move "
                                 f"{self._runs_dir} away to start afresh, or choose another output file")
            stale += [os.path.join(self._runs_dir, n) for n in names
                      if re.fullmatch(r"\.[\w.\-~]+\.h5\.[a-z0-9_]{8}\.tmp", n)]
        for p in stale:
            if os.path.isfile(p) and not os.path.islink(p):
                os.remove(p)
        for d in {os.path.dirname(p) for p in stale}:
            fsync_dir(d)

    @contextlib.contextmanager
    def _writing(self, what):
        """OSError or an HDF5 failure while writing (a full disk, say) as one line that says what is kept."""
        try:
            yield
        except (OSError, TypeError, ValueError, RuntimeError) as e:
            raise StoreError(f"{self.path}: writing {what} failed ({one_line(e)}); the groups written before "
                             f"are kept: fix the cause (free space, say) and rerun the same command to "
                             f"continue") from None

    def write(self, group, arrays, attrs=None):
        """Write ``arrays`` (nested dict of numpy arrays) and ``attrs`` under ``group``, atomically."""
        self._writable()
        group = _norm(group)
        if not valid_group(group):
            raise StoreError(f"{self.path}: group name {group!r} is not valid: use names of letters, digits, "
                             f"'_', '.' and '-' separated by '/'")
        clash = [g for g in self._runs if g.startswith(group + "/") or group.startswith(g + "/")]
        if clash:
            raise StoreError(f"{self.path}: group {group} would nest with the written group {clash[0]}: "
                             f"write groups side by side")

        def fill(f):
            h5file.write_arrays(f, arrays)
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
            f.attrs["completed"] = True          # last: marks the group whole
        with self._writing(f"group {group}"):
            self._check_folder()
            if not os.path.isdir(self._runs_dir):
                os.mkdir(self._runs_dir)
                fsync_dir(self._folder)
            self.bytes_written += write_file(os.path.join(self._runs_dir, group_file(group)), fill)
            if group not in self._runs:         # else the index links it already
                self._runs.add(group)
                try:
                    self._write_index()
                except BaseException:
                    self._runs.discard(group)
                    raise

    def mark_complete(self):
        """Record that every run is written (writes nothing where that is recorded already)."""
        self._writable()
        if not self.complete:
            with self._writing("the index"):
                self.complete = True
                try:
                    self._write_index()
                except BaseException:
                    self.complete = False
                    raise

    def _writable(self):
        if self.closed:
            raise StoreError(f"{self.path} was opened and closed: open it with ExperimentStore(path, config) "
                             f"to write")

    def _write_index(self):
        own = os.path.basename(self._real) + ".d/"
        self._links = {g: own + group_file(g) for g in self._runs}

        def fill(f):
            f.attrs["format"], f.attrs["config"] = FORMAT, self._config_json
            if self.complete:
                f.attrs["completed"] = True
            for g, target in sorted(self._links.items()):
                f[g] = h5py.ExternalLink(target, "/")
        self.bytes_written += write_file(self._real, fill)

    def discard(self):
        """Delete an experiment this store created, with every file it wrote, and close it (a
        store it did not create is only closed): what a run that diverged in a new file leaves."""
        if self.created and not self.closed:
            for g in self._runs:
                os.remove(os.path.join(self._runs_dir, group_file(g)))
            os.remove(self._real)
            if os.path.isdir(self._runs_dir) and not os.listdir(self._runs_dir):
                os.rmdir(self._runs_dir)
            fsync_dir(self._folder)
        self.close()

    def __exit__(self, kind, *exc):
        """Closes; a new experiment whose run diverged is discarded (nothing of it is a result)."""
        if kind is not None and issubclass(kind, DivergenceError):
            self.discard()
        self.close()

    def close(self):
        """Release the lock; idempotent."""
        self.closed = True
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
