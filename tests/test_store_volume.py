"""Write volume of a Conv-6-sized experiment: at most twice the bytes the store keeps."""
import os

import numpy as np

from minilottery.store import ExperimentStore

# Conv-6 on CIFAR-10: conv 3->64->64->128->128->256->256 (3x3), fc 4096->256->256->10
CONV6 = {"conv1": (64, 3, 3, 3), "conv2": (64, 64, 3, 3), "conv3": (128, 64, 3, 3), "conv4": (128, 128, 3, 3),
         "conv5": (256, 128, 3, 3), "conv6": (256, 256, 3, 3), "fc1": (4096, 256), "fc2": (256, 256), "fc3": (256, 10)}


def _written_by_process():
    """Bytes this process passed to write(2) so far (Linux), else None."""
    try:
        with open("/proc/self/io") as fh:
            return int(next(line for line in fh if line.startswith("wchar:")).split()[1])
    except (OSError, StopIteration):
        return None


def test_conv6_experiment_writes_at_most_twice_what_it_keeps(tmp_path):
    rng = np.random.default_rng(0)
    weights = {f"{k}.W": rng.standard_normal(s, dtype=np.float32) for k, s in CONV6.items()}
    weights.update({f"{k}.b": np.zeros(s[0], np.float32) for k, s in CONV6.items()})
    masks = {f"{k}.W": rng.random(s) < 0.8 for k, s in CONV6.items()}
    assert sum(weights[f"{k}.W"].size for k in CONV6) == 2_261_184
    curves = {"iteration": np.arange(0, 30000, 100), "val_loss": rng.random(300), "test_acc": rng.random(300)}
    path = tmp_path / "conv6.h5"
    wchar0 = _written_by_process()
    with ExperimentStore(path, {"model": "conv6"}) as s:
        s.write("trials/00/theta0", weights)
        for level in range(20):                 # 1 trial x 20 runs, a bool mask for each pruned level
            if level:
                s.write(f"trials/00/levels/{level:03d}/mask", masks, {"Pm": 0.8 ** level})
            s.write(f"trials/00/levels/{level:03d}/ticket", {"weights": weights, "curves": curves},
                    {"Pm": 0.8 ** level, "kind": "ticket", "early_stop_iteration": 5000})
        s.mark_complete()
        written = s.bytes_written
    wchar = None if wchar0 is None else _written_by_process() - wchar0
    files = [os.path.join(d, n) for d, _, names in os.walk(tmp_path) for n in names]
    kept = sum(os.path.getsize(f) for f in files)
    groups = sorted((os.path.getmtime(f), os.path.getsize(f)) for f in files if f.endswith(".h5") and ".h5.d" in f)
    old = sum(sum(size for _, size in groups[:i + 1]) for i in range(len(groups)))   # a copy of everything per write
    print(f"\nConv-6, 1 trial x 20 runs + 19 masks: kept {kept / 1e6:.1f} MB, written {written / 1e6:.1f} MB "
          f"({written / kept:.3f}x; write(2) calls of the process: "
          f"{'n/a' if wchar is None else f'{wchar / 1e6:.1f} MB, {wchar / kept:.3f}x'}); "
          f"copying the file at every write would write {old / 1e6:.0f} MB ({old / kept:.1f}x)")
    assert kept > 200e6 and written <= 2 * kept
    assert wchar is None or wchar <= 2 * kept
