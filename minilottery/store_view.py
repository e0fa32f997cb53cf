"""An experiment as it is on disk, read-only and unlocked: how reports read an experiment that is
still running, and what the writer (``store.ExperimentStore``) builds on.

The index (``h5file.read_index``) names the written groups and the file each is in; reads
verify checksums and, given ``expect``, the shapes and dtypes the configuration implies. A
configuration pointed at the file is checked against the stored one, naming only the settings
that differ (``identity.py``).
"""
import json
import os

import h5py

from minilottery import h5file, identity
from minilottery.errors import StoreError, one_line
from minilottery.h5file import group_file


def _norm(group):
    return str(group).strip("/")


class StoreView:
    """An existing experiment, read-only: no lock, the index as it is when opened."""

    def __init__(self, path, config=None):
        """Open the experiment at ``path``; with ``config``, refuse another configuration."""
        self.path, self.closed, self.bytes_written = os.fspath(path), False, 0
        self._real = os.path.realpath(self.path)
        self._folder, self._runs_dir = os.path.dirname(self._real), self._real + ".d"
        self._load(h5file.read_index(self.path))
        if config is not None:
            self._check_config(config)

    def _load(self, index):
        self._config_json, self.config, self._links, self.complete = index
        self._runs = set(self._links)

    @staticmethod
    def read_config(path):
        """The configuration dict stored in an experiment file (validating the file)."""
        return h5file.read_index(os.fspath(path))[1]

    def _check_config(self, config, grow=False):
        """Refuse another configuration, naming only the settings that differ; with ``grow``, a configuration
        that only adds runs is taken in and the union recorded (identity.merge); returns what grew."""
        config = json.loads(json.dumps(config))
        if self.config == config:
            return []
        merged, clash = (identity.merge(self.config, config) if grow
                         else (None, identity.differences(self.config, config)))
        if clash:
            raise StoreError(f"{self.path} holds an experiment with another configuration "
                             f"({'; '.join(clash)}); choose another output file "
                             f"or rerun with the file's configuration")
        grown = identity.changes(self.config, merged)
        self._config_json, self.config, self.complete = json.dumps(merged, sort_keys=True), merged, False
        return grown

    def _locate(self, group):
        """(written group, path inside its file) for a group at or under a written group, else None."""
        parts = group.split("/")
        for i in range(1, len(parts) + 1):
            if "/".join(parts[:i]) in self._runs:
                return "/".join(parts[:i]), "/".join(parts[i:])
        return None

    def _in_run(self, group, what):
        """what(h5 file) on a written group's file; StoreError naming file and group where it is damaged."""
        path = os.path.join(self._runs_dir, group_file(group))
        try:
            with h5py.File(path, "r") as f:
                if not f.attrs.get("completed", False):
                    raise ValueError("the file is not a whole group of this store (no completed mark)")
                return what(f)
        except h5file.Unexpected as e:
            raise StoreError(f"{path}: group {group} does not match the experiment's configuration "
                             f"({one_line(e)}): the file was altered or belongs to another version; "
                             f"rerun the experiment into a new file") from None
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
            state = "corrupt" if os.path.exists(path) else "missing"
            raise StoreError(f"{path}: group {group} is {state} ({one_line(e)}): its data cannot be trusted; "
                             f"restore the file from a backup, or rerun the experiment into a new file") from None

    def done(self, group):
        """True when ``group`` was written completely."""
        return _norm(group) in self._runs

    def read(self, group, expect=None):
        """(arrays, attrs) of a written group, checksums verified; arrays nest as dicts for subgroups.
        ``expect``: {name: array or (shape, dtype)}, nested, the arrays the configuration implies; their
        shapes and dtypes are checked before any data is read."""
        group = _norm(group)
        if group not in self._runs:
            raise StoreError(f"{self.path}: group {group} is missing or incomplete: run the experiment to write it")
        return self._in_run(group, lambda f: (h5file.read_arrays(f, expect), dict(f.attrs)))

    def attrs(self, group):
        """Attributes of a group, without reading its arrays ({} for a group on the way to written ones)."""
        group, loc = _norm(group), self._locate(_norm(group))
        if loc is not None:
            return self._in_run(loc[0], lambda f: dict(h5file.member(f, loc[1]).attrs))
        if group and not any(g.startswith(group + "/") for g in self._runs):
            raise StoreError(f"{self.path}: group {group} does not exist: run the experiment to write it")
        return {}

    def groups(self, group):
        """Names of the members of ``group`` (empty if absent)."""
        group, loc = _norm(group), self._locate(_norm(group))
        if loc is not None:
            def names(f):
                try:
                    g = h5file.member(f, loc[1])
                except KeyError:
                    return []
                return sorted(g.keys()) if isinstance(g, h5py.Group) else []
            return self._in_run(loc[0], names)
        prefix = group + "/" if group else ""
        return sorted({g[len(prefix):].split("/")[0] for g in self._runs if g.startswith(prefix)})

    def verify(self):
        """Read every written group, checking every checksum (StoreError at the first damaged one)."""
        for g in sorted(self._runs):
            self.read(g)

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
