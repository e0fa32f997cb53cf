"""Small synthetic datasets in the shape of the real ones, for fast tests."""
import numpy as np

from minilottery.data import Splits


def tiny_mnist(n_train=600, n_eval=100, seed=0):
    """Random 1×28×28 images whose class is readable from the mean of a 28-pixel band."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 10, n)
        x = rng.random((n, 1, 28, 28), dtype=np.float32) * 0.2
        for c in range(10):                                  # class c lights up rows 2c..2c+1
            x[y == c, 0, 2 * c:2 * c + 2, :] += 0.8
        return x, y.astype(np.int64)

    return Splits(train=make(n_train), val=make(n_eval), test=make(n_eval))


def all_arrays(path):
    """{name: array} of every dataset in an experiment file, following the index's external links."""
    import h5py
    out = {}

    def walk(group, prefix):
        for k in group:                       # group[k] follows external links; visititems does not
            obj, name = group[k], f"{prefix}/{k}"
            if isinstance(obj, h5py.Group):
                walk(obj, name)
            else:
                out[name] = obj[()]
    with h5py.File(path, "r") as f:
        walk(f, "")
    return out


def load_example(name):
    """examples/NAME.py as a module (the examples are scripts, not a package)."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
