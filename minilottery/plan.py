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
(once per process, from their own data folder or mirror). The executors are in
``executors.py`` (importable from here too).
"""
from dataclasses import dataclass, field

from minilottery import backend, blas, executors
from minilottery.errors import MiniLotteryError
from minilottery.executors import Cluster, Executor, Local, Serial, make_executor
from minilottery.progress import RunBar
from minilottery.stack import bundles

__all__ = ["DataRef", "Job", "Task", "execute", "Executor", "Serial", "Local", "Cluster", "make_executor"]

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
        executors.announce(self.name)
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
