"""What a jackpot is compared with (Lottery Jackpots, Zhang et al. 2021): the pre-trained network
an IMP experiment made, the masks of existing criteria at the jackpot's budgets, their overlap with
the jackpot mask, and the search cost of starting from magnitude pruning.

Criterion masks (``criterion_masks``): the Deconstructing criteria as scores (``criteria.score_masks``,
w_init = θ0, w_final = the pre-trained weights), each layer cut to the jackpot's own pruned count p_l
(``pruning.prune_by_score``, ties at the cut broken by the seeded rng), so every mask keeps exactly
what the jackpot keeps, layer by layer:
    magnitude   s = |w_f|   (the search's start, ``jackpot.magnitude_masks``)
    random      s = a random ranking (the chance level, E[overlap_l] = 1 − p_l/n_l)
    large_init  s = |w_i|
    movement    s = |w_f − w_i|
Overlap: ``overlap.overlap(jackpot mask, other)`` = |kept(J) ∩ kept(O)| / |kept(J)|, per layer and
overall; at equal budgets it is symmetric.

``summary``: one dict per sparsity of a jackpot store, for the report and ``--json``.

Search cost (``search_cost``): the paper compares test accuracy against search epochs, so this
uses TEST accuracy curves too (never used to choose anything): the first evaluation iteration t at
which the magnitude-initialised search's test accuracy reaches edge-popup's final test accuracy,
iteration 0 being the magnitude-pruned network itself, and t / (edge-popup's search iterations).
The paper's claim: at most a third.
"""
import math

import numpy as np

from minilottery import layout
from minilottery.errors import StoreError
from minilottery.lottery.criteria import score_masks
from minilottery.lottery.overlap import overlap
from minilottery.lottery.pruning import ones_masks, prune_by_score
from minilottery.store import ExperimentStore

CRITERIA = ("random", "large_init", "movement")              # scored here; magnitude is the search's start
OVERLAP_WITH = ("magnitude",) + CRITERIA + ("edgepopup",)   # the overlap table's columns


def imp_source(path, model, dataset, width=1.0):
    """(θ0, pre-trained weights, the dense run's attrs) of trial 0 of the IMP experiment at ``path``.

    Refuses (one-line StoreError) a missing or foreign file, an experiment of another kind, model or
    dataset, and one whose trial-0 dense run is not finished.
    """
    store = ExperimentStore.open_readonly(path)             # StoreError for missing / not an experiment
    cfg = store.config
    kind = cfg.get("kind", "imp")
    if kind != "imp":
        raise StoreError(f"--pretrained {path} holds a {kind!r} experiment, not an IMP experiment "
                         f"(python -m minilottery imp makes one)")
    if (cfg.get("model"), cfg.get("dataset"), cfg.get("width", 1.0)) != (model, dataset, width):
        def net(m, w):
            return m if w == 1.0 else f"{m} at width {w}"
        raise StoreError(f"--pretrained {path} trained {net(cfg.get('model'), cfg.get('width', 1.0))} on "
                         f"{cfg.get('dataset')}; this experiment asks for {net(model, width)} on {dataset}")
    theta0, dense = layout.run(0, name="theta0"), layout.run(0, 0, "ticket")
    if not (store.done(theta0) and store.done(dense)):
        raise StoreError(f"--pretrained {path} has no finished dense run of trial 0 ({dense}): "
                         f"let the IMP experiment finish its level 0 first")
    from minilottery.nn.models import build_model
    from minilottery.rng import Streams
    like = build_model(model, Streams.from_seed(0), dataset=dataset, width=width).get_weights()   # what must be stored
    return store.read(theta0, expect=like)[0], store.read(dense, expect={"weights": like})[0]["weights"], \
        store.attrs(dense)


def criterion_masks(criterion, theta0, final, budgets, rng):
    """{key: 0/1 mask} of ``criterion`` on (w_init = θ0, w_final = final), p_l pruned per searched layer."""
    keys = sorted(budgets.pruned)
    ones = ones_masks({k: final[k] for k in keys})
    scores = score_masks(criterion, {k: theta0[k] for k in keys}, {k: final[k] for k in keys}, ones, rng)
    return prune_by_score(scores, ones, budgets.pruned, rng)


def overlaps(jackpot, others):
    """{name: (per-layer {key: overlap}, overall)} of the jackpot masks with each of ``others``."""
    return {name: overlap(jackpot, masks) for name, masks in others.items()}


def search_cost(jackpot_curves, start_test_acc, edgepopup_curves):
    """(t, t / edge-popup's iterations): when the jackpot's test accuracy first reaches edge-popup's final
    one (t = 0: the magnitude-pruned start already does); (None, nan) when it never does."""
    its = np.concatenate([[0], np.asarray(jackpot_curves["iteration"])])
    acc = np.concatenate([[start_test_acc], np.asarray(jackpot_curves["test_acc"])])
    target, total = float(edgepopup_curves["test_acc"][-1]), int(edgepopup_curves["iteration"][-1])
    hit = np.flatnonzero(acc >= target)                                   # test acc ≥ edge-popup's final
    if hit.size == 0:
        return None, math.nan
    return int(its[hit[0]]), int(its[hit[0]]) / total


def _plain(attrs):
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items() if k != "completed"}


def summary(store):
    """[one dict per sparsity of a jackpot store]: the attrs of each finished group (dense test accuracy,
    magnitude, jackpot, edgepopup, finetune, overlap) and, once both searches are done, the search cost."""
    out = []
    dense = _plain(store.attrs("pretrained")) if store.done("pretrained") else {}
    for name in store.groups("sparsity"):
        g, row = f"sparsity/{name}", {"sparsity": float(name), "group": name, "dense_test_acc": dense.get("test_acc")}
        for unit in store.groups(g):
            if store.done(f"{g}/{unit}"):
                row[unit] = _plain(store.attrs(f"{g}/{unit}"))
        if all(u in row for u in ("magnitude", "jackpot", "edgepopup")):
            curves = {u: store.read(f"{g}/{u}")[0]["curves"] for u in ("jackpot", "edgepopup")}
            t, ratio = search_cost(curves["jackpot"], row["magnitude"]["test_acc"], curves["edgepopup"])
            row["search_cost"] = {"iteration": t, "ratio": None if math.isnan(ratio) else ratio,
                                  "edgepopup_final_test_acc": float(curves["edgepopup"]["test_acc"][-1]),
                                  "edgepopup_iterations": int(curves["edgepopup"]["iteration"][-1])}
        out.append(row)
    return out
