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

Every HDF5 file is in the 1.10 format (HDF5 >= 1.10 reads it), whose metadata carries checksums too.
Move or rename the index and its folder together (the links name the folder). ``f["trials/00/theta0"]``
follows a link; h5py's ``visit``/``visititems`` do not (HDF5 walks one file), so walk by name.
"""
import os

import h5py
import numpy as np

from minilottery.errors import StoreError, one_line
from minilottery.lock import replace_durably

FORMAT = "minilottery-experiment-2"
LIBVER = ("v110", "v110")


def write_file(final, fill):
    def write(tmp):
        with h5py.File(tmp, "w", libver=LIBVER) as f:
            fill(f)
    return replace_durably(final, write)


def read_index(path):
    """(config JSON, {group: its file}, completed) of the index at ``path``; StoreError if it is not one."""
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
            if fmt != FORMAT or "config" not in f.attrs:
                raise StoreError(f"{path} is an HDF5 file but not a minilottery experiment (format {fmt!r}): "
                                 f"choose another output file")

            def walk(g, prefix):
                for name in g:
                    link = g.get(name, getlink=True)
                    if isinstance(link, h5py.ExternalLink):
                        runs[prefix + name] = link.filename
                    elif isinstance(link, h5py.HardLink) and g.get(name, getclass=True) is h5py.Group:
                        walk(g[name], prefix + name + "/")
            walk(f, "")
            return str(f.attrs["config"]), runs, bool(f.attrs.get("completed", False))
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


def read_arrays(g):
    out = {}
    for k, v in g.items():
        if isinstance(v, h5py.Group):
            out[k] = read_arrays(v)
        else:
            out[k] = v[()].reshape(()) if v.attrs.get("scalar", False) else v[()]
    return out
