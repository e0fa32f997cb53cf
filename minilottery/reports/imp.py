"""Table, figures and rows of an IMP experiment file (``python -m minilottery report FILE``).

One row per Pm (percent of weights remaining): the early-stopping iteration
and the test accuracy there, as mean [min–max] over trials, for the winning
tickets and for each control. Controls with K > 1 runs per trial are averaged
within the trial first. The figure follows the Lottery Ticket paper's Figure 4:
log-scaled Pm on the x axis (a tick at every level), falling from 100 to the
left, error bars min–max over trials, the dense network as a dashed line. With
``curves=LEVELS`` a second figure follows its Figure 3: test accuracy against
training iteration for the tickets of the chosen levels (mean over trials, the
band min–max). :func:`runs` gives every run as one flat row (CSV / JSON).
"""
import os

import numpy as np

from minilottery import layout
from minilottery.experiments.imp import IMPExperiment
from minilottery.protocol import paper_protocol
from minilottery.reports import figure, markdown
from minilottery.store import ExperimentStore

LABELS = {"ticket": "winning ticket", "reinit": "random reinit", "random": "random pruning"}
SUMMARY = ("early_stop_iteration", "early_stop_test_acc", "early_stop_val_acc", "final_test_acc", "final_train_acc")
LTH = {"criterion": "large_final", "mask1": "rewind", "mask0": "zero"}
FIGURE3_PM = (1.0, 0.513, 0.211, 0.07, 0.036, 0.019)     # the Pm the paper's Figure 3 shows


def runs(store, variant=None):
    """[one flat dict per finished run] (``IMPExperiment.summary``): trial, level, Pm, run (group name), kind,
    the run's summary, group.

    ``variant``: one IMP variant of a store that holds several (its levels, and the shared dense run).
    """
    return [{"trial": r["trial"], "level": r["level"], "Pm": float(r["Pm"]), "run": r["run"], "kind": str(r["kind"]),
             **{k: r[k] for k in SUMMARY}, "group": layout.run(r["trial"], r["level"], r["run"], variant)}
            for r in IMPExperiment.summary(store, variant)]


def rows(store, curves=False, variant=None):
    """:func:`runs`, each with its training curves under "curves" when asked (reports.export)."""
    out = runs(store, variant)
    for r in out if curves else ():
        r["curves"] = store.read(r["group"])[0]["curves"]
    return out


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def collect(path, variant=None, store=None):
    """{kind: {level: {"Pm": p, "es": [per trial], "acc": [...], "final": [...], "train": [...]}}}."""
    store = store or ExperimentStore.open_readonly(path)
    per = {}
    for r in runs(store, variant):
        per.setdefault((r["kind"], r["level"], r["trial"]), []).append(r)
    out = {}
    for (kind, level, _), rs in sorted(per.items()):
        row = out.setdefault(kind, {}).setdefault(level, {"Pm": rs[0]["Pm"], "es": [], "acc": [], "final": [],
                                                          "train": []})
        for key, name in (("es", "early_stop_iteration"), ("acc", "early_stop_test_acc"),
                          ("final", "final_test_acc"), ("train", "final_train_acc")):
            row[key].append(np.mean([r[name] for r in rs]))
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


def format_table(data, labels=LABELS, columns=(("es", "early-stop iter", 1, "{:.0f}"),
                                                ("acc", "test acc % at early stop", 100, "{:.2f}"))):
    """Markdown table, one row per Pm, for each key of ``labels`` the ``columns`` (key, header, scale,
    format), mean [min–max] over trials; the default: early-stop iteration and test accuracy there."""
    kinds = [k for k in labels if k in data]
    levels = sorted({lv for k in kinds for lv in data[k]})
    head = ["level", "Pm %"] + [f"{labels[k]}: {what}" for k in kinds for _, what, _, _ in columns]
    body = []
    for lv in levels:
        pm = next(data[k][lv]["Pm"] for k in kinds if lv in data[k])
        cells = [str(lv), f"{100 * pm:.1f}"]
        for k in kinds:
            r = data[k].get(lv, {})
            cells += [cell(r.get(key, []), scale, fmt) for key, _, scale, fmt in columns]
        body.append(cells)
    return markdown(head, body)


AT_THE_END = (("final", "final test acc %", 100, "{:.2f}"), ("train", "final train acc %", 100, "{:.2f}"))


def variant_text(cfg):
    """How the tickets were made, in words: pruning schedule, reset point, and any non-LTH choice."""
    parts = ["one-shot" if cfg.get("oneshot") else "iterative",
             "global" if cfg.get("global_pruning") else "per-layer", "magnitude pruning" if
             cfg.get("criterion", "large_final") == "large_final" else f"pruning by {cfg['criterion']}"]
    text = " ".join(parts) + (f", reset to θ{cfg['rewind_iteration']}" if cfg.get("rewind_iteration") else ", reset to θ0")
    for key, name in (("mask1", "mask-1"), ("mask0", "mask-0")):
        if cfg.get(key, LTH[key]) != LTH[key]:
            text += f", {name} {cfg[key]}"
    return text


def ticket_label(cfg):
    """The tickets' legend entry: 'winning ticket' under the LTH's choices, else what was changed."""
    changed = [f"{k} {cfg[k]}" for k in ("criterion", "mask1", "mask0") if cfg.get(k, LTH[k]) != LTH[k]]
    if cfg.get("rewind_iteration"):
        changed.append(f"reset θ{cfg['rewind_iteration']}")
    if cfg.get("oneshot"):
        changed.append("one-shot")
    return "winning ticket" + (f" ({', '.join(changed)})" if changed else " (IMP, reset θ0)")


def title(cfg):
    """'lenet_300_100 on mnist: iterative per-layer magnitude pruning, reset to θ0 — quick protocol: ...'."""
    paper = paper_protocol(cfg["model"], cfg.get("dropout", 0.0)).train.iterations
    return (f"{cfg['model']} on {cfg['dataset']}: {variant_text(cfg)}\n"
            f"{figure.protocol(cfg['train']['iterations'], paper, cfg['trials'])}")


def plot(data, png, title="", labels=LABELS, trials=1):
    """Figure-4-style PNG, one curve per key of ``labels`` found in ``data``, the dense network dashed;
    None without matplotlib."""
    plt = figure.pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    pms = [100 * r["Pm"] for kind in data.values() for r in kind.values()]
    dense = next((rows[0] for rows in data.values() if 0 in rows), None)
    for kind in [k for k in labels if k in data]:
        rows = [data[kind][lv] for lv in sorted(data[kind])]
        pm = np.array([100 * r["Pm"] for r in rows])
        for ax, key, scale in ((axes[0], "es", 1), (axes[1], "acc", 100)):
            figure.errorbar(ax, pm, [r[key] for r in rows], scale, label=labels[kind])
    for ax, key, scale, ylabel in ((axes[0], "es", 1, "early-stop iteration"),
                                   (axes[1], "acc", 100, "test accuracy at early stop (%)")):
        if dense is not None:
            ax.axhline(scale * np.mean(dense[key]), color="k", ls="--", lw=0.8, label="dense network (Pm 100%)")
        figure.pm_axis(ax, pms)
        figure.label(ax, None, ylabel, legend=False)
    fig.suptitle(title, fontsize=10)
    figure.legend_below(fig, axes, figure.spread(trials))
    return figure.save(fig, png, layout=False)


def level_curves(store, levels, variant=None):
    """{level: {"Pm", "iteration", "test_acc": [one curve per trial]}} of the tickets of ``levels``."""
    out = {}
    for r in runs(store, variant):
        if r["level"] in levels and r["run"] == "ticket":
            c = store.read(r["group"])[0]["curves"]
            row = out.setdefault(r["level"], {"Pm": r["Pm"], "iteration": np.asarray(c["iteration"]), "test_acc": []})
            row["test_acc"].append(np.asarray(c["test_acc"]))
    return out


def figure3_levels(data):
    """The levels nearest the Pm of the paper's Figure 3."""
    levels = {lv: r["Pm"] for lv, r in data.get("ticket", {}).items()}
    return sorted({min(levels, key=lambda lv: abs(np.log(levels[lv] / p))) for p in FIGURE3_PM}) if levels else []


def plot_curves(curves, png, title="", trials=1):
    """Figure-3-style PNG: test accuracy against training iteration, one line per level; None without matplotlib."""
    plt = figure.pyplot()
    if plt is None or not curves:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for level in sorted(curves):
        c = curves[level]
        acc = 100 * np.array(c["test_acc"])
        line, = ax.plot(c["iteration"], acc.mean(axis=0), lw=1.2, label=f"Pm {100 * c['Pm']:.3g}%")
        if len(acc) > 1:
            ax.fill_between(c["iteration"], acc.min(axis=0), acc.max(axis=0), color=line.get_color(), alpha=0.2)
    low = min(np.percentile(100 * np.array(c["test_acc"]), 5) for c in curves.values())
    ax.set_ylim(max(low - 0.5, 0), None)
    figure.label(ax, "training iteration", "test accuracy (%)", legend=False)
    ax.legend(title=figure.spread(trials).replace("error bars", "bands"), fontsize=8, title_fontsize=8)
    fig.suptitle(title, fontsize=10)
    return figure.save(fig, png)


def report(path, png=None, make_plot=True, log=print, curves=None):
    """Print the table; draw the figure (and, with ``curves`` levels, or ``()`` for Figure 3's, the curves)."""
    cfg = ExperimentStore.read_config(path)
    store = ExperimentStore.open_readonly(path)
    data = collect(path, store=store)
    if not data:
        log(f"{path} has no finished runs yet")
        return None
    table = format_table(data, {**LABELS, "ticket": ticket_label(cfg)})
    log(f"{cfg['model']} on {cfg['dataset']}: {cfg['train']['iterations']} iterations per run, "
        f"{cfg['trials']} trial(s), {variant_text(cfg)}; criterion {cfg.get('criterion', 'large_final')}, "
        f"mask-1 {cfg.get('mask1', 'rewind')}, mask-0 {cfg.get('mask0', 'zero')}")
    log(table)
    log("\nat the end of training:")
    log(format_table(data, {**LABELS, "ticket": ticket_label(cfg)}, AT_THE_END))
    if make_plot:
        png = figure.draw(lambda png: plot(data, png, title(cfg), {**LABELS, "ticket": ticket_label(cfg)},
                                           cfg["trials"]), path, png, log)
        if png and curves is not None:
            levels = list(curves) or figure3_levels(data)
            cpng = os.path.splitext(png)[0] + "_curves.png"
            heading = (f"{ticket_label(cfg)} during training, {cfg['model']} on {cfg['dataset']}\n"
                       + title(cfg).split("\n")[1])
            if plot_curves(level_curves(store, levels), cpng, heading, cfg["trials"]):
                log(f"plot: {cpng}")
    return table
