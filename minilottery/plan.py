"""An experiment as a graph of runs, executed serially, in local worker processes, or on Dask.

A ``Task`` names the store group its result goes to and the groups it needs.
When they are all complete, the coordinator calls ``task.prepare()``: cheap
work (a mask, θ0) returns its result at once; a training run returns a
``Job``, a picklable call that an executor runs, here or on a worker, and
whose result ``(arrays, attrs)`` comes back to the coordinator. Only the
coordinator writes the store, so a crash anywhere leaves it resumable: a
rerun skips every complete group.

Every job runs with single-threaded BLAS whatever the executor, and draws only
from its own seeded streams, so each run's result is bitwise the same with 1,
2 or 16 workers, locally or on a cluster. Workers load the dataset themselves
(once per process, from their own data folder or mirror).
"""
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field

from minilottery import backend, blas, progress
from minilottery.errors import ConfigError, MiniLotteryError
from minilottery.progress import RunBar
from minilottery.stack import bundles

_DATA = {}   # (dataset, data_dir, mirror) -> Splits, one load per process


@dataclass(frozen=True)
class DataRef:
    """Where a process finds the dataset: it loads it once and keeps it (the coordinator's first
    ``load()`` serves the jobs it runs itself).

    ``DataRef.inline_data(data)`` carries small data with it instead (tests, synthetic data).
    """
    dataset: str
    data_dir: str = None
    mirror: str = None
    inline: object = field(default=None, compare=False, hash=False, repr=False)

    @classmethod
    def inline_data(cls, data):
        return cls(f"inline-{id(data)}", inline=data)

    def load(self):
        if self.inline is not None:
            return self.inline
        if self not in _DATA:
            from minilottery.data import load_dataset
            _DATA[self] = load_dataset(self.dataset, data_dir=self.data_dir, mirror=self.mirror)
        return _DATA[self]


_STARTED = None   # in a local worker: where it says which run it starts (Local names a dead worker's run)


@dataclass
class Job:
    """``fn(*args)`` -> (arrays, attrs), run with single-threaded BLAS; ``fn`` is a module-level function.

    ``name`` is the store group the result goes to (``execute`` sets it).
    """
    fn: object
    args: tuple
    backend_name: str = field(default_factory=backend.backend_name)
    name: str = ""
    stack: tuple = None   # (key, fn_many): jobs of one key may train as one stacked network,
                          # fn_many([args, ...]) -> [(arrays, attrs), ...] in order

    def __call__(self):
        if _STARTED is not None:
            _STARTED.put((os.getpid(), self.name))
        if backend.backend_name() != self.backend_name:
            backend.set_backend(self.backend_name)
        with blas.single_threaded():
            return self.fn(*self.args)


@dataclass
class Task:
    group: str
    deps: tuple
    prepare: object            # () -> Job, or the result (arrays, attrs) of cheap work
    label: str = ""


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
            self.began.setdefault(run, time.perf_counter())

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


# -- the loop ----------------------------------------------------------------------------------

def execute(tasks, store, executor, log=print, describe=None):
    """Run every task whose group is not complete, in dependency order; only this process writes.

    Says first what it found (``resuming: 3 of 8 runs done, 5 to go``), then one line per finished
    run and, while runs are in flight on workers, a live bar (:class:`progress.RunBar`).
    """
    tasks = {t.group: t for t in tasks}
    todo = {g: t for g, t in tasks.items() if not store.done(g)}
    missing = {d for t in todo.values() for d in t.deps if d not in tasks and not store.done(d)}
    if missing:
        raise MiniLotteryError(f"the plan needs groups nothing makes: {sorted(missing)[:3]}")
    runs = sum(1 for t in tasks.values() if t.label)            # training runs; the rest is cheap
    left = sum(1 for t in todo.values() if t.label)
    workers = getattr(executor, "workers", 1)
    if left < runs:
        log(f"resuming: {runs - left} of {runs} runs done, {left} to go" + (f" on {workers} workers" if workers > 1 else ""))
    elif runs:
        log(f"{runs} runs to go" + (f" on {workers} workers" if workers > 1 else ""))
    bar = RunBar(left, log, workers, began=getattr(executor, "began", None))
    running = {}

    def collect(finished):
        """Write every finished run (each as soon as it is known), then raise the first failure."""
        failure = None
        for f in finished:
            ts = running.pop(f)
            try:
                results = f.result()
            except Exception as e:             # noqa: BLE001  (raised below, after the others are saved)
                failure = failure or (ts[0], executor.cause(e))
                continue
            for t, (arrays, attrs) in zip(ts, results if len(ts) > 1 else [results]):
                store.write(t.group, arrays, attrs)
                bar.finish(t, describe(attrs) if describe else None, share=len(ts))
        if failure:
            t, e = failure
            if isinstance(e, MiniLotteryError):
                raise e
            raise MiniLotteryError(f"run {t.group} failed ({type(e).__name__}: {e}); rerun the same "
                                   f"command to continue from the runs already saved") from e

    def submit(tasks, job):
        for t in tasks:
            bar.start(t)
        f = executor.submit(job)
        running[f] = tasks
        if f.done():
            collect([f])                           # serial: saved before the next run starts

    stack = getattr(executor, "stack", 1)
    while todo or running:
        ready = []                                 # with stacking: the pass's jobs, bundled at its end
        for g, t in list(todo.items()):
            if all(store.done(d) for d in t.deps):
                del todo[g]
                work = t.prepare()
                if isinstance(work, Job):
                    work.name = g
                    if stack > 1:
                        ready.append((t, work))
                    else:
                        submit([t], work)
                else:
                    store.write(g, *work)
        for tasks, job in bundles(ready, stack):     # stack.py: one key's jobs in runs of ``stack``
            submit(tasks, job)
        if not running:
            if ready:
                continue                           # serial runs just written: their dependants are ready
            if todo:
                raise MiniLotteryError(f"the plan is stuck: {sorted(todo)[:3]} wait on groups that never finish")
            break
        if executor.live:
            finished = executor.wait_any(list(running), timeout=bar.wait_s())
            bar.show()
        else:
            finished = executor.wait_any(list(running))
        collect(finished)
    bar.close()
