"""Table and figure of a supermask experiment file: accuracy against the fraction of weights kept.

One row per run: the frozen weights, the run's variable (fraction kept, or DWR),
test accuracy (learned: mean [min–max] over the sampled masks, and with the
thresholded mask σ(m) > 0.5), the density, the early-stopping iteration.
"""
import os

from minilottery.lottery.supermask_experiment import summary
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
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for w in dict.fromkeys(r["weights"] for r in runs):
        pts = sorted((100 * r["density"], 100 * r["test_acc"]) for r in runs if r["weights"] == w)
        ax.plot(*zip(*pts), marker="o", label=w)
    ax.set_xscale("log")
    ax.set_xlabel("percent of weights kept")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


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
