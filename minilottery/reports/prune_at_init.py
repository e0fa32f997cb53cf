"""Table and figure of a pruning-at-initialisation experiment file.

One row per method and ablation, one column per sparsity: the final test accuracy
(Frankle et al. 2021 report the accuracy at the end of training), mean [min–max] over
trials. The figure draws accuracy against the percent of weights kept (log scale), one
colour per method, one line style per sanity check.
"""


from minilottery.experiments.prune_at_init import group, summary
from minilottery.reports import figure, markdown, table_and_figure
from minilottery.reports.imp import cell

STYLES = {"none": "-", "shuffle": "--", "reinit": ":", "invert": "-."}


def rows(store, curves=False):
    """Every finished run's row (its summary, densities, test_acc), with its training curves on request."""
    out = summary(store)
    if curves:
        for r in out:
            r["curves"] = store.read(group(r["trial"], "runs", r["run"]))[0]["curves"]
    return out


def collect(runs):
    """{(method, ablation): {sparsity: [test_acc per trial]}} in the order the runs come."""
    out = {}
    for r in runs:
        out.setdefault((r["method"], r["ablation"]), {}).setdefault(r["sparsity"], []).append(r["test_acc"])
    return out


def format_table(runs):
    data = collect(runs)
    sparsities = sorted({s for v in data.values() for s in v})
    head = ["method", "sanity check"] + [f"test acc % at {100 * (1 - s):.3g}% kept" for s in sparsities]
    body = []
    for (method, ablation), by_s in data.items():
        body.append([method, ablation] + [cell(by_s.get(s, []), 100, "{:.2f}") for s in sparsities])
    return markdown(head, body)


def plot(runs, png, title, trials=1):
    plt = figure.pyplot()
    if plt is None:
        return None
    data = collect(runs)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {}
    for (method, ablation), by_s in data.items():
        colour = colours.setdefault(method, f"C{len(colours)}")
        kept = sorted(by_s, reverse=True)                            # x: percent kept, ascending
        figure.errorbar(ax, [100 * (1 - s) for s in kept], [by_s[s] for s in kept], 100, color=colour,
                        linestyle=STYLES.get(ablation, "-"),
                        label=f"{method}" + ("" if ablation == "none" else f", {ablation}"))
    kept = [100 * (1 - r["sparsity"]) for r in runs]
    if max(kept) > 3 * min(kept):
        figure.log_x(ax, [round(k, 2) for k in kept])
        ax.invert_xaxis()
    figure.label(ax, "percent of weights kept", "final test accuracy (%)", title)
    ax.legend(fontsize=7, ncol=2, title=figure.spread(trials), title_fontsize=7)
    return figure.save(fig, png)


def header(cfg):
    t = cfg["train"]
    return (f"pruning at initialisation, {cfg['model']} on {cfg['dataset']}: global top-k of each score at θ0, "
            f"then {t['iterations']} iterations of {t['optimizer']} lr {t['lr']}, batch {t['batch_size']}; "
            f"{cfg['trials']} trial(s)")


def report(path, png=None, make_plot=True, log=print, curves=None):
    return table_and_figure(path, summary, header, format_table, plot, "pruning at initialisation", png,
                            make_plot, log)
