"""Results as data and figures for every experiment kind: flat rows with every number the table has
(and the final and train accuracies), JSON all the way down, CSV that csv/pandas read, curves on request,
and figures whose titles and legends name the variant, the protocol and the error bars."""
import csv
import json

import numpy as np
import pytest

from minilottery import backend
from minilottery.commands.report import add_arguments, run as report_command
from minilottery.experiments.deconstructing import DeconstructingConfig, DeconstructingExperiment
from minilottery.experiments.imp import IMPConfig, IMPExperiment
from minilottery.experiments.jackpot import JackpotConfig, JackpotExperiment
from minilottery.experiments.supermask import SupermaskConfig, SupermaskExperiment
from minilottery.reports import export, figure
from minilottery.reports import imp as imp_report
from minilottery.store import ExperimentStore
from tests.helpers_data import tiny_mnist

QUIET = dict(log=lambda *a: None)
TRAIN = dict(iterations=20, eval_every=10, batch_size=30)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One tiny finished experiment of each kind: {kind: path}."""
    backend.set_backend("numpy")
    root, data, out = tmp_path_factory.mktemp("kinds"), tiny_mnist(), {}

    def make(name, cfg, run):
        out[name] = str(root / f"{name}.h5")
        with ExperimentStore(out[name], cfg.to_dict()) as store:
            run(cfg, store)

    imp = IMPConfig.paper("lenet_300_100", rounds=2, trials=2, random_pruning=True, **TRAIN)
    make("imp", imp, lambda c, s: IMPExperiment(c, s, data, **QUIET).run())
    dec = DeconstructingConfig(imp=IMPConfig.paper("lenet_300_100", rounds=1, reinit=0, **TRAIN), comparisons=("mask0",))
    make("deconstructing", dec, lambda c, s: DeconstructingExperiment(c, s, data, **QUIET).run())
    sm = SupermaskConfig.paper("learned", eval_samples=3, **TRAIN)
    make("supermask", sm, lambda c, s: SupermaskExperiment(c, s, data, **QUIET).run())
    jp = JackpotConfig.paper("lenet_300_100", pretrain_iterations=30, iterations=20, eval_every=5, batch_size=32,
                             finetune_iterations=10, sparsities=(0.9, 0.5))
    make("jackpot", jp, lambda c, s: JackpotExperiment(c, s, data, **QUIET).run())
    return out


def _no_json_text(v):
    """True when nothing inside ``v`` is JSON text waiting to be decoded a second time."""
    if isinstance(v, dict):
        return all(_no_json_text(x) for x in v.values())
    if isinstance(v, list):
        return all(_no_json_text(x) for x in v)
    return not (isinstance(v, str) and v[:1] in "{[")


@pytest.mark.parametrize("kind", ["imp", "deconstructing", "supermask", "jackpot"])
def test_every_kind_exports_json_all_the_way_down_and_a_flat_csv(stores, kind, tmp_path):
    cfg, rows = export.rows(stores[kind])
    assert rows and cfg.get("kind", "imp") == kind
    assert _no_json_text(rows) and _no_json_text(cfg)
    path = export.write_json(str(tmp_path / "r.json"), cfg, rows)
    with open(path) as f:
        assert json.load(f)["rows"] == rows                      # JSON text, no NaN, round trip
    (csv_path,) = export.write_csv(str(tmp_path / "r.csv"), rows)
    with open(csv_path, newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    flat = export.flatten(rows[0])
    assert set(table[0]) >= set(flat) and all(not isinstance(v, (dict, list)) for v in flat.values())
    numbers = " ".join(table[0].values())
    if kind != "jackpot":
        assert {"final_test_acc", "early_stop_test_acc"} <= set(table[0]) or kind == "supermask"
    assert "{" not in numbers.replace('{"', "")                     # no nested dict left in a cell


def test_imp_rows_hold_every_number_of_the_table(stores):
    """The table's mean [min–max] cells recomputed from the flat rows give the same text."""
    path = stores["imp"]
    _, rows = export.rows(path)
    data = imp_report.collect(path)
    table = imp_report.format_table(data) + imp_report.format_table(data, columns=imp_report.AT_THE_END)
    for kind in ("ticket", "reinit", "random"):
        for level in (1, 2):
            rs = [r for r in rows if r["kind"] == kind and r["level"] == level]
            assert len(rs) == 2                                  # one per trial (K = 1)
            for name, scale, fmt in (("early_stop_iteration", 1, "{:.0f}"), ("early_stop_test_acc", 100, "{:.2f}"),
                                     ("final_test_acc", 100, "{:.2f}"), ("final_train_acc", 100, "{:.2f}")):
                assert imp_report.cell([r[name] for r in rs], scale, fmt) in table


def test_curves_come_on_request_in_json_and_a_long_csv(stores, tmp_path):
    _, plain_rows = export.rows(stores["imp"])
    assert all("curves" not in r for r in plain_rows)
    _, rows = export.rows(stores["imp"], curves=True)
    store = ExperimentStore.open_readonly(stores["imp"])
    for r in rows:
        stored = store.read(r["group"])[0]["curves"]
        assert r["curves"]["test_acc"] == stored["test_acc"].tolist()
    main, long = export.write_csv(str(tmp_path / "c.csv"), rows)
    with open(long, newline="") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == sum(len(r["curves"]["iteration"]) for r in rows)
    _, jrows = export.rows(stores["jackpot"], curves=True)
    assert all(set(r["curves"]) == {"jackpot", "edgepopup", "finetune"} for r in jrows)


def test_supermask_rows_keep_the_per_layer_densities_as_a_mapping(stores):
    _, rows = export.rows(stores["supermask"])
    for r in rows:
        assert set(r["density_per_layer"]) == {"fc1.W", "fc2.W", "fc3.W"}
        assert r["test_acc_min"] <= r["test_acc"] <= r["test_acc_max"]


def test_report_command_writes_csv_json_and_the_curve_figure(stores, tmp_path, capsys):
    import argparse
    p = argparse.ArgumentParser()
    add_arguments(p)
    png, c, j = tmp_path / "f.png", tmp_path / "x.csv", tmp_path / "x.json"
    report_command(p.parse_args([stores["imp"], "--png", str(png), "--curves", "0", "2", "--csv", str(c),
                                 "--json", str(j)]))
    out = capsys.readouterr().out
    assert c.exists() and j.exists() and (tmp_path / "x_curves.csv").exists()
    if figure.pyplot() is not None:
        assert png.exists() and (tmp_path / "f_curves.png").exists() and "f_curves.png" in out
    assert "curves" in json.load(open(j))["rows"][0]


def test_titles_and_legends_name_the_variant_protocol_and_error_bars():
    cfg = IMPConfig.paper("lenet_300_100", iterations=1000, trials=3, criterion="movement",
                          mask1="signed_constant").to_dict()
    t = imp_report.title(cfg)
    assert "quick protocol: 1,000 iterations per run (paper: 50,000), 3 trials" in t
    assert "pruning by movement" in t and "mask-1 signed_constant" in t
    assert imp_report.ticket_label(cfg) == "winning ticket (criterion movement, mask1 signed_constant)"
    assert imp_report.ticket_label(IMPConfig.paper("lenet_300_100").to_dict()) == "winning ticket (IMP, reset θ0)"
    assert "paper's protocol: 50,000" in imp_report.title(IMPConfig.paper("lenet_300_100").to_dict())
    assert figure.spread(3) == "error bars: min–max over 3 trials"
    assert "no error bars" in figure.spread(1)


@pytest.mark.skipif(figure.pyplot() is None, reason="matplotlib is not installed")
def test_pm_axis_ticks_every_level_with_plain_labels():
    plt = figure.pyplot()
    fig, ax = plt.subplots()
    pms = 100 * 0.8 ** np.arange(6)
    ax.plot(pms, pms)
    figure.pm_axis(ax, pms)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [f"{float(f'{p:.3g}'):g}" for p in sorted(pms)]
    assert ax.get_xlim()[0] > ax.get_xlim()[1]                         # 100 at the left
    plt.close(fig)
