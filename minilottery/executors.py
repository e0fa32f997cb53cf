"""Where an experiment's runs go: this process (Serial), local worker processes (Local), or Dask (Cluster).

An executor takes the plan's picklable jobs (``plan.Job``) and gives back futures;
only the coordinator (``plan.execute``) writes their results. Every job runs with
single-threaded BLAS and its own seeded streams, so results do not depend on
which executor ran them.
"""
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait

from minilottery import backend, progress
from minilottery.errors import ConfigError, MiniLotteryError

_STARTED = None   # in a local worker: where it says which run it starts (Local names a dead worker's run)


def announce(run):
    """In a local worker: say which run this process starts (a no-op elsewhere)."""
    if _STARTED is not None:
        _STARTED.put((os.getpid(), run))


# -- executors ---------------------------------------------------------------------------------

class Executor:
    """submit(job) -> future; wait_any(futures) -> the finished ones; a context manager that closes.

    ``live``: wait_any also takes ``timeout`` (seconds; it may return nothing), so the coordinator can
    show the runs in flight while it waits.
    """
    live = False

    def cause(self, error):
        """The error to report for a run whose future raised ``error``."""
        return error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Serial(Executor):
    """Runs each job at once, in this process; ``progress``: with per-iteration progress lines."""
    name, workers = "serial", 1

    def __init__(self, progress=False):
        self.progress = progress

    def submit(self, job):
        f = Future()
        try:
            with progress.shown(self.progress):
                f.set_result(job())
        except Exception as e:              # re-raised by result(); Ctrl-C goes straight up
            f.set_exception(e)
        return f

    def wait_any(self, futures):
        return [f for f in futures if f.done()]

    def close(self):
        pass


def _watch_parent(parent, every=0.5):
    """In a worker: exit at once when the coordinator that started it has died (the worker is adopted)."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _track(started, parent):
    """Worker initialiser: every job announces (pid, run) before it starts; an orphan exits."""
    import threading
    global _STARTED
    _STARTED = started
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()


class Local(Executor):
    """Worker processes on this machine (spawned: no state shared with the coordinator).

    A worker whose coordinator dies (kill -9 included) exits within half a second, and the
    resource tracker, whose last client it was, with it. A worker that dies (killed, out of
    memory, a crash in C) breaks the whole pool, and every
    run in flight fails alike; each job announces its run on a queue as it starts, so the
    failure names the run whose worker died, not whichever of them is collected first.
    """
    name, live = "local", True

    def __init__(self, workers):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        ctx = multiprocessing.get_context("spawn")
        self.workers = workers
        self.started = ctx.SimpleQueue()           # written without a feeder thread: kept if the worker dies
        self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_track,
                                        initargs=(self.started, os.getpid()))
        self.dead, self.last = None, {}            # the error once a worker died; pid -> its latest run
        self.began = {}                            # run -> when a worker was seen starting it (progress)

    def submit(self, job):
        return self.pool.submit(job)

    def wait_any(self, futures, timeout=None):
        done = list(wait(futures, timeout=timeout, return_when=FIRST_COMPLETED).done)
        self._drain()                              # a few lines per finished run: the pipe never fills
        return done

    def _drain(self):
        while not self.started.empty():
            pid, run = self.started.get()
            self.last[pid] = run
            for name in run.split(" + "):          # a stacked job announces its runs joined by " + "
                self.began.setdefault(name, time.perf_counter())

    def cause(self, error):
        from concurrent.futures.process import BrokenProcessPool
        if not isinstance(error, BrokenProcessPool):
            return error
        if self.dead is None:                      # the pool fails every run in flight: one cause for all
            self.dead = self._dead_worker()
        return self.dead

    def _dead_worker(self):
        """The error naming the run(s) whose worker process died, once the pool has stopped them all."""
        processes = dict(self.pool._processes or {})   # noqa: SLF001  pid -> Process, kept by the pool
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._drain()
        dead = {pid: p.exitcode for pid, p in processes.items() if p.exitcode not in (0, -signal.SIGTERM)}
        named = [f"{self.last[pid]} (exit code {code})" for pid, code in dead.items() if self.last.get(pid)]
        what = ", ".join(named) if named else "one of the runs in flight"
        return MiniLotteryError(f"run {what} failed: its worker process died; rerun the same command to "
                                f"continue from the runs already saved")

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


class Cluster(Executor):
    """A Dask distributed scheduler at ``address`` (``pip install 'minilottery[cluster]'``)."""
    name, live = "dask", True

    def __init__(self, address):
        try:
            import distributed
        except ImportError as e:
            raise ConfigError("--scheduler needs Dask: pip install 'minilottery[cluster]'") from e
        self.distributed = distributed
        try:
            self.client = address if isinstance(address, distributed.Client) else distributed.Client(address)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        self.workers = max(1, len(self.client.scheduler_info()["workers"]))

    def submit(self, job):
        return self.client.submit(job, pure=False)

    def wait_any(self, futures, timeout=None):
        try:
            return list(self.distributed.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED").done)
        except TimeoutError:                   # (distributed's TimeoutError is the builtin one)
            return []

    def close(self):
        pass                                   # the client belongs to whoever made it


def make_executor(workers=None, scheduler=None, stack=None, progress=False):
    """Serial for one worker (None: one per core), local processes for more, Dask when a scheduler is
    named; ``progress``: per-iteration lines where runs share this terminal (serial only).

    stack: how many runs of one architecture train as one stacked network (default: the backend's)."""
    stack = backend.default_stack() if stack is None else stack
    if isinstance(stack, bool) or int(stack) != stack or stack < 1:
        raise ConfigError(f"--stack must be a positive integer, got {stack}")
    if scheduler is not None:
        ex = Cluster(scheduler)
    else:
        workers = (os.cpu_count() or 1) if workers is None else workers
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        ex = Serial(progress) if workers == 1 else Local(workers)
    ex.stack = int(stack)
    return ex
