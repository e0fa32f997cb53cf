"""The Lottery Jackpots experiment: every group stored, resumed without retraining (bitwise the same),
frozen pre-trained weights, the search's start at the magnitude-pruned network, edge-popup at the same
per-layer budgets, overlaps, the pre-trained network read from an IMP file, bad options refused."""
import json
import os

import numpy as np
import pytest

from minilottery.layout import fraction_name
from minilottery import backend, layout
from minilottery.__main__ import main as cli
from minilottery.data import Splits
from minilottery.errors import ConfigError, StoreError
from minilottery.experiments import jackpot as jx
from minilottery.experiments import jackpot_runs
from minilottery.lottery.edgepopup import EdgePopup
from minilottery.experiments.imp import IMPConfig
from minilottery.lottery.jackpot import Jackpot, layer_budgets, magnitude_masks
from minilottery.lottery.jackpot_compare import criterion_masks, search_cost
from minilottery.lottery.overlap import overlap
from minilottery.nn.models import build_model
from minilottery.rng import Streams
from minilottery.store import ExperimentStore
from minilottery.train import evaluate, train
from tests.helpers_data import all_arrays, tiny_mnist

SPARSITIES = (0.9, 0.5)


@pytest.fixture(autouse=True)
def numpy_backend():
    backend.set_backend("numpy")
    yield
    backend.set_backend("numpy")


@pytest.fixture(scope="module")
def data():
    return tiny_mnist(300, 100)


def tiny_config(**given):
    base = dict(pretrain_iterations=30, iterations=20, eval_every=5, batch_size=32, finetune_iterations=10,
                sparsities=SPARSITIES)
    return jx.JackpotConfig.paper("lenet_300_100", **{**base, **given})


def run(cfg, path, data):
    with ExperimentStore(path, cfg.to_dict()) as store:
        jx.JackpotExperiment(cfg, store, data, log=lambda *a: None).run()


class Calls:
    """A stand-in for train that counts calls, keeps the trained objects (and a jackpot's test loss and
    accuracy before its first step), and can stop at call ``stop``."""

    def __init__(self, stop=None):
        self.nets, self.stop, self.start = [], stop, []

    def __call__(self, net, data, *args, **kw):
        if self.stop is not None and len(self.nets) == self.stop:
            raise KeyboardInterrupt
        self.nets.append(net)
        if isinstance(net, Jackpot):
            self.start.append((evaluate(net, *data.test), net.masks()))
        return train(net, data, *args, **kw)


def test_runs_stores_every_group_and_resumes_bitwise_without_retraining(tmp_path, data, monkeypatch):
    cfg = tiny_config()
    whole = tmp_path / "whole.h5"
    run(cfg, whole, data)
    with ExperimentStore.open_readonly(whole) as store:
        assert store.done("pretrained")
        for s in SPARSITIES:
            for unit in tuple(jx.RUNS) + ("overlap",):
                assert store.done(f"sparsity/{fraction_name(s)}/{unit}"), (s, unit)
    assert ExperimentStore.read_config(whole)["kind"] == "jackpot"
    calls = Calls(stop=3)                                       # pretrain, jackpot, edge-popup of 0.90; stop
    monkeypatch.setattr(jackpot_runs, "train", calls)
    cut = tmp_path / "cut.h5"
    with pytest.raises(KeyboardInterrupt):
        run(cfg, cut, data)
    calls = Calls()
    monkeypatch.setattr(jackpot_runs, "train", calls)
    run(cfg, cut, data)                                         # resumes: fine-tuning of 0.90, then 0.50
    assert len(calls.nets) == 1 + 3
    first, second = all_arrays(whole), all_arrays(cut)
    assert first.keys() == second.keys()
    for k in first:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)
    calls = Calls()
    monkeypatch.setattr(jackpot_runs, "train", calls)
    run(cfg, cut, data)                                         # finished: nothing trains again
    assert calls.nets == []


def test_pretrained_weights_bitwise_unchanged_by_both_searches(tmp_path, data, monkeypatch):
    calls = Calls()
    monkeypatch.setattr(jackpot_runs, "train", calls)
    run(tiny_config(sparsities=(0.9,)), tmp_path / "x.h5", data)
    store = ExperimentStore.open_readonly(tmp_path / "x.h5")
    weights = store.read("pretrained")[0]["weights"]
    searches = [n for n in calls.nets if isinstance(n, (Jackpot, EdgePopup))]
    assert len(searches) == 2
    for net in searches:
        after = net.model.get_weights()
        assert after.keys() == weights.keys()
        for k in weights:                                        # biases too
            assert after[k].tobytes() == weights[k].tobytes(), (type(net).__name__, k)
    for unit in ("jackpot", "edgepopup"):
        assert store.attrs(f"sparsity/0.90/{unit}")["weights_unchanged"]


def test_search_starts_at_the_magnitude_pruned_network_and_edgepopup_keeps_its_counts(tmp_path, data,
                                                                                      monkeypatch):
    cfg = tiny_config()
    calls = Calls()
    monkeypatch.setattr(jackpot_runs, "train", calls)
    run(cfg, tmp_path / "x.h5", data)
    assert len(calls.start) == len(SPARSITIES)
    store = ExperimentStore.open_readonly(tmp_path / "x.h5")
    weights = store.read("pretrained")[0]["weights"]
    for s in SPARSITIES:
        g = f"sparsity/{fraction_name(s)}"
        model = build_model("lenet_300_100", Streams.from_seed(7))
        model.set_weights(weights)
        budgets = layer_budgets(weights, s, kinds=model.weight_kinds())
        net = Jackpot(model, budgets)                            # untrained: the search's step 0
        mag_arrays, mag = store.read(f"{g}/magnitude")
        assert evaluate(net, *data.test) == (mag["test_loss"], mag["test_acc"])
        assert evaluate(net, *data.val) == (mag["val_loss"], mag["val_acc"])
        (loss_acc, start), = [c for c in calls.start if c[1].keys() == budgets.pruned.keys()
                              and all((c[1][k] == 0).sum() == p for k, p in budgets.pruned.items())]
        assert loss_acc == (mag["test_loss"], mag["test_acc"])   # the experiment's search, before its first step
        for masks in (start, net.masks()):
            per_layer, overall = overlap(masks, mag_arrays["masks"])   # jackpot vs magnitude at iteration 0
            assert overall == 1.0 and set(per_layer.values()) == {1.0}
        jack, ep = store.read(f"{g}/jackpot")[0], store.read(f"{g}/edgepopup")[0]
        assert set(jack["masks"]) == set(ep["masks"]) == {"fc1.W", "fc2.W"}     # the classifier stays dense
        for k, n_pruned in budgets.pruned.items():
            for masks in (jack["masks"], jack["final_masks"], ep["masks"], mag_arrays["masks"]):
                assert masks[k].dtype == bool and int((~masks[k]).sum()) == n_pruned, k


def test_overlaps_lie_in_the_unit_interval_at_equal_budgets(tmp_path, data):
    run(tiny_config(sparsities=(0.9,)), tmp_path / "x.h5", data)
    store = ExperimentStore.open_readonly(tmp_path / "x.h5")
    a = store.attrs("sparsity/0.90/overlap")
    per_layer = json.loads(a["per_layer"])
    for name in ("magnitude", "random", "large_init", "movement", "edgepopup"):
        assert 0.0 <= a[name] <= 1.0
        assert all(0.0 <= v <= 1.0 for v in per_layer[name].values())
    jack = store.read("sparsity/0.90/jackpot")[0]["masks"]
    for name in ("magnitude", "edgepopup"):                       # the columns compare the stored masks
        found = overlap(jack, store.read(f"sparsity/0.90/{name}")[0]["masks"])
        assert found == (per_layer[name], a[name])
    arrays = store.read("pretrained")[0]
    budgets = layer_budgets(arrays["weights"], 0.9, kinds=build_model("lenet_300_100", Streams.from_seed(0))
                            .weight_kinds())
    for c in ("random", "large_init", "movement", "large_final"):
        masks = criterion_masks(c, arrays["theta0"], arrays["weights"], budgets, np.random.default_rng(0))
        assert {k: int((m == 0).sum()) for k, m in masks.items()} == budgets.pruned
    big = criterion_masks("large_final", arrays["theta0"], arrays["weights"], budgets, np.random.default_rng(0))
    assert overlap(big, magnitude_masks(arrays["weights"], budgets))[1] == 1.0   # magnitude = large_final


def test_search_cost_counts_the_magnitude_start_as_iteration_zero():
    ep = {"iteration": np.array([10, 20, 30]), "test_acc": np.array([0.5, 0.7, 0.8])}
    jack = {"iteration": np.array([10, 20, 30]), "test_acc": np.array([0.6, 0.81, 0.9])}
    assert search_cost(jack, 0.4, ep) == (20, 20 / 30)
    assert search_cost(jack, 0.85, ep) == (0, 0.0)
    t, ratio = search_cost({"iteration": np.array([10]), "test_acc": np.array([0.1])}, 0.1, ep)
    assert t is None and np.isnan(ratio)


def test_paper_defaults_and_flag_routing():
    cfg = jx.JackpotConfig.paper("lenet_300_100")
    assert (cfg.search.iterations, cfg.search.eval_every, cfg.search.batch_size) == (6446, 215, 256)
    assert (cfg.search.optimizer, cfg.search.lr, cfg.search.weight_decay, cfg.search.schedule) == \
        ("momentum", 0.1, 5e-4, "cosine")
    assert (cfg.pretrain.iterations, cfg.pretrain.optimizer, cfg.pretrain.lr) == (50_000, "adam", 1.2e-3)
    assert cfg.finetune.iterations == cfg.search.iterations and cfg.finetune.lr == 1.2e-3
    assert cfg.sparsities == (0.9, 0.95, 0.98) and not cfg.include_classifier and cfg.pretrained is None
    from minilottery.commands import build_parser
    from minilottery.commands.jackpot import config_from_args
    args = build_parser().parse_args(["jackpot", "--lr", "0.2", "--iterations", "100", "--pretrain-iterations",
                                      "7", "--sparsity", "0.8", "--model", "conv2", "--dataset", "mnist"])
    cfg = config_from_args(args)
    assert (cfg.search.lr, cfg.search.iterations, cfg.pretrain.lr, cfg.pretrain.iterations) == (0.2, 100, 2e-4, 7)
    assert cfg.finetune.iterations == 100 and cfg.sparsities == (0.8,) and cfg.model == "conv2"


def fake_imp(path, model="lenet_300_100", dense=True):
    """An IMP experiment file holding trial 0's θ0 and (optionally) its dense run, written by hand."""
    cfg = IMPConfig.paper(model, dataset="mnist", iterations=10)
    theta0 = build_model(model, Streams.from_seed(3)).get_weights()
    trained = build_model(model, Streams.from_seed(4)).get_weights()
    with ExperimentStore(path, cfg.to_dict()) as store:
        store.write(layout.run(0, name="theta0"), theta0)
        if dense:
            store.write(layout.run(0, 0, "ticket"), {"weights": trained}, {"final_test_acc": 0.5})
    return theta0, trained


def test_pretrained_network_read_from_an_imp_file(tmp_path, data, monkeypatch):
    theta0, trained = fake_imp(tmp_path / "imp.h5")
    calls = Calls()
    monkeypatch.setattr(jackpot_runs, "train", calls)
    cfg = tiny_config(pretrained=str(tmp_path / "imp.h5"), pretrain_iterations=None, sparsities=(0.9,))
    run(cfg, tmp_path / "j.h5", data)
    assert len(calls.nets) == 3                                  # no pre-training: the searches and fine-tuning
    arrays, attrs = ExperimentStore.open_readonly(tmp_path / "j.h5").read("pretrained")
    for k in theta0:
        np.testing.assert_array_equal(arrays["theta0"][k], theta0[k])
        np.testing.assert_array_equal(arrays["weights"][k], trained[k])
    assert attrs["source"] == str(tmp_path / "imp.h5") and 0.0 <= attrs["test_acc"] <= 1.0


@pytest.mark.parametrize("given, error, fragment", [
    (dict(sparsities=(1.0,)), ConfigError, "--sparsity values must be in (0, 1)"),
    (dict(sparsities=(0.0, 0.5)), ConfigError, "--sparsity values must be in (0, 1)"),
    (dict(sparsities=(0.9, 0.9)), ConfigError, "repeat"),
    (dict(pretrained="missing.h5"), StoreError, "does not exist"),
])
def test_bad_options_are_refused(given, error, fragment, tmp_path):
    if "pretrained" in given:
        given = {"pretrained": str(tmp_path / given["pretrained"])}
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        jx.JackpotConfig.paper("lenet_300_100", **given)
    with pytest.raises(ConfigError, match="unknown model"):
        jx.JackpotConfig.paper("resnet")


def _one_line(capsys, fragment):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_cli_refuses_bad_options_in_one_line_before_any_file(tmp_path, capsys):
    fake_imp(tmp_path / "imp_conv2.h5", model="conv2")
    fake_imp(tmp_path / "imp_nodense.h5", dense=False)
    (tmp_path / "text.h5").write_text("not hdf5")
    with ExperimentStore(tmp_path / "sm.h5", {"kind": "supermask", "model": "lenet_300_100"}):
        pass
    before = sorted(os.listdir(tmp_path))
    out = ["--out", str(tmp_path / "j.h5"), "--quiet", "--data-dir", str(tmp_path / "data")]
    cases = [(["--sparsity", "1.0"], "--sparsity values must be in (0, 1)"),
             (["--sparsity", "0"], "--sparsity values must be in (0, 1)"),
             (["--pretrained", str(tmp_path / "nope.h5")], "does not exist"),
             (["--pretrained", str(tmp_path / "text.h5")], "not a readable HDF5 experiment file"),
             (["--pretrained", str(tmp_path / "sm.h5")], "not an IMP experiment"),
             (["--pretrained", str(tmp_path / "imp_conv2.h5")], "trained conv2 on mnist"),
             (["--pretrained", str(tmp_path / "imp_nodense.h5")], "no finished dense run"),
             (["--pretrained", str(tmp_path / "imp_conv2.h5"), "--pretrain-iterations", "5"], "no effect")]
    for argv, fragment in cases:
        assert cli(["jackpot"] + argv + out) == 2, argv
        _one_line(capsys, fragment)
    with pytest.raises(SystemExit) as e:
        cli(["jackpot", "--model", "resnet"] + out)
    assert e.value.code == 2
    _one_line(capsys, "invalid choice: 'resnet'")
    assert sorted(os.listdir(tmp_path)) == before                 # nothing made


@pytest.mark.slow
def test_cli_end_to_end_with_json(tmp_path, mirror, capsys):
    js, out = tmp_path / "j.json", tmp_path / "j.h5"
    argv = ["jackpot", "--sparsity", "0.9", "--pretrain-iterations", "60", "--iterations", "20", "--eval-every",
            "10", "--finetune-iterations", "20", "--out", str(out), "--json", str(js), "--mirror", mirror,
            "--data-dir", str(tmp_path / "data"), "--quiet", "--workers", "2"]
    assert cli(argv) == 0
    text = capsys.readouterr().out
    assert "| 90.00 / " in text and "vs magnitude" in text
    assert "sparsity/0.90/jackpot: test" in text and "sparsity/0.90/magnitude: test" in text
    rows = json.loads(js.read_text())["sparsities"]
    assert [r["group"] for r in rows] == ["0.90"]
    r = rows[0]
    for unit in ("magnitude", "jackpot", "edgepopup", "finetune"):
        assert 0.0 <= r[unit]["test_acc" if unit == "magnitude" else "early_stop_test_acc"] <= 1.0
    assert r["jackpot"]["iterations"] == r["edgepopup"]["iterations"] == r["finetune"]["iterations"] == 20
    assert 0.0 <= r["overlap"]["magnitude"] <= 1.0 and 0.0 < r["dense_test_acc"] <= 1.0
    assert set(r["search_cost"]) == {"iteration", "ratio", "edgepopup_final_test_acc", "edgepopup_iterations"}
    assert cli(argv) == 0                                         # finished: reruns only the report
    text = capsys.readouterr().out
    assert "| 90.00 / " in text and ": test" not in text


def test_stored_scores_are_the_validation_selected_ones(tmp_path, data):
    x, y = data.val                                   # noisy validation labels: its minimum comes before the end
    data = Splits(train=data.train, val=(x, np.random.default_rng(1).permutation(y)), test=data.test)
    run(tiny_config(sparsities=(0.9,), iterations=40), tmp_path / "x.h5", data)
    store = ExperimentStore.open_readonly(tmp_path / "x.h5")
    weights = store.read("pretrained")[0]["weights"]
    model = build_model("lenet_300_100", Streams.from_seed(0))
    budgets = layer_budgets(weights, 0.9, kinds=model.weight_kinds())
    for unit in ("jackpot", "edgepopup"):
        arrays, attrs = store.read(f"sparsity/0.90/{unit}")
        model.set_weights(weights)
        if unit == "jackpot":
            net = Jackpot(model, budgets)
            net.set_weights({**arrays["scores"], **{k + ".mask": m for k, m in arrays["masks"].items()}})
        else:
            net = EdgePopup(model, None, np.random.default_rng(0), pruned=budgets.pruned)
            net.set_weights(arrays["scores"])
        curves = arrays["curves"]
        at = int(np.flatnonzero(curves["iteration"] == attrs["early_stop_iteration"])[0])
        assert at == int(np.argmin(curves["val_loss"])) < len(curves["iteration"]) - 1
        assert evaluate(net, *data.test) == (curves["test_loss"][at], curves["test_acc"][at]), unit


def test_edgepopup_per_layer_counts_option():
    model = build_model("lenet_300_100", Streams.from_seed(0))
    net = EdgePopup(model, None, np.random.default_rng(0), pruned={"fc1.W": 5, "fc2.W": 0})
    assert set(net.scores) == {"fc1.W", "fc2.W"} and net.k is None       # fc3 has no scores: dense
    net.forward(np.zeros((2, 1, 28, 28), np.float32))
    assert int((net.masks_now["fc1.W"] == 0).sum()) == 5 and not (net.masks_now["fc2.W"] == 0).any()
    assert model.prunable()["fc3"].mask is None
    for k, pruned, fragment in ((0.5, {"fc1.W": 1}, "either k or"), (None, {"fc9.W": 1}, "no prunable weight"),
                                (None, {"fc3.W": 1000}, "keeps no weight")):
        with pytest.raises(ConfigError, match=fragment):
            EdgePopup(model, k, np.random.default_rng(0), pruned=pruned)
