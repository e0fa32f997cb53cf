"""Table, figures and rows of a supermask experiment file: accuracy against the fraction of weights kept.

One row per run: the frozen weights, the run's variable (fraction kept, or DWR),
test accuracy (learned: mean [min–max] over the sampled masks, and with the
thresholded mask σ(m) > 0.5), the density, the early-stopping iteration, and for
trained scores the final test and train accuracy. The figure draws test accuracy
against the percent of weights kept, one series per weights (and DWR) choice,
error bars min–max over the sampled masks where the table has that range; with
``curves`` a second figure draws each trained run's test accuracy against iteration.
"""
import os

import numpy as np

from minilottery import layout
from minilottery.experiments.supermask import PAPER_TRAIN, SupermaskExperiment
from minilottery.protocol import paper_protocol
from minilottery.reports import figure, markdown
from minilottery.reports.export import plain
from minilottery.store import ExperimentStore


def _pct(r, key):
    return f"{100 * r[key]:.2f}" if key in r else "–"


def format_table(runs, method):
    trained = method != "at_init"
    head = ["weights", "kept (target)" if method != "learned" else "DWR", "test acc %",
            "threshold test acc %" if method == "learned" else "", "density %", "early-stop iter",
            "final test acc %" if trained else "", "final train acc %" if trained else ""]
    head = [h for h in head if h]
    body = []
    for r in runs:
        acc = f"{100 * r['test_acc']:.2f}"
        if "test_acc_min" in r:
            acc += f" [{100 * r['test_acc_min']:.2f}–{100 * r['test_acc_max']:.2f}]"
        cells = [r["weights"], "on" if r.get("dwr") else "off" if method == "learned" else f"{100 * r['keep']:.0f}%",
                 acc]
        if method == "learned":
            cells.append(f"{100 * r['threshold_test_acc']:.2f}")
        cells += [f"{100 * r['density']:.1f}", str(int(r["early_stop_iteration"])) if "early_stop_iteration" in r
                  else "– (no training)"]
        if trained:
            cells += [_pct(r, "final_test_acc"), _pct(r, "final_train_acc")]
        body.append(cells)
    return markdown(head, body)


def series(r):
    """A run's legend entry: its weights, and for learned masks whether DWR was on."""
    return r["weights"] + ({True: ", DWR", False: ", no DWR"}[bool(r["dwr"])] if "dwr" in r else "")


def title(cfg):
    method, t = cfg["method"], cfg["train"]
    what = {"at_init": "supermask at initialisation (no training; mask from a dense run)",
            "learned": "learned supermask (Bernoulli σ(m))", "edgepopup": "edge-popup (top-k scores)"}[method]
    paper = PAPER_TRAIN[method].iterations if method in PAPER_TRAIN else paper_protocol(cfg["model"]).train.iterations
    length = figure.protocol(t["iterations"], paper, what="iterations of the dense run" if method == "at_init"
                             else "iterations")
    return (f"{what}, {cfg['model']} on {cfg['dataset']}\n{length}"
            + ("" if method == "at_init" else f", {t['optimizer']} lr {t['lr']:g}") + f", seed {cfg['seed']}")


def plot(runs, png, title, samples=None):
    plt = figure.pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    thresholded = False
    for name in dict.fromkeys(series(r) for r in runs):
        rs = sorted((r for r in runs if series(r) == name), key=lambda r: r["density"])
        x = [100 * r["density"] for r in rs]
        ranged = [[r["test_acc_min"], r["test_acc"], r["test_acc_max"]] if "test_acc_min" in r else [r["test_acc"]]
                  for r in rs]
        line = figure.errorbar(ax, x, ranged, 100, linestyle="-" if len(rs) > 1 else "none", label=name)
        mean = [100 * r["test_acc"] for r in rs]
        line[0].set_ydata(mean)                                  # the mean over the samples, not of min/mean/max
        if "threshold_test_acc" in rs[0]:
            ax.plot(x, [100 * r["threshold_test_acc"] for r in rs], marker="x", ls="none", color=line[0].get_color(),
                    label=None if thresholded else "×: the thresholded mask σ(m) > 0.5")
            thresholded = True
    xs = [100 * r["density"] for r in runs]
    if max(xs) > 3 * min(xs):
        figure.log_x(ax, [float(f"{x:.2g}") for x in xs])
    note = (f"error bars: min–max over {samples} sampled masks" if samples
            else "one mask per point (no sampling, no error bars)")
    figure.label(ax, "percent of weights kept (%)", "test accuracy (%)", legend=False)
    ax.legend(title=note, fontsize=8, title_fontsize=8)
    fig.suptitle(title, fontsize=10)
    return figure.save(fig, png)


def plot_curves(store, runs, png, title):
    """Test accuracy against iteration of every trained run; None without matplotlib or curves."""
    plt = figure.pyplot()
    trained = [r for r in runs if "early_stop_iteration" in r]
    if plt is None or not trained:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for r in trained:
        c = store.read(layout.supermask_group(r["group"]))[0]["curves"]
        ax.plot(c["iteration"], 100 * np.asarray(c["test_acc"]), lw=1.2,
                label=series(r) + ("" if "dwr" in r else f", k {100 * r['keep']:.0f}%"))
    figure.label(ax, "training iteration", "test accuracy (%)")
    fig.suptitle(title, fontsize=10)
    return figure.save(fig, png)


def rows(store, curves=False):
    """``SupermaskExperiment.summary`` (every finished run's attrs and group name), per-layer densities as
    a dict; with ``curves``, a trained run's curves under "curves"."""
    out = plain(SupermaskExperiment.summary(store))
    for r in out if curves else ():
        if "early_stop_iteration" in r:
            r["curves"] = store.read(layout.supermask_group(r["group"]))[0]["curves"]
    return out


def report(path, png=None, make_plot=True, log=print, curves=None):
    cfg = ExperimentStore.read_config(path)
    store = ExperimentStore.open_readonly(path)
    runs = rows(store)
    if not runs:
        log(f"{path} has no finished runs yet")
        return None
    t = cfg["train"]
    log(f"{cfg['method']} supermask, {cfg['model']} on {cfg['dataset']}"
        + ("" if cfg["method"] == "at_init" else f": {t['iterations']} iterations, {t['optimizer']} lr {t['lr']}, "
           f"batch {t['batch_size']}"))
    table = format_table(runs, cfg["method"])
    log(table)
    if make_plot:
        samples = cfg["eval_samples"] if cfg["method"] == "learned" else None
        png = figure.draw(lambda png: plot(runs, png, title(cfg), samples), path, png, log)
        cpng = png and os.path.splitext(png)[0] + "_curves.png"
        if png and curves is not None and plot_curves(store, runs, cpng, title(cfg)):
            log(f"plot: {cpng}")
    return table
