"""Tables and figures of a Deconstructing comparison store: one per comparison.

For each comparison (criteria, mask-1 actions, mask-0 actions) a table of the
early-stopping iteration and the test accuracy there per Pm, one column pair
per variant (mean [min–max] over trials), and a figure with one curve per
variant, in the style of the Lottery Ticket paper's Figure 4.
"""
import os

from minilottery.experiments.deconstructing import COMPARISONS, variants
from minilottery.protocol import paper_protocol
from minilottery.reports import figure, markdown
from minilottery.reports.imp import cell, collect, plot
from minilottery.reports.imp import rows as imp_rows
from minilottery.store import ExperimentStore

TITLES = {"criteria": "mask criteria", "mask1": "mask-1 actions (what kept weights restart from)",
          "mask0": "mask-0 actions (what pruned weights are frozen at)"}


CHOICE = {"criteria": "criterion", "mask1": "mask-1", "mask0": "mask-0"}


def comparison_data(store, comparison):
    """{variant label: {level: row}} of the winning tickets of one comparison's variants."""
    out = {}
    for label, name, _ in variants(comparison):
        tickets = collect(None, variant=name, store=store).get("ticket")
        if tickets:
            out[label] = tickets
    return out


def rows(store, curves=False):
    """Every finished run of every variant as a flat row (imp.rows), with its variant's choices;
    the shared θ0 and dense runs once, as variant "dense"."""
    out, seen = [], set()
    for comparison in [c for c in COMPARISONS if c in store.config["comparisons"]]:
        for _, name, choice in variants(comparison):
            if name in seen:
                continue
            for r in imp_rows(store, curves, variant=name):
                if r["level"] > 0 or not seen:
                    out.append({"variant": name if r["level"] else "dense", **choice, **r})
            seen.add(name)
    return out


def format_tables(data):
    """Two markdown tables (test accuracy % at early stop; early-stop iteration), a column per variant."""
    labels = list(data)
    levels = sorted({lv for rows in data.values() for lv in rows})
    out = []
    for key, what, scale, fmt in (("acc", "test accuracy % at early stop", 100, "{:.2f}"),
                                  ("es", "early-stop iteration", 1, "{:.0f}")):
        body = []
        for lv in levels:
            pm = next(rows[lv]["Pm"] for rows in data.values() if lv in rows)
            body.append([f"{100 * pm:.1f}"] + [cell(data[lb][lv][key], scale, fmt) if lv in data[lb] else "–"
                                               for lb in labels])
        out.append(f"{what}:\n\n" + markdown(["Pm %"] + labels, body))
    return "\n\n".join(out)


def report(path, png=None, make_plot=True, log=print, curves=None):
    cfg = ExperimentStore.read_config(path)
    store = ExperimentStore.open_readonly(path)
    imp, tables = cfg["imp"], {}
    log(f"{imp['model']} on {imp['dataset']}: {imp['train']['iterations']} iterations per run, "
        f"{imp['trials']} trial(s), {imp['rounds']} rounds (fc {imp['fc_rate']}, output {imp['output_rate']})")
    for comparison in [c for c in COMPARISONS if c in cfg["comparisons"]]:
        data = comparison_data(store, comparison)
        if not data:
            continue
        labels = {label: f"{CHOICE[comparison]} {label}" for label in data}
        tables[comparison] = format_tables(data)
        log(f"\n## {TITLES[comparison]}\n")
        log(tables[comparison])
        if make_plot:
            base = os.path.splitext(png or path)[0]
            heading = (f"Deconstructing, {TITLES[comparison]}: {imp['model']} on {imp['dataset']}\n"
                       + figure.protocol(imp["train"]["iterations"], paper_protocol(imp["model"]).train.iterations,
                                         imp["trials"]))
            if plot(data, f"{base}_{comparison}.png", heading, labels, imp["trials"]):
                log(f"plot: {base}_{comparison}.png")
            else:
                log(figure.SKIPPED)
    if not tables:
        log(f"{path} has no finished runs yet")
    return tables
