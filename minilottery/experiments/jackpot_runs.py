"""The jackpot experiment's runs (experiments/jackpot.py plans them): module-level, so that any executor
can run them; each returns (arrays, attrs).

  _pretrained  θ0 and the pre-trained weights (read from an IMP file, or trained with ``cfg.pretrain``)
  magnitude    the magnitude-pruned network at the sparsity's budgets, nothing trained
  jackpot      the jackpot search from the magnitude mask (lottery/jackpot.py)
  edgepopup    edge-popup's search at the same per-layer budgets
  finetune     the magnitude-pruned network, its kept weights trained with ``cfg.finetune``
"""
import json
import math

import numpy as np

from minilottery.backend import asarray
from minilottery.lottery.edgepopup import EdgePopup, drop_lowest
from minilottery.lottery.jackpot import DEFAULTS, MASK_SUFFIX, Jackpot, magnitude_masks
from minilottery.lottery.pruning import check_kept
from minilottery.lottery.resets import reset
from minilottery.nn.models import build_model
from minilottery.rng import Streams
from minilottery.train import evaluate, train


def budget_attrs(b):
    """Store attrs of a ``Budgets``: sparsity over the searched layers and over every prunable layer."""
    per_layer = {k: b.pruned.get(k, 0) / n for k, n in b.sizes.items()}           # p_l / n_l (dense: 0)
    return {"sparsity": b.sparsity, "sparsity_all": b.sparsity_all, "threshold": b.threshold,
            "pruned": json.dumps(b.pruned), "sizes": json.dumps(b.sizes), "dense_layers": json.dumps(b.dense),
            "sparsity_per_layer": json.dumps(per_layer)}



def _model(cfg, weights=None):
    """A fresh network (θ drawn from the seed's trial-0 streams, as IMP's θ0), ``weights`` loaded."""
    model = build_model(cfg.model, Streams.from_seed(cfg.seed, 0), dataset=cfg.dataset, width=cfg.width)
    if weights is not None:
        model.set_weights(weights)
    return model


def _accuracies(net, data):
    (vl, va), (tl, ta) = (evaluate(net, *(asarray(a) for a in split)) for split in (data.val, data.test))
    return {"val_loss": vl, "val_acc": va, "test_loss": tl, "test_acc": ta}


def _bool(masks):
    return {k: np.asarray(m) != 0 for k, m in masks.items()}


def _pretrained(cfg, data_ref, source=None):
    """θ0 and the pre-trained weights: those read from the IMP file (``source``), or trained with
    ``cfg.pretrain``."""
    data = data_ref.load()
    if source is not None:
        theta0, weights, src = source
        return ({"theta0": theta0, "weights": weights},
                {"source": cfg.pretrained, **_accuracies(_model(cfg, weights), data),
                 "source_final_test_acc": float(src.get("final_test_acc", math.nan))})
    model = _model(cfg)
    theta0 = model.get_weights()
    res = train(model, data, cfg.pretrain, Streams.from_seed(cfg.seed, 0, 0, 0, 0),
                label="pretrain: ", keep_best=True)                     # IMP trial 0's dense run, best kept
    return ({"theta0": theta0, "weights": res.best_weights, "curves": res.curves},
            {"source": "trained", **res.summary(), "val_acc": res.early_stop_val_acc,
             "test_acc": res.early_stop_test_acc})


def _magnitude(cfg, data_ref, weights, budgets, key, label):
    start = magnitude_masks(weights, budgets)
    model = _model(cfg)
    reset(model, weights, start)                                        # W ⊙ m, nothing trained
    return {"masks": _bool(start)}, {**_accuracies(model, data_ref.load()), **budget_attrs(budgets)}


def _search(cfg, data_ref, net, weights, key, label):
    """Train ``net``'s scores with the search protocol; (result, attrs incl. whether W, b are bitwise unchanged)."""
    res = train(net, data_ref.load(), cfg.search, Streams.from_seed(*key), label=label,
                keep_best=True)
    after = net.model.get_weights()
    unchanged = all(after[k].tobytes() == weights[k].tobytes() for k in net.model.params())  # BN statistics move
    return res, {**res.summary(), "iterations": cfg.search.iterations, "weights_unchanged": unchanged}


def _jackpot(cfg, data_ref, weights, budgets, key, label):
    net = Jackpot(_model(cfg, weights), budgets, masks=magnitude_masks(weights, budgets),
                  kept_score=DEFAULTS["kept_score"], pruned_score=DEFAULTS["pruned_score"])
    res, attrs = _search(cfg, data_ref, net, weights, key, label)
    best, n = res.best_weights, len(MASK_SUFFIX)
    masks, final = {k[:-n]: v != 0 for k, v in best.items() if k.endswith(MASK_SUFFIX)}, _bool(net.masks())
    for m in (masks, final):
        check_kept(m, _kept(budgets), label)
    return ({"scores": {k: v for k, v in best.items() if not k.endswith(MASK_SUFFIX)}, "masks": masks,
             "final_masks": final, "curves": res.curves}, {**attrs, **budget_attrs(budgets)})


def _kept(budgets):
    """{key: n_l − p_l}: what every searched layer's mask keeps."""
    return {k: budgets.sizes[k] - p for k, p in budgets.pruned.items()}


def _edgepopup(cfg, data_ref, weights, budgets, key, label):
    net = EdgePopup(_model(cfg, weights), None, Streams.from_seed(*key).mask, pruned=budgets.pruned)
    res, attrs = _search(cfg, data_ref, net, weights, key, label)
    masks = {k: drop_lowest(np.abs(v), net.pruned[k]) != 0 for k, v in res.best_weights.items()}
    check_kept(masks, _kept(budgets), label)
    return {"scores": res.best_weights, "masks": masks, "curves": res.curves}, attrs


def _finetune(cfg, data_ref, weights, budgets, key, label):
    model = _model(cfg)
    reset(model, weights, magnitude_masks(weights, budgets))           # then the kept weights train
    res = train(model, data_ref.load(), cfg.finetune, Streams.from_seed(*key), label=label,
                keep_best=True)
    return {"weights": res.best_weights, "curves": res.curves}, {**res.summary(),
                                                                 "iterations": cfg.finetune.iterations}


RUNS = {"magnitude": _magnitude, "jackpot": _jackpot, "edgepopup": _edgepopup, "finetune": _finetune}

