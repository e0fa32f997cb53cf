"""IMP top to bottom, as one serial loop (for level: train; prune; reset), against the plan.

experiments/imp.py spreads the algorithm over a task graph of store groups so that runs can go to
workers and a rerun resumes; ``serial_imp`` is the same algorithm written as the papers state it.
Given the same seeds (each run draws from Streams.from_seed(seed, trial, level, run kind, j), each
mask's ties from (seed, trial, level, 3)), the plan's tickets and masks must equal its bitwise.
"""
import numpy as np

from minilottery import layout
from minilottery.experiments.imp import IMPConfig, IMPExperiment
from minilottery.lottery.imp_round import prune_step
from minilottery.lottery.pruning import ones_masks
from minilottery.lottery.resets import reset
from minilottery.nn.models import build_model
from minilottery.rng import Streams
from minilottery.store import ExperimentStore
from minilottery.train import train
from tests.helpers_data import tiny_mnist


def serial_imp(cfg, data):
    """[(mask, trained weights)] of levels 0..rounds of trial 0: iterative pruning, reset to θ0."""
    theta0 = build_model(cfg.model, Streams.from_seed(cfg.seed, 0), dataset=cfg.dataset).get_weights()
    w = lambda params: {k: v for k, v in params.items() if k.endswith(".W")}  # noqa: E731  prunable weights
    mask, out = ones_masks(w(theta0)), []
    for level in range(cfg.rounds + 1):
        rngs = Streams.from_seed(cfg.seed, 0, level, 0, 0)                   # this level's ticket streams
        net = build_model(cfg.model, rngs, dataset=cfg.dataset)
        reset(net, theta0, mask)                                              # reset: θ0 ⊙ mask
        train(net, data, cfg.train, rngs)                                     # train
        out.append((mask, net.get_weights()))
        ties = Streams.from_seed(cfg.seed, 0, level + 1, 3).mask
        mask = prune_step(cfg, net.weight_kinds(), w(theta0), w(net.get_weights()), mask, ties)   # prune
        mask = {k: (m != 0).astype(np.float32) for k, m in mask.items()}
    return out


def test_the_plan_gives_the_serial_loop_bitwise(tmp_path):
    cfg = IMPConfig.paper("lenet_300_100", iterations=30, eval_every=10, rounds=3, trials=1, reinit=0, lr=1e-3)
    data = tiny_mnist()
    with ExperimentStore(tmp_path / "e.h5", cfg.to_dict()) as store:
        IMPExperiment(cfg, store, data, log=lambda *a: None).run()
        for level, (mask, weights) in enumerate(serial_imp(cfg, data)):
            planned = store.read(layout.run(0, level, "ticket"))[0]["weights"]
            assert set(planned) == set(weights)
            for k in weights:
                assert planned[k].dtype == weights[k].dtype and planned[k].tobytes() == weights[k].tobytes(), \
                    (level, k)
            if level:
                stored = store.read(layout.run(0, level, "mask"))[0]
                for k in mask:
                    np.testing.assert_array_equal(stored[k], mask[k] != 0)
        assert sum(m.sum() for m in mask.values()) < sum(m.size for m in mask.values())   # it pruned
