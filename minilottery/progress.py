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


class RunBar:
    """Progress over an experiment's runs: one line per finished run with an ETA, and while runs are in
    flight on workers, a live bar (tqdm on a terminal; a plain line every ``every_s`` in a log).

    The ETA learns from the runs finished so far: their mean wall time × the runs left ÷ the workers
    that can work on them (cheap groups such as θ0 and masks are not runs and do not count). A run's
    time counts from when a worker started it (``began``: {run: time}, kept by the executor; without
    it, from its submission); runs submitted but not yet started are shown as queued.
    """

    def __init__(self, total, log, workers=1, every_s=30.0, stream=None, began=None):
        self.total, self.log, self.workers, self.every_s = total, log, max(1, workers), every_s
        self.done, self.durations, self.started, self.began = 0, [], {}, began
        self.stream = stream or sys.stderr
        self.start_time = self.last = time.perf_counter()
        self.tqdm = None
        if total and workers > 1 and self.stream.isatty():
            try:
                from tqdm import tqdm
                self.tqdm = tqdm(total=total, unit="run", file=self.stream, dynamic_ncols=True,
                                 bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}{postfix}]")
            except ImportError:
                pass

    def start(self, task):
        self.started[task.group] = (task, time.perf_counter())

    def eta(self):
        """Seconds left, from the finished runs' mean wall time; inf before the first one finishes."""
        left = self.total - self.done
        if not self.durations:
            return float("inf") if left else 0.0
        return sum(self.durations) / len(self.durations) * left / min(self.workers, max(left, 1))

    def finish(self, task, text, share=1):
        """``share``: how many runs trained as one stacked job with this one (each costs 1/share of it)."""
        self.done += 1
        _, t0 = self.started.pop(task.group, (task, None))
        t0 = self.began.pop(task.group, t0) if self.began is not None else t0
        if t0 is not None:
            self.durations.append((time.perf_counter() - t0) / share)
        if text is None:
            return
        line = f"[{self.done}/{self.total}, eta {format_seconds(self.eta())}] {task.label or task.group}: {text}"
        if self.tqdm:
            self.tqdm.write(line, file=self.stream)
            self.tqdm.update(1)
            self._postfix()
        else:
            self.log(line)

    def wait_s(self):
        """How long the coordinator may wait for a run before it looks again (which runs started)."""
        return 1.0 if self.tqdm else min(2.0, max(0.1, self.every_s - (time.perf_counter() - self.last)))

    def in_flight(self):
        """'trial 0 level 3 ticket 1m10s, ...' of the runs a worker has started, and how many wait."""
        now = time.perf_counter()
        if self.began is None:
            running, queued = self.started, {}
        else:
            running = {g: (t, self.began[g]) for g, (t, _) in self.started.items() if g in self.began}
            queued = {g for g in self.started if g not in self.began}
        text = ", ".join(f"{t.label or g} {format_seconds(now - t0)}" for g, (t, t0) in running.items())
        return text + (f" ({len(queued)} queued)" if queued else "")

    def _postfix(self):
        self.tqdm.set_postfix_str(f"eta {format_seconds(self.eta())}; running: {self.in_flight()}", refresh=True)

    def show(self):
        """The live bar: the runs in flight and how long each has run (at most one log line every every_s)."""
        if self.tqdm:
            self._postfix()
            return
        now = time.perf_counter()
        if self.started and now - self.last >= self.every_s:
            self.last = now
            self.log(f"[{self.done}/{self.total} done, {format_seconds(now - self.start_time)} elapsed, eta "
                     f"{format_seconds(self.eta())}] running: {self.in_flight()}")

    def close(self):
        if self.tqdm:
            self.tqdm.close()
