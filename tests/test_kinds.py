"""One protocol for every experiment kind: configs that name their kind, the KINDS table the commands
and reports read, flags named as users type them, the after-step hook, progress decided once, and a
command with --json, resume and a report (the same "plot skipped" line) for every kind."""
import json

import numpy as np
import pytest

from minilottery import config, plan, progress
from minilottery.__main__ import main as cli
from minilottery.commands import build_parser
from minilottery.errors import StoreError
from minilottery.experiments.base import KINDS, Experiment
from minilottery.nn.models import build_model
from minilottery.reports import figure, report_for
from minilottery.rng import Streams
from minilottery.store import ExperimentStore
from minilottery.train import TrainConfig, train
from tests.helpers_data import tiny_mnist

TINY = {"imp": dict(iterations=10, eval_every=5, rounds=1, reinit=0),
        "deconstructing": dict(iterations=10, eval_every=5, rounds=1, reinit=0, comparisons=("mask0",)),
        "supermask": dict(method="at_init", iterations=10, eval_every=5, keep=(0.5,), weights=("theta0",)),
        "jackpot": dict(iterations=10, eval_every=5, pretrain_iterations=10, finetune_iterations=5,
                        batch_size=32, sparsities=(0.5,)),
        "instability": dict(iterations=10, eval_every=5, rewind_iteration=(0, 5), points=3),
        "prune_at_init": dict(iterations=10, eval_every=5, method=("snip",), sparsity=(0.5,), score_examples=20)}


def test_every_kind_is_in_the_table_and_its_config_names_it():
    assert set(KINDS) == set(TINY)
    for kind, (cls, experiment, report) in KINDS.items():
        cfg = cls.paper(**TINY[kind])
        assert cfg.to_dict()["kind"] == kind == experiment.kind
        assert issubclass(experiment, Experiment) and callable(report)
        assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()


def test_a_file_without_a_kind_is_refused_not_read_as_imp(tmp_path):
    path = tmp_path / "e.h5"
    with ExperimentStore(path, {"model": "lenet_300_100"}):
        pass
    with pytest.raises(StoreError, match="names no experiment kind"):
        report_for(str(path))


@pytest.mark.parametrize("kind", sorted(TINY))
def test_every_kind_runs_resumes_summarises_and_reports_without_matplotlib(kind, tmp_path, monkeypatch):
    cls, experiment, report = KINDS[kind]
    cfg, path, data = cls.paper(**TINY[kind]), tmp_path / f"{kind}.h5", tiny_mnist(200, 40)
    with ExperimentStore(path, cfg.to_dict()) as store:
        experiment(cfg, store, data, log=lambda *a: None).run()
    lines = []
    with ExperimentStore(path, cfg.to_dict()) as store:               # a rerun: nothing left to run
        experiment(cfg, store, data, log=lines.append).run()
        rows = experiment.summary(store)
    assert not any("eta" in line for line in lines) and rows
    json.dumps(rows)
    monkeypatch.setattr(figure, "pyplot", lambda: None)
    out = []
    report_for(str(path))(str(path), log=out.append)
    assert figure.SKIPPED in out and report is report_for(str(path))


def test_flags_are_named_as_users_type_them_and_route_to_their_fields():
    args = build_parser().parse_args(["jackpot", "--sparsity", "0.8", "0.9", "--pretrain-iterations", "7",
                                      "--finetune-iterations", "3", "--iterations", "11"])
    given = config.overrides(args, KINDS["jackpot"][0])
    assert given == {"sparsities": [0.8, 0.9], "pretrain_iterations": 7, "finetune_iterations": 3, "iterations": 11}
    cfg = KINDS["jackpot"][0].paper(**given)
    assert (cfg.sparsities, cfg.pretrain.iterations, cfg.finetune.iterations, cfg.search.iterations) == \
        ((0.8, 0.9), 7, 3, 11)
    args = build_parser().parse_args(["deconstructing", "--comparison", "mask0", "criteria", "--rounds", "2"])
    cfg = KINDS["deconstructing"][0].paper(**config.overrides(args, KINDS["deconstructing"][0],
                                                              skip=("criterion", "mask1", "mask0")))
    assert cfg.comparisons == ("mask0", "criteria") and cfg.imp.rounds == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["deconstructing", "--criterion", "movement"])   # the comparisons set it


class Counting:
    """A network whose after_step calls are counted, and which records whether the step came first."""

    def __init__(self):
        self.net, self.calls = build_model("lenet_300_100", Streams.from_seed(0)), []

    def __getattr__(self, name):
        return getattr(self.net, name)

    def after_step(self):
        self.calls.append(progress.iteration_lines())


def test_train_calls_the_after_step_hook_once_per_step_and_progress_is_the_executors():
    net, cfg = Counting(), TrainConfig(iterations=7, eval_every=7, batch_size=20)
    train(net, tiny_mnist(100, 20), cfg, Streams.from_seed(0))
    assert net.calls == [False] * 7                                # no executor said to show progress
    job = plan.Job(train, (net, tiny_mnist(100, 20), cfg, Streams.from_seed(0)))
    plan.Serial(progress=True).submit(job).result()
    assert net.calls[7:] == [True] * 7 and not progress.iteration_lines()


def test_the_deconstructing_command_writes_json_resumes_and_reports(mirror, tmp_path, capsys):
    out, js = tmp_path / "d.h5", tmp_path / "d.json"
    argv = ["deconstructing", "--comparison", "mask0", "--rounds", "1", "--iterations", "20", "--eval-every", "10",
            "--out", str(out), "--json", str(js), "--workers", "1", "--quiet", "--mirror", mirror,
            "--data-dir", str(tmp_path / "data")]
    assert cli(argv) == 0
    first = capsys.readouterr().out
    assert "mask-0 actions" in first and "trial 0 level 1" in first
    rows = json.loads(js.read_text())
    assert rows["config"]["kind"] == "deconstructing" and set(rows["variants"]) == {
        "large_final-rewind-zero", "large_final-rewind-freeze_init", "large_final-rewind-variant1",
        "large_final-rewind-variant2"}
    assert cli(argv) == 0                                          # resumed: nothing trains again
    assert "trial 0 level" not in capsys.readouterr().out
    assert cli(["report", str(out), "--no-plot"]) == 0
    assert "mask-0 actions" in capsys.readouterr().out
    assert np.isfinite(rows["variants"]["large_final-rewind-zero"][-1]["early_stop_test_acc"])
