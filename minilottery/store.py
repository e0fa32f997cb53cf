"""HDF5 experiment files: one per experiment, atomic, resumable.

Layout::

    /                       attrs: config (JSON), format
    trials/00/theta0/       θ0, one dataset per parameter ("fc1.W", "fc1.b", ...)
    trials/00/levels/003/mask/          the mask of level 3, one bool dataset per weight
    trials/00/levels/003/ticket/        weights/…, curves/…, attrs (summary, completed)
    trials/00/levels/003/reinit_0/      a control run, same layout

Every write goes to a copy of the file that then replaces it (``os.replace``),
and each group gets its ``completed`` attribute last: a crash or Ctrl-C at any
moment leaves the previous complete file, never a half-written one.
"""
import json
import os
import shutil

import h5py
import numpy as np
from minilottery.errors import StoreError

FORMAT = "minilottery-experiment-1"



def _diff(old, new):
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k}: file has {old.get(k)!r}, asked {new.get(k)!r}" for k in keys if old.get(k) != new.get(k))


class ExperimentStore:
    def __init__(self, path, config):
        """Open ``path`` for ``config`` (a JSON-able dict), creating it if absent.

        Refuses a file made with a different configuration, and reports a
        corrupt or foreign file instead of reading half of it.
        """
        self.path, self.config = str(path), dict(config)
        if os.path.exists(self.path):
            stored = self.read_config(self.path)
            if stored != json.loads(json.dumps(self.config)):
                raise StoreError(f"{self.path} holds an experiment with another configuration "
                                 f"({_diff(stored, self.config)}); choose another output file "
                                 f"or rerun with the file's configuration")
        else:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._commit(lambda f: None)

    @staticmethod
    def read_config(path):
        """The configuration dict stored in an experiment file (validating the file)."""
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT or "config" not in f.attrs:
                    raise StoreError(f"{path} is an HDF5 file but not a minilottery experiment "
                                     f"(format {f.attrs.get('format')!r})")
                return json.loads(f.attrs["config"])
        except OSError as e:
            raise StoreError(f"{path} is not a readable HDF5 experiment file ({e}); it may be "
                             f"truncated or corrupt: move it away and rerun to start afresh") from None

    # -- reading ------------------------------------------------------------
    def _open(self):
        try:
            return h5py.File(self.path, "r")
        except OSError as e:
            raise StoreError(f"{self.path} became unreadable ({e})") from None

    def done(self, group):
        """True when ``group`` was written completely."""
        with self._open() as f:
            return group in f and bool(f[group].attrs.get("completed", False))

    def read(self, group):
        """(arrays, attrs) of a completed group; arrays nest as dicts for subgroups."""
        with self._open() as f:
            if group not in f or not f[group].attrs.get("completed", False):
                raise StoreError(f"{self.path}: group {group} is missing or incomplete")
            return _read_group(f[group]), dict(f[group].attrs)

    def attrs(self, group):
        """Attributes of a group, without reading its arrays."""
        with self._open() as f:
            return dict(f[group].attrs)

    def groups(self, group):
        """Names of the subgroups of ``group`` (empty if absent)."""
        with self._open() as f:
            return sorted(f[group].keys()) if group in f else []

    # -- writing (atomic) -----------------------------------------------------
    def write(self, group, arrays, attrs=None):
        """Write ``arrays`` (nested dict of numpy arrays) and ``attrs`` under ``group``, atomically."""
        def fill(f):
            if group in f:
                del f[group]
            g = f.create_group(group)
            _write_group(g, arrays)
            for k, v in (attrs or {}).items():
                g.attrs[k] = v
            g.attrs["completed"] = True          # last: marks the group whole
        self._commit(fill)

    def mark_complete(self):
        self._commit(lambda f: f.attrs.__setitem__("completed", True))

    def _commit(self, fill):
        tmp = self.path + ".tmp"
        try:
            if os.path.exists(self.path):
                shutil.copyfile(self.path, tmp)
            with h5py.File(tmp, "a") as f:
                f.attrs["format"] = FORMAT
                f.attrs["config"] = json.dumps(self.config, sort_keys=True)
                fill(f)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _write_group(g, arrays):
    for name, v in arrays.items():
        if isinstance(v, dict):
            _write_group(g.create_group(name), v)
        else:
            g.create_dataset(name, data=np.asarray(v))


def _read_group(g):
    return {k: _read_group(v) if isinstance(v, h5py.Group) else v[()] for k, v in g.items()}
