"""The prune-at-init experiment: every (method, sparsity, sanity check) runs, the checks do what
they say, a rerun resumes without retraining, bad options are refused, the report and JSON."""
import json

import numpy as np
import pytest

from minilottery.errors import ConfigError
from minilottery.experiments.prune_at_init import PruneAtInitConfig, PruneAtInitExperiment, group, summary
from minilottery.reports.prune_at_init import format_table, report
from minilottery.store import ExperimentStore
from tests.helpers_data import tiny_mnist

TINY = dict(iterations=20, eval_every=10, score_examples=30, synflow_rounds=5)


def _run(path, **kw):
    cfg = PruneAtInitConfig.paper(**{**TINY, **kw})
    with ExperimentStore(path, cfg.to_dict()) as store:
        PruneAtInitExperiment(cfg, store, tiny_mnist(), log=lambda *a: None).run()
    return cfg, ExperimentStore.open_readonly(path)


def test_every_run_is_stored_with_its_density_and_the_sanity_checks_hold(tmp_path):
    cfg, store = _run(tmp_path / "p.h5", method=("snip", "synflow"), sparsity=(0.9,),
                      ablation=("none", "shuffle", "reinit", "invert"))
    rows = summary(store)
    assert len(rows) == 2 * 4
    for r in rows:
        assert r["density"] == pytest.approx(1 - r["sparsity"], abs=1e-5) and 0 <= r["test_acc"] <= 1
    theta0 = store.read(group(0, "theta0"))[0]
    for method in ("snip", "synflow"):
        none = store.read(group(0, "masks", f"{method}-none-s0.90"))[0]
        shuffled = store.read(group(0, "masks", f"{method}-shuffle-s0.90"))[0]
        inverted = store.read(group(0, "masks", f"{method}-invert-s0.90"))[0]
        for k in none:
            assert shuffled[k].sum() == none[k].sum()                    # per-layer density kept
            assert not np.array_equal(shuffled[k], none[k])              # positions moved
        assert any(not np.array_equal(inverted[k], none[k]) for k in none)
        # reinit trains the none mask from another draw: the trained weights are zero where it is
        reinit = store.read(group(0, "runs", f"{method}-reinit-s0.90"))[0]["weights"]
        plain = store.read(group(0, "runs", f"{method}-none-s0.90"))[0]["weights"]
        for k in none:
            assert np.all(reinit[k][~none[k]] == 0) and np.all(plain[k][~none[k]] == 0)
        assert not np.array_equal(reinit["fc1.W"], plain["fc1.W"])
    assert not store.done(group(0, "masks", "snip-reinit-s0.90"))         # reinit has no mask of its own
    assert set(theta0) >= {"fc1.W", "fc1.b"}


def test_a_rerun_resumes_without_retraining_and_gives_the_same_file(tmp_path):
    path = tmp_path / "p.h5"
    _, store = _run(path, method=("magnitude", "random"), sparsity=(0.8,), ablation=("none", "shuffle"))
    before = {r["run"]: r["test_acc"] for r in summary(store)}
    lines = []
    cfg = PruneAtInitConfig.paper(**{**TINY, "method": ("magnitude", "random"), "sparsity": (0.8,),
                                     "ablation": ("none", "shuffle")})
    with ExperimentStore(path, cfg.to_dict()) as s:
        PruneAtInitExperiment(cfg, s, tiny_mnist(), log=lines.append).run()
    assert not any("trial 0" in str(line) for line in lines)
    assert {r["run"]: r["test_acc"] for r in summary(ExperimentStore.open_readonly(path))} == before


def test_the_same_seed_gives_the_same_masks(tmp_path):
    masks = []
    for name in ("a.h5", "b.h5"):
        _, store = _run(tmp_path / name, method=("grasp", "random"), sparsity=(0.7,), ablation=("none",))
        masks.append({n: store.read(group(0, "masks", n))[0] for n in ("grasp-none-s0.70", "random-none-s0.70")})
    for n in masks[0]:
        for k in masks[0][n]:
            np.testing.assert_array_equal(masks[0][n][k], masks[1][n][k])


@pytest.mark.parametrize("bad, match", [(dict(method=("snap",)), "--method"), (dict(sparsity=(1.0,)), "--sparsity"),
                                        (dict(ablation=("none", "none")), "--ablation"),
                                        (dict(score_examples=0), "--score-examples"),
                                        (dict(sparsity=()), "--sparsity")])
def test_bad_options_are_refused_in_one_line(bad, match):
    with pytest.raises(ConfigError, match=match) as e:
        PruneAtInitConfig.paper(**{**TINY, **bad})
    assert "\n" not in str(e.value)


def test_report_table_and_figure(tmp_path):
    path = tmp_path / "p.h5"
    _run(path, method=("magnitude",), sparsity=(0.5, 0.9), ablation=("none", "invert"))
    lines = []
    table = report(str(path), log=lines.append)
    assert "| magnitude | invert |" in table and "50% kept" in table and "10% kept" in table
    rows = summary(ExperimentStore.open_readonly(path))
    assert format_table(rows) == table
    json.dumps(rows)                                                     # the --json rows serialise
    pytest.importorskip("matplotlib")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_the_figure_is_titled_with_the_protocol_and_its_bars_span_the_trials(tmp_path, monkeypatch):
    from minilottery.reports import prune_at_init as rp
    path = tmp_path / "p.h5"
    _run(path, method=("magnitude", "random"), sparsity=(0.5,), trials=2)
    drawn = {}
    monkeypatch.setattr(rp, "plot", lambda rows, png, title, trials: drawn.update(title=title, trials=trials))
    rp.report(str(path), log=lambda *a: None)
    assert drawn["trials"] == 2
    assert "lenet_300_100 / mnist" in drawn["title"]
    assert "quick protocol: 20 iterations per run (paper: 50,000), 2 trials" in drawn["title"]
    monkeypatch.undo()
    pytest.importorskip("matplotlib")
    from minilottery.reports import figure
    rows, figs = summary(ExperimentStore.open_readonly(path)), []
    monkeypatch.setattr(figure, "save", lambda fig, png, layout=True: figs.append(fig) or png)
    rp.plot(rows, str(tmp_path / "f.png"), "t", 2)
    ax = figs[0].axes[0]
    assert ax.get_legend().get_title().get_text() == "error bars: min–max over 2 trials"
    assert len(ax.containers) == 2                                     # one error-bar set per method
