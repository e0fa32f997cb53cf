"""Periodic progress lines for long runs (no terminal tricks: logs stay readable).

Whether a training run prints its per-iteration lines is decided once, by the
executor running it (``plan.Serial(progress=True)`` shows them, worker
processes never do), through :func:`shown`; ``train`` reads it.
"""
import sys
import time
from contextlib import contextmanager

_SHOWN = False     # per-iteration lines in this process, now


def iteration_lines():
    """Whether training runs print their per-iteration progress lines here, now."""
    return _SHOWN


@contextmanager
def shown(on):
    """Per-iteration progress lines on (or off) for the duration of the block."""
    global _SHOWN
    before, _SHOWN = _SHOWN, bool(on)
    try:
        yield
    finally:
        _SHOWN = before


class Progress:
    """Prints at most one line every ``every_s`` seconds, and always the last one."""

    def __init__(self, total, label="", every_s=10.0, stream=None, enabled=True):
        self.total, self.label, self.every_s = total, label, every_s
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.start = self.last = time.perf_counter()

    def update(self, done, **fields):
        now = time.perf_counter()
        if not self.enabled or (done < self.total and now - self.last < self.every_s):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        extra = "  ".join(f"{k} {v}" for k, v in fields.items())
        print(f"{self.label}{done}/{self.total}  {extra}  ({rate:.0f}/s, eta {format_seconds(eta)})",
              file=self.stream, flush=True)


def format_seconds(s):
    if s == float("inf"):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
