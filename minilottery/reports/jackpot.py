"""Tables and figure of a jackpot experiment file (``python -m minilottery report FILE``).

Accuracy table, one row per sparsity: test accuracy (%) of the dense pre-trained network, of the
magnitude-pruned one without training (the search's start), of the jackpot and edge-popup searches
and of fine-tuning (each at the validation-selected evaluation, "@ iteration", and at the end), the
iterations each ran, and the search cost: the first iteration at which the jackpot's TEST accuracy
reaches edge-popup's final one, over edge-popup's iterations (the paper's claim: at most 1/3).
Overlap table: overlap(jackpot mask, criterion mask) overall, rows sparsity, the highest in bold.
Figure: test accuracy against search iterations, jackpot (iteration 0: the magnitude-pruned start)
and edge-popup, one panel per sparsity.
"""
import os
from functools import partial

from minilottery import layout
from minilottery.experiments.jackpot import JackpotExperiment, search_protocol
from minilottery.lottery.jackpot_compare import OVERLAP_WITH
from minilottery.reports import figure, markdown
from minilottery.reports.export import plain
from minilottery.store import ExperimentStore

NAMES = {"magnitude": "magnitude", "random": "random", "large_init": "large_init", "movement": "movement",
         "edgepopup": "edge-popup"}


def _pct(v):
    return "–" if v is None else f"{100 * v:.2f}"


def _run(r, unit):
    """'best @ iteration' and 'final' cells of a trained unit."""
    a = r.get(unit)
    if a is None:
        return ["–", "–"]
    return [f"{_pct(a['early_stop_test_acc'])} @ {int(a['early_stop_iteration'])}", _pct(a["final_test_acc"])]


def format_table(rows):
    head = ["sparsity % (searched / all)", "dense", "magnitude, no training", "jackpot (val-selected)",
            "jackpot final", "edge-popup (val-selected)", "edge-popup final", "fine-tuned (val-selected)",
            "fine-tuned final", "search iters", "fine-tune iters", "jackpot reaches edge-popup final at",
            "ratio (claim ≤ 0.33)"]
    body = []
    for r in rows:
        m = r.get("magnitude", {})
        cost = r.get("search_cost")
        reach = "–" if cost is None else "never" if cost["iteration"] is None else str(cost["iteration"])
        ratio = "–" if cost is None or cost["ratio"] is None else f"{cost['ratio']:.2f}"
        sp = f"{100 * m['sparsity']:.2f} / {100 * m['sparsity_all']:.2f}" if m else f"{100 * r['sparsity']:g}"
        cells = ([sp, _pct(r["dense_test_acc"]), _pct(m.get("test_acc"))] + _run(r, "jackpot")
                 + _run(r, "edgepopup") + _run(r, "finetune")
                 + [str(r.get("jackpot", {}).get("iterations", "–")), str(r.get("finetune", {}).get("iterations", "–")),
                    reach, ratio])
        body.append(cells)
    return markdown(head, body)


def format_overlap(rows):
    head = ["sparsity %"] + [f"vs {NAMES[c]}" for c in OVERLAP_WITH] + ["most"]
    body = []
    for r in rows:
        o = r.get("overlap")
        if o is None:
            continue
        top = max(OVERLAP_WITH, key=lambda c: o[c])
        cells = [f"{100 * r['sparsity']:g}"] + [f"**{o[c]:.3f}**" if c == top else f"{o[c]:.3f}"
                                                   for c in OVERLAP_WITH] + [NAMES[top]]
        body.append(cells)
    return markdown(head, body)


def plot(store, rows, png, title):
    """Test accuracy against search iterations, one panel per sparsity: the jackpot (iteration 0: the
    magnitude-pruned start), edge-popup and fine-tuning curves, the dense and magnitude-pruned networks
    as lines; one legend under the panels. None without matplotlib."""
    plt = figure.pyplot()
    rows = [r for r in rows if "jackpot" in r and "edgepopup" in r]
    if plt is None or not rows:
        return None
    fig, axes = plt.subplots(1, len(rows), figsize=(4.5 * len(rows), 4.6), squeeze=False)
    for ax, r in zip(axes[0], rows):
        g = partial(layout.sparsity, r["group"])
        jc, ec = (store.read(g(u))[0]["curves"] for u in ("jackpot", "edgepopup"))
        mag = 100 * r["magnitude"]["test_acc"]
        ax.plot([0, *jc["iteration"]], [mag, *(100 * jc["test_acc"])], marker="o", ms=3,
                label="jackpot: search from magnitude (weights frozen)")
        ax.plot(ec["iteration"], 100 * ec["test_acc"], marker="s", ms=3, label="edge-popup: search from random scores")
        lows = [jc["test_acc"].min(), ec["test_acc"].min()]
        if "finetune" in r:
            fc = store.read(g("finetune"))[0]["curves"]
            ax.plot(fc["iteration"], 100 * fc["test_acc"], marker="^", ms=3, label="fine-tuned magnitude mask (weights trained)")
            lows.append(fc["test_acc"].min())
        ax.axhline(100 * r["dense_test_acc"], color="k", ls="--", lw=1, label="dense pre-trained network")
        ax.axhline(mag, color="gray", ls="-.", lw=1, label="magnitude pruning, no training")
        cost = r.get("search_cost") or {}
        if cost.get("iteration") is not None:
            ax.axvline(cost["iteration"], color="gray", ls=":", lw=1, label="jackpot reaches edge-popup's final accuracy")
        low = 100 * min(*lows, r["magnitude"]["test_acc"])
        ax.set_ylim(max(low - 1, 0), max(100 * r["dense_test_acc"], 100 * max(jc["test_acc"].max(), ec["test_acc"].max())) + 1)
        ratio = "" if cost.get("ratio") is None else f", cost ratio {cost['ratio']:.2f}"
        figure.label(ax, "iterations (of the search, or of fine-tuning)", "test accuracy (%)", legend=False)
        ax.set_title(f"sparsity {100 * r['sparsity']:g}%{ratio}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    figure.legend_below(fig, axes, "one seed; test accuracy at every evaluation (never used to choose)", ncol=3)
    return figure.save(fig, png, layout=False)


def title(cfg, source):
    s, pre = cfg["search"], cfg["pretrain"]
    paper = search_protocol(cfg["dataset"]).iterations
    return (f"Lottery Jackpots, {cfg['model']} on {cfg['dataset']}, pre-trained: {os.path.basename(str(source))} "
            f"({pre['iterations']:,} iterations)\nsearch: " + figure.protocol(s["iterations"], paper, what="iterations")
            + f", {s['optimizer']} lr {s['lr']:g}, {s['schedule']}")


def rows(store, curves=False):
    """JackpotExperiment.summary: one dict per sparsity (dense, magnitude, jackpot, edge-popup, fine-tuned, overlaps, search
    cost), JSON text decoded; with ``curves``, each trained unit's curves under "<unit>.curves"."""
    out = plain(JackpotExperiment.summary(store))
    for r in out if curves else ():
        r["curves"] = {u: store.read(layout.sparsity(r["group"], u))[0]["curves"]
                       for u in ("jackpot", "edgepopup", "finetune") if u in r}
    return out


def report(path, png=None, make_plot=True, log=print, curves=None):
    cfg = ExperimentStore.read_config(path)
    store = ExperimentStore.open_readonly(path)
    rows = JackpotExperiment.summary(store)
    if not rows:
        log(f"{path} has no finished sparsity yet")
        return None
    s = cfg["search"]
    source = store.attrs(layout.PRETRAINED).get("source", "–") if store.done(layout.PRETRAINED) else "–"
    log(f"Lottery Jackpots, {cfg['model']} on {cfg['dataset']}, pre-trained: {source}; search: {s['iterations']} "
        f"iterations, {s['optimizer']} lr {s['lr']} {s['schedule']}, weight decay {s['weight_decay']}, batch "
        f"{s['batch_size']}; classifier {'searched' if cfg['include_classifier'] else 'dense'}")
    table = format_table(rows)
    log("test accuracy %; 'val-selected' = at the evaluation of minimum validation loss (@ its iteration)")
    log(table)
    log("\noverlap(jackpot mask, criterion mask) = |kept by both| / |kept by the jackpot|, overall")
    log(format_overlap(rows))
    if make_plot:
        figure.draw(lambda png: plot(store, rows, png, title(cfg, source)), path, png, log)
    return table
