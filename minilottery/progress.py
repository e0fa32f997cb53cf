"""Periodic progress lines for long runs (no terminal tricks: logs stay readable)."""
import sys
import time


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
