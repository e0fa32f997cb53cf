"""Kill and concurrency drills for the experiment store: SIGKILL a writer at random instants, rerun
it, compare bitwise; start several writers (some through a symlink to the index) and a reader at once.

    python tests/store_drill.py --count 20            # 20 random instants (tests run 3)
    python tests/store_drill.py --concurrent 20       # 20 rounds of 3 writers and a reader (tests run 2)
    python tests/store_drill.py --write PATH          # the writer itself (what the drill starts and kills)

Concurrency: in each round three writers start together on one new experiment, one of them
through a symbolic link to the index, with a reader polling it; each writer either finishes
the experiment or is refused at once ("in use", or through the link before its target exists:
exit 3), at least one finishes, every read
the reader makes succeeds, and the result equals an uninterrupted run bitwise.

The writer writes a fixed sequence of groups with deterministic content (no
training: seeded arrays, a short pause between groups) and marks the experiment
complete. Each round starts it in a fresh process, kills it with SIGKILL at an
instant drawn uniformly over the length of a whole run, reruns it to completion
in another process, and compares the result with an uninterrupted run: every
array (dtype, shape, bytes) and every attribute, read through a plain
``h5py.File`` walk of the index and through ``ExperimentStore.read`` (which
verifies the checksums). No temporary file and no lock file may remain.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minilottery.store import ExperimentStore  # noqa: E402

CONFIG = {"drill": 1, "levels": 6}
GROUPS = ["trials/00/theta0"] + [f"trials/00/levels/{lv:03d}/{run}" for lv in range(1, 7)
                                 for run in ("mask", "ticket", "reinit_0")]


def content(i, group):
    """Deterministic arrays and attrs of the i-th group."""
    rng = np.random.default_rng(i)
    shapes = {"fc1.W": (784, 300), "fc2.W": (300, 100), "fc3.W": (100, 10)}
    if group.endswith("mask"):
        return {k: rng.random(s) < 0.8 for k, s in shapes.items()}, {"Pm": 0.8 ** i}
    weights = {k: rng.standard_normal(s, dtype=np.float32) for k, s in shapes.items()}
    weights.update({k.replace(".W", ".b"): np.zeros(s[1], np.float32) for k, s in shapes.items()})
    if group.endswith("theta0"):
        return weights, {}
    curves = {"iteration": np.arange(0, 1000, 100), "val_loss": rng.random(10), "test_acc": rng.random(10)}
    return ({"weights": weights, "curves": curves, "best": np.float64(rng.random())},
            {"early_stop_iteration": int(rng.integers(1000)), "kind": group.rsplit("/", 1)[1], "Pm": 0.8 ** i})


def write_all(path, pause=0.02):
    with ExperimentStore(path, CONFIG) as s:
        for i, g in enumerate(GROUPS):
            if not s.done(g):
                s.write(g, *content(i, g))
                time.sleep(pause)
        s.mark_complete()


def snapshot(path):
    """{name: value} of every dataset (dtype, shape, bytes) and attribute, following the index's links."""
    out = {}

    def walk(obj, name):
        for k, v in obj.attrs.items():
            out[f"{name}@{k}"] = (type(v).__name__, np.asarray(v).tobytes() if not isinstance(v, str) else v)
        if isinstance(obj, h5py.Dataset):
            a = obj[()]
            out[name] = (a.dtype.str, a.shape, a.tobytes())
        else:
            for k in obj:
                walk(obj[k], f"{name}/{k}")
    with h5py.File(path, "r") as f:
        walk(f, "")
    store = ExperimentStore.open_readonly(path)
    store.verify()
    out["groups"] = sorted(g for g in GROUPS if store.done(g))
    return out


def _run_writer(path):
    return subprocess.Popen([sys.executable, __file__, "--write", str(path)])


def drill(count, workdir, seed=0, log=print):
    """Kill a writer at ``count`` random instants; returns one line per round. AssertionError on a mismatch."""
    workdir = Path(workdir)
    ref = workdir / "ref.h5"
    t0 = time.perf_counter()
    assert _run_writer(ref).wait() == 0
    span = time.perf_counter() - t0
    want = snapshot(ref)
    assert len(want["groups"]) == len(GROUPS)
    rng, lines = random.Random(seed), []
    for k in range(count):
        path = workdir / f"kill{k:03d}.h5"
        at = rng.uniform(0, span)
        proc = _run_writer(path)
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait()
        leftovers = [n for n in os.listdir(workdir) if n.startswith(f".{path.name}.")]
        if os.path.isdir(f"{path}.d"):
            leftovers += [n for n in os.listdir(f"{path}.d") if n.endswith(".tmp")]
        try:
            had = (f"{sum(map(ExperimentStore.open_readonly(path).done, GROUPS))}/{len(GROUPS)} groups"
                   if path.exists() else "no file yet")
        except Exception as e:          # noqa: BLE001 - reported, then the rerun must still succeed
            had = f"unreadable ({e})"
        assert _run_writer(path).wait() == 0, f"round {k}: the rerun failed"
        got = snapshot(path)
        assert got.keys() == want.keys(), f"round {k}: {sorted(set(got) ^ set(want))[:5]}"
        bad = [n for n in want if got[n] != want[n]]
        assert not bad, f"round {k}: differs at {bad[:5]}"
        left = [n for n in os.listdir(workdir) if n.startswith(f".{path.name}.") or n == f"{path.name}.lock"]
        left += [n for n in os.listdir(f"{path}.d") if not n.endswith(".h5")]
        assert not left, f"round {k}: left behind {left}"
        line = (f"round {k}: killed at {at:.2f}s of {span:.2f}s ({'killed' if rc == -9 else f'exit {rc}'}; "
                f"on disk: {had}; temporary files left by the kill: {len(leftovers)}) -> rerun identical")
        lines.append(line)
        log(line)
    return lines


REFUSED = 3


def write_or_refuse(path):
    from minilottery.store import StoreError
    try:
        write_all(path)
    except StoreError as e:
        if "in use" not in str(e) and "symbolic link" not in str(e):   # held, or the link's target not made yet
            raise
        sys.exit(REFUSED)


def read_while_written(path, seconds):
    """The reader of the concurrency drill: open and read what is done, again and again."""
    from minilottery.store import StoreView, StoreError
    end, reads = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        try:
            view = StoreView(path)
        except StoreError as e:
            if "does not exist" in str(e):
                continue
            raise
        for g in GROUPS:
            if view.done(g):
                view.read(g)
                reads += 1
        time.sleep(0.01)
    print(reads)


def concurrency(count, workdir, seed=0, log=print):
    """``count`` rounds of three writers (one through a symlink) and a reader on one new experiment."""
    workdir = Path(workdir)
    ref = workdir / "ref.h5"
    t0 = time.perf_counter()
    assert _run_writer(ref).wait() == 0
    span = time.perf_counter() - t0
    want = snapshot(ref)
    lines = []
    for k in range(count):
        path = workdir / f"conc{k:03d}.h5"
        link = workdir / f"link{k:03d}.h5"
        os.symlink(path.name, link)
        reader = subprocess.Popen([sys.executable, __file__, "--read", str(path), "--seconds", f"{span:.2f}"],
                                  stdout=subprocess.PIPE, text=True)
        writers = [subprocess.Popen([sys.executable, __file__, "--write-or-refuse", str(p)])
                   for p in (path, path, link)]
        codes = [w.wait() for w in writers]
        out, _ = reader.communicate()
        assert reader.returncode == 0, f"round {k}: the reader failed"
        assert set(codes) <= {0, REFUSED} and 0 in codes, f"round {k}: writers exited {codes}"
        got = snapshot(path)
        bad = [n for n in want if got.get(n) != want[n]]
        assert got.keys() == want.keys() and not bad, f"round {k}: differs at {bad[:5]}"
        left = [n for n in os.listdir(workdir) if n.startswith(f".{path.name}.") or n == f"{path.name}.lock"]
        assert not left, f"round {k}: left behind {left}"
        line = (f"round {k}: writers exited {codes} ({codes.count(REFUSED)} refused at once), "
                f"reader made {out.strip()} reads -> result identical")
        lines.append(line)
        log(line)
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--concurrent", type=int, default=None)
    p.add_argument("--write", default=None, help=argparse.SUPPRESS)
    p.add_argument("--write-or-refuse", default=None, help=argparse.SUPPRESS)
    p.add_argument("--read", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.write:
        write_all(args.write)
        return
    if args.write_or_refuse:
        write_or_refuse(args.write_or_refuse)
        return
    if args.read:
        read_while_written(args.read, args.seconds)
        return
    with tempfile.TemporaryDirectory() as d:
        if args.concurrent:
            lines = concurrency(args.concurrent, d, args.seed)
            print(f"{len(lines)} rounds of three writers and a reader, every result identical")
        else:
            lines = drill(args.count, d, args.seed)
            print(f"{len(lines)} kills, every rerun identical to the uninterrupted run")


if __name__ == "__main__":
    main()
