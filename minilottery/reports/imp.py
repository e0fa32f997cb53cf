"""Table and plot of an IMP experiment file (``python -m minilottery report FILE``).

One row per Pm (percent of weights remaining): the early-stopping iteration
and the test accuracy there, as mean [min–max] over trials, for the winning
tickets and for each control. Controls with K > 1 runs per trial are averaged
within the trial first. The plot follows the Lottery Ticket paper's Figure 4:
log-scaled Pm on the x axis, falling from 100 to the left, error bars min–max.
"""
import os

import numpy as np

from minilottery import layout
from minilottery.reports import figure
from minilottery.store import ExperimentStore

LABELS = {"ticket": "winning ticket", "reinit": "random reinit", "random": "random pruning"}


def collect(path, variant=None, store=None):
    """{kind: {level: {"Pm": p, "es": [per trial], "acc": [...], "final": [...], "train": [...]}}}.

    ``variant``: one IMP variant of a store that holds several (its levels, and the shared dense run).
    """
    store = store or ExperimentStore.open_readonly(path)
    out = {}
    for trial in store.groups(layout.TRIALS):
        t = int(trial)
        found = [int(v) for v in store.groups(layout.levels(t))]
        if variant:
            found = [v for v in found if v == 0] + [int(v) for v in store.groups(layout.levels(t, variant))]
        for level in sorted(set(found)):
            per_kind = {}
            for run in store.groups(layout.run(t, level, variant=variant)):
                g = layout.run(t, level, run, variant)
                a = {} if run == "mask" else store.attrs(g)
                if not a.get("completed", False):
                    continue
                kind = str(a["kind"])
                per_kind.setdefault(kind, []).append(a)
            for kind, runs in per_kind.items():
                row = out.setdefault(kind, {}).setdefault(int(level), {"Pm": float(runs[0]["Pm"]),
                                                                      "es": [], "acc": [], "final": [], "train": []})
                row["es"].append(np.mean([r["early_stop_iteration"] for r in runs]))
                row["acc"].append(np.mean([r["early_stop_test_acc"] for r in runs]))
                row["final"].append(np.mean([r["final_test_acc"] for r in runs]))
                row["train"].append(np.mean([r["final_train_acc"] for r in runs]))
    for kind in ("reinit", "random"):   # the dense network is level 0 of every kind's curve
        if kind in out and 0 in out.get("ticket", {}):
            out[kind].setdefault(0, out["ticket"][0])
    return out


def cell(values, scale=1.0, fmt="{:.0f}"):
    if not values:
        return "–"
    v = np.asarray(values) * scale
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(v.mean())} [{fmt.format(v.min())}–{fmt.format(v.max())}]"


def format_table(data, labels=LABELS):
    """Markdown table, one row per Pm, columns per key of ``labels`` (early-stop iteration, test accuracy %)."""
    kinds = [k for k in labels if k in data]
    levels = sorted({lv for k in kinds for lv in data[k]})
    head = ["level", "Pm %"]
    for k in kinds:
        head += [f"{labels[k]}: early-stop iter", f"{labels[k]}: test acc % at early stop"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lv in levels:
        pm = next(data[k][lv]["Pm"] for k in kinds if lv in data[k])
        cells = [str(lv), f"{100 * pm:.1f}"]
        for k in kinds:
            r = data[k].get(lv, {"es": [], "acc": []})
            cells += [cell(r["es"]), cell(r["acc"], 100, "{:.2f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(data, png, title="", labels=LABELS):
    """Figure-4-style PNG, one curve per key of ``labels`` found in ``data``; None without matplotlib."""
    plt = figure.pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    lowest = min(r["Pm"] for kind in data.values() for r in kind.values())
    for kind in [k for k in labels if k in data]:
        rows = [data[kind][lv] for lv in sorted(data[kind])]
        pm = np.array([100 * r["Pm"] for r in rows])
        for ax, key, scale in ((axes[0], "es", 1), (axes[1], "acc", 100)):
            v = [np.asarray(r[key]) * scale for r in rows]
            mean = np.array([x.mean() for x in v])
            err = np.array([[m - x.min() for m, x in zip(mean, v)], [x.max() - m for m, x in zip(mean, v)]])
            ax.errorbar(pm, mean, yerr=err, marker="o", ms=3, capsize=2, label=labels[kind])
    for ax, ylabel in zip(axes, ("early-stop iteration", "test accuracy at early stop (%)")):
        figure.log_x(ax, [t for t in (100, 51.3, 21.1, 7.0, 3.6, 1.9, 1.0) if t >= 100 * lowest - 1e-9])
        ax.invert_xaxis()
        figure.label(ax, "percent of weights remaining (Pm)", ylabel)
    fig.suptitle(title)
    return figure.save(fig, png)


def report(path, png=None, make_plot=True, log=print):
    cfg = ExperimentStore.read_config(path)
    data = collect(path)
    if not data:
        log(f"{path} has no finished runs yet")
        return None
    table = format_table(data)
    log(f"{cfg['model']} on {cfg['dataset']}: {cfg['train']['iterations']} iterations per run, "
        f"{cfg['trials']} trial(s), {'one-shot' if cfg['oneshot'] else 'iterative'} pruning, "
        f"reset to {'θ%d' % cfg['rewind_iteration'] if cfg['rewind_iteration'] else 'θ0'}; "
        f"criterion {cfg.get('criterion', 'large_final')}, mask-1 {cfg.get('mask1', 'rewind')}, "
        f"mask-0 {cfg.get('mask0', 'zero')}")
    log(table)
    if make_plot:
        png = png or os.path.splitext(path)[0] + ".png"
        if plot(data, png, title=f"{cfg['model']} / {cfg['dataset']}"):
            log(f"plot: {png}")
        else:
            log("plot skipped: matplotlib is not installed (pip install 'minilottery[plot]')")
    return table

