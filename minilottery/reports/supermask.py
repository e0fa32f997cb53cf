"""Table and figure of a supermask experiment file: accuracy against the fraction of weights kept.

One row per run: the frozen weights, the run's variable (fraction kept, or DWR),
test accuracy (learned: mean [min–max] over the sampled masks, and with the
thresholded mask σ(m) > 0.5), the density, the early-stopping iteration.
"""
import os

from minilottery.lottery.supermask_experiment import summary
from minilottery.reports import figure
from minilottery.store import ExperimentStore


def format_table(runs, method):
    head = ["weights", "kept (target)" if method != "learned" else "DWR", "test acc %",
            "threshold test acc %" if method == "learned" else "", "density %", "early-stop iter"]
    head = [h for h in head if h]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
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
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(runs, png, title):
    plt = figure.pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    name = lambda r: r["weights"] + ({True: ", DWR", False: ", no DWR"}[bool(r["dwr"])] if "dwr" in r else "")  # noqa: E731
    for series in dict.fromkeys(name(r) for r in runs):
        pts = sorted((100 * r["density"], 100 * r["test_acc"]) for r in runs if name(r) == series)
        ax.plot(*zip(*pts), marker="o", linestyle="-" if len(pts) > 1 else "none", label=series)
    xs = [100 * r["density"] for r in runs]
    if max(xs) > 3 * min(xs):
        figure.log_x(ax, [round(x, 1) for x in xs])
    figure.label(ax, "percent of weights kept", "test accuracy (%)", title)
    return figure.save(fig, png)


def report(path, png=None, make_plot=True, log=print):
    cfg = ExperimentStore.read_config(path)
    runs = summary(ExperimentStore.open_readonly(path))
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
        png = png or os.path.splitext(path)[0] + ".png"
        if plot(runs, png, f"{cfg['method']} supermask, {cfg['model']} / {cfg['dataset']}"):
            log(f"plot: {png}")
    return table
