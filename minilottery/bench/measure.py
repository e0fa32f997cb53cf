"""Timing and memory of the benchmark's cases, ours against the peer, interleaved in one process.

Where torch imports, the same work runs in PyTorch in the same process, interleaved
with ours repeat by repeat (the order alternates), with torch's thread count set to
numpy's BLAS thread count. "ratio" is the median of the per-repeat ratios ours/PyTorch.
Peak memory: on NumPy, tracemalloc's peak over one step (numpy reports its buffers to
tracemalloc; parameters and optimiser state allocated before the step are left out);
on CuPy, the memory pool's total bytes after one step run from a trimmed pool.
"""
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np

from minilottery import backend
from minilottery.bench.cases import SCORE_CASES, make_case
from minilottery.blas import blas_threads
from minilottery.nn.conv import Conv2d
from minilottery.nn.gridconv import Grid

def _time(step, sync, inner):
    """Seconds per call, averaged over ``inner`` calls."""
    sync()
    t0 = time.perf_counter()
    for _ in range(inner):
        step()
    sync()
    return (time.perf_counter() - t0) / inner


def _inner(step, sync, target=0.05):
    """Calls per repeat so that one repeat lasts about ``target`` seconds."""
    return max(1, min(100, round(target / max(_time(step, sync, 1), 1e-6))))


def peak_bytes(step):
    """Peak bytes held during one call: tracemalloc on NumPy, the pool on CuPy."""
    backend.synchronize()
    if backend.backend_name() == "cupy":
        pool = backend.get_backend().get_default_memory_pool()
        pool.free_all_blocks()
        step()
        backend.synchronize()
        return int(pool.total_bytes())
    tracemalloc.start()
    try:
        step()                         # so that every cached array is a traced one
        tracemalloc.reset_peak()
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _convs(model, batch):
    """(name, layer, its input shape (N, C, H, W)) for every Conv2d of a model."""
    out, shape = [], model.input_shape
    for name, layer in model.layers:
        if isinstance(layer, Conv2d):
            out.append((name, layer, (batch,) + tuple(shape)))
        shape = layer.output_shape(shape)
    return out


def im2col_bytes(model, batch, itemsize=4):
    """Analytic im2col buffers of a model: [(layer, bytes)], one (N, C·kh·kw, Ho·Wo) per conv."""
    out = []
    for name, layer, (n, c, h, w) in _convs(model, batch):
        ho, wo = layer.output_shape((c, h, w))[1:]
        out.append((name, n * c * layer.k[0] * layer.k[1] * ho * wo * itemsize))
    return out


def grid_bytes(model, batch, itemsize=4):
    """What each Conv2d caches for its backward here: the padded input rows (N·Hp·Wp + lead, C)."""
    return [(name, (g.rows + g.lead) * g.c * itemsize)
            for name, layer, shape in _convs(model, batch) for g in [Grid(shape, layer.k, layer.s, layer.p)]]


def torch_peers():
    """The PyTorch peers (bench/torch_peers.py) on numpy's BLAS thread count, or None without torch."""
    try:
        from minilottery.bench import torch_peers as bt
    except ImportError:
        return None
    bt.torch.set_num_threads(blas_threads() or os.cpu_count())
    return bt


def measure(args):
    """Run the cases; returns a list of row dicts (times in seconds, memory in bytes)."""
    bt = None if args.no_torch else torch_peers()
    rows = []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        ours, peer, _ = make_case(case, args)
        sync = backend.synchronize
        theirs, tsync = peer(bt) if (bt is not None or case in SCORE_CASES) else (None, None)
        for _ in range(args.warmup):
            ours()
            if theirs:
                theirs()
        n_ours = _inner(ours, sync)
        n_theirs = _inner(theirs, tsync) if theirs else 0
        t_ours, t_theirs = [], []
        for r in range(args.repeats):   # interleaved; who goes first alternates
            order = [(ours, sync, n_ours, t_ours), (theirs, tsync, n_theirs, t_theirs)]
            for fn, sy, n, acc in (order if r % 2 == 0 else order[::-1]):
                if fn is not None:
                    acc.append(_time(fn, sy, n))
        row = {"case": case, "ours": statistics.median(t_ours), "torch": None, "ratio": None,
               "peak": peak_bytes(ours),
               "torch_peak": bt.peak_bytes(theirs, tsync) if theirs and case not in SCORE_CASES else None}
        if t_theirs:
            row["torch"] = statistics.median(t_theirs)
            row["ratio"] = statistics.median(a / b for a, b in zip(t_ours, t_theirs))
        rows.append(row)
    return rows, bt


def mb(b):
    return "" if b is None else f"{b / 2**20:.1f} MB"


def format_table(rows):
    lines = ["| case | ours ms | PyTorch ms | ratio ours/PyTorch | peak memory (ours) |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        torch_ms = "n/a" if r["torch"] is None else f"{r['torch'] * 1e3:.2f}"
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
        mem = mb(r["peak"]) + (f" (torch {mb(r['torch_peak'])})" if r["torch_peak"] else "")
        case = r["case"] + (" (peer: our dense Adam step)" if r["case"] in SCORE_CASES else "")
        lines.append(f"| {case} | {r['ours'] * 1e3:.2f} | {torch_ms} | {ratio} | {mem} |")
    return "\n".join(lines)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def environment(bt):
    torch_v = "not installed" if bt is None else (f"{bt.torch.__version__} on {bt.device()}, "
                                                  f"{bt.torch.get_num_threads()} threads")
    return (f"machine: {_cpu_model()} ({platform.system()} {platform.machine()}), "
            f"{os.cpu_count()} CPUs; python {platform.python_version()}; numpy {np.__version__} "
            f"(BLAS threads {blas_threads()}); backend {backend.backend_name()}; torch {torch_v}")
