"""The plan of runs: the same results serially, in worker processes and on a Dask cluster;
a worker that dies is named and the store stays resumable."""
import os
import time
from concurrent.futures import Future

import numpy as np
import pytest

from minilottery import plan
from minilottery.errors import MiniLotteryError
from minilottery.experiments.deconstructing import DeconstructingConfig, DeconstructingExperiment
from minilottery.experiments.imp import IMPConfig, IMPExperiment
from minilottery.store import ExperimentStore
from tests.helpers_data import all_arrays, tiny_mnist

SMALL = dict(iterations=20, eval_every=10, rounds=2, trials=2, reinit=1, random_pruning=True, lr=1e-3)


def _imp(path, executor):
    cfg = IMPConfig.paper("lenet_300_100", **SMALL)
    with ExperimentStore(path, cfg.to_dict()) as store:
        IMPExperiment(cfg, store, tiny_mnist(), log=lambda *a: None).run(executor)
    return all_arrays(path)


def _same(a, b):
    assert a.keys() == b.keys() and len(a) > 50
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k


def test_local_workers_give_bitwise_the_serial_files(tmp_path):
    serial = _imp(tmp_path / "serial.h5", plan.Serial())
    local = plan.Local(2)
    try:
        _same(serial, _imp(tmp_path / "local.h5", local))
    finally:
        local.close()


def test_dask_local_cluster_gives_bitwise_the_serial_files(tmp_path):
    distributed = pytest.importorskip("distributed")
    serial = _imp(tmp_path / "serial.h5", plan.Serial())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        executor = plan.Cluster(client)
        assert executor.workers == 2
        _same(serial, _imp(tmp_path / "dask.h5", executor))


def test_comparisons_in_workers_equal_serial(tmp_path):
    cfg = DeconstructingConfig(imp=IMPConfig.paper("lenet_300_100", **{**SMALL, "trials": 1, "reinit": 0,
                                                                       "random_pruning": False}),
                               comparisons=("mask0",))
    out = {}
    for name, executor in (("serial", plan.Serial()), ("local", plan.Local(2))):
        with ExperimentStore(tmp_path / f"{name}.h5", cfg.to_dict()) as store:
            DeconstructingExperiment(cfg, store, tiny_mnist(), log=lambda *a: None).run(executor)
        executor.close()
        out[name] = all_arrays(tmp_path / f"{name}.h5")
    _same(out["serial"], out["local"])


def _write(i):
    return {"a": np.arange(i + 1)}, {"i": i}


def _die():
    os._exit(3)                                                    # a worker killed mid-run


def _slow(i):
    time.sleep(0.3)
    return _write(i)


def test_a_dead_worker_is_named_and_the_store_resumes(tmp_path):
    path = tmp_path / "e.h5"
    tasks = [plan.Task(f"ok/{i}", (), lambda i=i: plan.Job(_slow if i else _write, (i,))) for i in range(3)]
    dying = [plan.Task("bad/run", ("ok/0",), lambda: plan.Job(_die, ()))]   # dies while ok/1 or ok/2 runs
    local = plan.Local(2)
    try:
        with ExperimentStore(path, {"k": 1}) as store:
            with pytest.raises(MiniLotteryError, match=r"run bad/run \(exit code 3\) failed: its worker process died"):
                plan.execute(tasks + dying, store, local, log=lambda *a: None)
    finally:
        local.close()
    with ExperimentStore(path, {"k": 1}) as store:                 # resumable: what finished is kept
        assert store.done("ok/0")
        plan.execute(tasks, store, plan.Serial(), log=lambda *a: None)
        assert all(store.done(f"ok/{i}") for i in range(3))
        assert store.read("ok/2")[0]["a"].tolist() == [0, 1, 2]


def test_a_plan_that_needs_an_unmade_group_is_refused(tmp_path):
    with ExperimentStore(tmp_path / "e.h5", {"k": 1}) as store:
        with pytest.raises(MiniLotteryError, match="nothing makes"):
            plan.execute([plan.Task("a", ("nowhere",), lambda: ({}, {}))], store, plan.Serial(), log=print)


def test_workers_must_be_positive():
    with pytest.raises(MiniLotteryError, match="--workers must be at least 1"):
        plan.make_executor(0)


def _interrupt():
    raise KeyboardInterrupt


def test_serial_saves_each_run_before_the_next_and_ctrl_c_stops_at_once(tmp_path):
    """A finished run is in the store before the next starts; Ctrl-C in a run stops the plan there."""
    ran = []

    def job(i):
        return lambda: ran.append(i) or plan.Job(_write, (i,))
    tasks = [plan.Task("ok/0", (), job(0)), plan.Task("stop", (), lambda: plan.Job(_interrupt, ())),
             plan.Task("ok/1", (), job(1))]
    with ExperimentStore(tmp_path / "e.h5", {"k": 1}) as store:
        with pytest.raises(KeyboardInterrupt):
            plan.execute(tasks, store, plan.Serial(), log=lambda *a: None)
        assert store.done("ok/0") and not store.done("ok/1") and ran == [0]


def test_a_failed_run_does_not_lose_the_others_that_finished(tmp_path):
    class Batch(plan.Serial):                          # every future done at once, the failure first
        def submit(self, job):
            f = Future()
            self.pending.append((f, job))
            return f

        def wait_any(self, futures):
            for f, job in self.pending:
                try:
                    f.set_result(job())
                except Exception as e:                  # noqa: BLE001
                    f.set_exception(e)
            self.pending = []
            return futures
    ex = Batch()
    ex.pending = []
    tasks = [plan.Task("bad", (), lambda: plan.Job(_fail, ()))] + \
        [plan.Task(f"ok/{i}", (), lambda i=i: plan.Job(_write, (i,))) for i in range(3)]
    with ExperimentStore(tmp_path / "e.h5", {"k": 1}) as store:
        with pytest.raises(MiniLotteryError, match="run bad failed"):
            plan.execute(tasks, store, ex, log=lambda *a: None)
        assert all(store.done(f"ok/{i}") for i in range(3))


def _fail():
    raise RuntimeError("boom")
