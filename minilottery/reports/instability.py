"""Table and figure of an instability-analysis file (Frankle et al. 2020).

One row per level and rewind iteration k: Pm, the endpoints' test error, the highest
error on the path, and the instability (max − mean of the endpoints, in percentage
points), test and training; "stable" below 2 points. Means over trials.
The figure: the test error along α for every (level, k), and instability against k.
"""

import numpy as np

from minilottery.experiments.instability import group, summary
from minilottery.lottery.interpolation import STABLE
from minilottery.reports import figure, markdown, table_and_figure


def rows(store, curves=False):
    """One row per (trial, level, k): the error curves along the path and the instability
    (``curves``: the two copies' training curves as well)."""
    out = summary(store)
    if curves:
        for r in out:
            r["curves"] = {f"copy_{c}": store.read(group(r["trial"], f"copy_{c}", r["level"],
                                                         r["rewind_iteration"]))[0]["curves"] for c in (0, 1)}
    return out


def collect(paths):
    """{(level, k): [paths of that level and k, one per trial]}, sorted."""
    out = {}
    for r in paths:
        out.setdefault((r["level"], r["rewind_iteration"]), []).append(r)
    return dict(sorted(out.items()))


def format_table(paths):
    head = ["level", "Pm %", "k", "test error % (copy 1 / copy 2)", "max test error % on path",
            "instability (test), points", "instability (train), points", "stable (< 2 points)"]
    body = []
    for (level, k), rs in collect(paths).items():
        ends = np.mean([r["endpoint_test_errors"] for r in rs], axis=0)
        inst = np.mean([r["instability"] for r in rs])
        train = [r["train_instability"] for r in rs if "train_instability" in r]
        cells = [str(level), f"{100 * rs[0]['Pm']:.1f}", str(k), f"{100 * ends[0]:.2f} / {100 * ends[1]:.2f}",
                 f"{100 * np.mean([max(r['test_error']) for r in rs]):.2f}", f"{100 * inst:.2f}",
                 f"{100 * np.mean(train):.2f}" if train else "–", "yes" if inst < STABLE else "no"]
        body.append(cells)
    return markdown(head, body)


def plot(paths, png, title, trials=1):
    plt = figure.pyplot()
    if plt is None:
        return None
    data = collect(paths)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (level, k), rs in data.items():
        err = 100 * np.mean([r["test_error"] for r in rs], axis=0)
        axes[0].plot(rs[0]["alpha"], err, label=f"level {level} (Pm {100 * rs[0]['Pm']:.1f}%), k = {k}")
    figure.label(axes[0], "interpolation α", "test error (%)")
    axes[0].legend(fontsize=7, title=f"mean over {trials} trials" if trials > 1 else None, title_fontsize=7)
    for level in sorted({lv for lv, _ in data}):
        ks = sorted(k for lv, k in data if lv == level)
        figure.errorbar(axes[1], ks, [[r["instability"] for r in data[level, k]] for k in ks], 100,
                        label=f"level {level} (Pm {100 * data[level, ks[0]][0]['Pm']:.1f}%)")
    axes[1].axhline(100 * STABLE, color="grey", linestyle="--", linewidth=1, label="2 points")
    ks = [k for _, k in data]
    if min(ks) == 0 and max(ks) > 0:
        axes[1].set_xscale("symlog", linthresh=max(1, min(k for k in ks if k > 0)))
    axes[1].set_xticks(sorted(set(ks)), [str(k) for k in sorted(set(ks))])          # a tick at every k
    axes[1].minorticks_off()
    figure.label(axes[1], "rewind iteration k", "instability (points of test error)", legend=False)
    axes[1].legend(fontsize=8, title=figure.spread(trials), title_fontsize=8)
    fig.suptitle(title)
    return figure.save(fig, png)


def header(cfg):
    t = cfg["train"]
    return (f"instability, {cfg['model']} on {cfg['dataset']}: copies trained to iteration {t['iterations']} "
            f"({t['optimizer']} lr {t['lr']}, batch {t['batch_size']}) with data-order seeds {cfg['order_seeds']}; "
            f"{cfg['points']} points on the path; {cfg['trials']} trial(s)"
            + (f"; masks from {cfg['imp']}" if cfg.get("imp") else ""))


def report(path, png=None, make_plot=True, log=print, curves=None):
    return table_and_figure(path, summary, header, format_table, plot, "instability", png, make_plot, log)
