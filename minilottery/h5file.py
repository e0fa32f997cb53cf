"""The HDF5 files of an experiment store: the index and one file per group, written and read.

On-disk layout of the experiment ``PATH`` (here ``runs/x.h5``)::

    runs/x.h5               the index, small; ``h5py.File("runs/x.h5")`` opens and walks the whole experiment
      / attrs format        "minilottery-experiment-2"
              config        the configuration as JSON (sorted keys)
              completed     True once every run is written (absent before)
      trials/00/levels/001  plain groups: the path down to each written group
      trials/00/theta0      a written group: an HDF5 external link to ("x.h5.d/trials~00~theta0.h5", "/"),
                            relative to the index's folder (it resolves from any working directory)
    runs/x.h5.d/            one HDF5 file per written group, named after the group with "/" as "~"
      trials~00~levels~001~ticket.h5
        / attrs             the group's attrs (scalars, strings), then ``completed`` = True, last
        weights/fc1.W       nested dicts are groups, arrays are datasets with their dtype and shape
                            (bool as h5py's bool enum), one chunk each with a fletcher32 checksum;
                            a 0-d array is stored with shape (1,) and the dataset attr ``scalar`` = True;
                            an empty array is stored unchunked (it has no bytes to checksum)
    runs/x.h5.lock          while a writer holds the experiment: "pid P on host H since T"

An experiment file is untrusted input. Reading checks, before any data is read: the index's
config attribute is a JSON object; every index entry is a valid group name whose external link
names its own group file in the store's folder (``ANYNAME.h5.d/GROUP.h5``: a store renamed with
its folder still reads); inside a group file only plain groups and datasets (no soft or external
links), every dataset of a numeric or bool dtype with its bytes actually stored, and where the
caller says what to expect, the shapes and dtypes it expects. Every failure is one line naming
the file and the group.

Every HDF5 file is in the 1.10 format (HDF5 >= 1.10 reads it), whose metadata carries checksums too.
Move or rename the index and its folder together (the links name the folder). ``f["trials/00/theta0"]``
follows a link; h5py's ``visit``/``visititems`` do not (HDF5 walks one file), so walk by name.
"""
import io
import json
import os
import re

import h5py
import numpy as np

from minilottery.errors import StoreError, one_line
from minilottery.lock import replace_durably

FORMAT = "minilottery-experiment-2"
LIBVER = ("v110", "v110")
NAME = r"[\w.\-]+"                      # one part of a group path


class Unexpected(ValueError):
    """A stored array that is well formed but not the one the configuration implies."""


def valid_group(group):
    """True for a group path the store writes: parts of letters, digits, '_', '.', '-'; no '.' or '..'."""
    return all(p not in ("", ".", "..") and re.fullmatch(NAME, p) for p in group.split("/"))


def group_file(group):
    """The name of a written group's file in the store's folder ("trials/00/theta0" -> "trials~00~theta0.h5")."""
    return group.replace("/", "~") + ".h5"


def write_file(final, fill):
    """Make ``final`` durably from ``fill(h5 file)``; the HDF5 image is built in memory first, so a full
    disk is an OSError of a plain write, never a failure inside HDF5; returns the bytes written."""
    buf = io.BytesIO()
    with h5py.File(buf, "w", libver=LIBVER) as f:
        fill(f)
    image = buf.getbuffer()

    def write(tmp):
        with open(tmp, "wb") as fh:
            fh.write(image)
    return replace_durably(final, write)


def _config(path, raw):
    if raw is None:
        raise StoreError(f"{path} is an HDF5 file but not a minilottery experiment (no config attribute): "
                         f"choose another output file")
    try:
        config = json.loads(raw if isinstance(raw, (str, bytes)) else "not a string")
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise StoreError(f"{path}: the index's config attribute is not a JSON object ({str(raw)[:60]!r}): "
                         f"the file is damaged or not an experiment; move it away and rerun to start afresh")
    return json.dumps(config, sort_keys=True), config


def read_index(path):
    """(config JSON, config dict, {group: its link's file name}, completed) of the index at ``path``;
    StoreError, naming the file and the group, if it is not an experiment's index or a link is not its own."""
    if os.path.isdir(path):
        raise StoreError(f"{path} is a directory, not an experiment file: give the path of a .h5 file")
    if not os.path.exists(path):
        raise StoreError(f"{path} does not exist: check the path, or run the experiment to create it")
    try:
        with h5py.File(path, "r") as f:
            fmt, runs = f.attrs.get("format"), {}
            if isinstance(fmt, str) and fmt.startswith("minilottery-experiment-") and fmt != FORMAT:
                raise StoreError(f"{path} was written by an older version of minilottery (format {fmt}); "
                                 f"read it with that version, or rerun the experiment into a new file")
            if fmt != FORMAT:
                raise StoreError(f"{path} is an HDF5 file but not a minilottery experiment (format {fmt!r}): "
                                 f"choose another output file")
            config_json, config = _config(path, f.attrs.get("config"))

            def walk(g, prefix):
                for name in g:
                    group, link = prefix + name, g.get(name, getlink=True)
                    if not valid_group(group):
                        raise StoreError(f"{path}: group {group!r} is not a name the store writes: the index "
                                         f"is damaged or crafted; rerun the experiment into a new file")
                    if isinstance(link, h5py.ExternalLink):
                        want = r"[^/]+\.d/" + re.escape(group_file(group))
                        if link.path != "/" or not re.fullmatch(want, link.filename):
                            raise StoreError(f"{path}: group {group} links to {link.filename}:{link.path}, not to "
                                             f"its own file in the store's folder: the index is damaged or "
                                             f"crafted; rerun the experiment into a new file")
                        runs[group] = link.filename
                    elif isinstance(link, h5py.HardLink) and g.get(name, getclass=True) is h5py.Group:
                        walk(g[name], group + "/")
                    else:
                        raise StoreError(f"{path}: group {group} is a {type(link).__name__} to "
                                         f"{'a dataset' if isinstance(link, h5py.HardLink) else 'elsewhere'}, "
                                         f"which an index never holds: the index is damaged or crafted; "
                                         f"rerun the experiment into a new file")
            walk(f, "")
            return config_json, config, runs, bool(f.attrs.get("completed", False))
    except OSError as e:
        raise StoreError(f"{path} is not a readable HDF5 experiment file ({one_line(e)}); it may be "
                         f"truncated or corrupt: move it away and rerun to start afresh") from None


def write_arrays(g, arrays):
    for name, v in arrays.items():
        if isinstance(v, dict):
            write_arrays(g.create_group(name), v)
            continue
        a = np.asarray(v)
        if a.dtype.kind not in "biufc":
            raise TypeError(f"array {name} has dtype {a.dtype}; only numeric and bool arrays are stored")
        if a.size == 0:
            g.create_dataset(name, data=a)
        else:
            d = g.create_dataset(name, data=a.reshape(a.shape or (1,)), chunks=a.shape or (1,), fletcher32=True)
            if a.ndim == 0:
                d.attrs["scalar"] = True


def member(g, path):
    """``g[path]`` through plain (hard) links only; ValueError naming a soft or external link on the way."""
    for part in [p for p in path.split("/") if p]:
        link = g.get(part, getlink=True)
        if link is None:
            raise KeyError(f"{g.name.rstrip('/')}/{part} does not exist")
        if not isinstance(link, h5py.HardLink):
            raise ValueError(f"{g.name.rstrip('/')}/{part} is a {type(link).__name__}, not stored data")
        g = g[part]
    return g


def _shape(d):
    """The shape a stored dataset stands for, checked against how the store writes (ValueError if not)."""
    if d.dtype.kind not in "biufc":
        raise ValueError(f"{d.name} has dtype {d.dtype}, not a numeric or bool array")
    scalar = bool(d.attrs.get("scalar", False))
    if scalar and d.shape != (1,):
        raise ValueError(f"{d.name} is marked scalar but has shape {d.shape}")
    if d.size and (d.chunks != d.shape or not d.fletcher32 or d.id.get_storage_size() < d.size * d.dtype.itemsize):
        raise ValueError(f"{d.name} declares shape {d.shape} ({d.size * d.dtype.itemsize:,} bytes) but does not "
                         f"store them as one checksummed chunk")
    return () if scalar else d.shape


def read_arrays(g, expect=None):
    """The nested dict of arrays under ``g``; where ``expect`` ({name: array or (shape, dtype)}, nested) names
    an array, its shape and dtype must match, checked before any data is read (ValueError otherwise)."""
    names = list(g)
    for k in (expect or {}):
        if k not in names:
            raise Unexpected(f"{g.name.rstrip('/')}/{k} is missing")
    out = {}
    for k in names:
        v, want = member(g, k), (expect or {}).get(k)
        if isinstance(v, h5py.Group):
            out[k] = read_arrays(v, want if isinstance(want, dict) else None)
            continue
        shape = _shape(v)
        if want is not None:
            shape_w, dtype_w = (want.shape, want.dtype) if hasattr(want, "dtype") else want
            if isinstance(want, dict) or (tuple(shape_w), np.dtype(dtype_w)) != (shape, v.dtype):
                raise Unexpected(f"{v.name} is {v.dtype} {shape}, where the configuration implies "
                                 f"{'a group' if isinstance(want, dict) else f'{np.dtype(dtype_w)} {tuple(shape_w)}'}")
        out[k] = v[()].reshape(shape)
    return out
