"""What an experiment says while it runs: what a resume found, an ETA from the finished runs only,
and a live line over the runs in flight while workers train."""
import time

from minilottery import plan
from minilottery.progress import RunBar
from minilottery.store import ExperimentStore


def _write(i):
    return {"a": __import__("numpy").arange(3) + i}, {"i": i}


def _tasks(n):
    out = [plan.Task("theta0", (), lambda: ({}, {}))]                       # cheap: not a run
    return out + [plan.Task(f"run/{i}", ("theta0",), lambda i=i: plan.Job(_write, (i,)), f"run {i}")
                  for i in range(n)]


def test_a_resume_says_how_many_runs_it_found_and_how_many_are_left(tmp_path):
    lines = []
    with ExperimentStore(tmp_path / "e.h5", {"k": 1}) as store:
        plan.execute(_tasks(3), store, plan.Serial(), log=lines.append, describe=lambda a: f"i {a['i']}")
    assert lines[0] == "3 runs to go" and len(lines) == 4           # then one line per run, θ0 none
    lines.clear()
    with ExperimentStore(tmp_path / "e.h5", {"k": 1}) as store:
        plan.execute(_tasks(5), store, plan.Serial(), log=lines.append, describe=lambda a: f"i {a['i']}")
    assert lines[0] == "resuming: 3 of 5 runs done, 2 to go"
    assert lines[1].startswith("[1/2, eta ") and lines[1].endswith("run 3: i 3")


class _Task:
    def __init__(self, g):
        self.group, self.label = g, g


def test_eta_learns_from_finished_runs_only_and_counts_workers():
    bar = RunBar(10, lambda *a: None, workers=2)
    assert bar.eta() == float("inf")                               # nothing finished: no guess
    for i in range(2):
        bar.start(_Task(f"r{i}"))
    bar.started["r0"] = (bar.started["r0"][0], time.perf_counter() - 60)    # one run took 60 s
    bar.started["r1"] = (bar.started["r1"][0], time.perf_counter() - 20)    # the other 20 s
    bar.finish(_Task("r0"), None)
    bar.finish(_Task("r1"), None)
    assert abs(bar.eta() - 40 * 8 / 2) < 1                           # mean 40 s × 8 left ÷ 2 workers


def test_the_live_line_names_the_runs_in_flight(tmp_path):
    lines = []
    bar = RunBar(3, lines.append, workers=2, every_s=0.0)
    bar.start(_Task("trial 0 level 1 ticket"))
    bar.show()
    assert lines and "running: trial 0 level 1 ticket 0m00s" in lines[0] and "[0/3 done" in lines[0]


def test_runs_time_from_when_a_worker_started_them_and_waiting_ones_are_queued():
    began, lines = {}, []
    bar = RunBar(4, lines.append, workers=1, every_s=0.0, began=began)
    for g in ("a", "b"):
        bar.start(_Task(g))
    bar.started["a"] = (bar.started["a"][0], time.perf_counter() - 100)    # submitted long ago ...
    began["a"] = time.perf_counter() - 10                                   # ... started 10 s ago
    bar.show()
    assert "running: a 0m10s (1 queued)" in lines[-1]
    bar.finish(_Task("a"), None)
    assert abs(bar.durations[0] - 10) < 1 and "a" not in began


def test_a_stacked_job_marks_each_of_its_runs_started():
    from minilottery.executors import Local

    class Queue(list):
        def empty(self):
            return not self

        def get(self):
            return self.pop(0)
    ex = Local.__new__(Local)                       # no pool: only the bookkeeping of started runs
    ex.started, ex.last, ex.began = Queue([(7, "trials/00/a + trials/01/a")]), {}, {}
    ex._drain()
    assert set(ex.began) == {"trials/00/a", "trials/01/a"} and ex.last[7] == "trials/00/a + trials/01/a"
