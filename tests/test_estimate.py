"""The plan before a run (estimate.py): runs counted, done ones left out, a time from the measured costs."""
import pytest

from minilottery import estimate
from minilottery.data import SPLIT_SIZES
from minilottery.experiments.imp import IMPConfig
from minilottery.experiments.instability import InstabilityConfig
from minilottery.experiments.prune_at_init import PruneAtInitConfig

STEP, EXAMPLE = 1e-3, 1e-5                                    # seconds a step, seconds an evaluated example


@pytest.fixture(autouse=True)
def fixed_costs(monkeypatch):
    monkeypatch.setattr(estimate, "step_costs", lambda *a, **k: (STEP, EXAMPLE))


def run_time(iterations, eval_every, dataset="mnist"):
    n_train, n_val, n_test = SPLIT_SIZES[dataset]
    return iterations * STEP + -(-iterations // eval_every) * (n_val + n_test) * EXAMPLE + n_train * EXAMPLE


def test_an_imp_trial_is_a_chain_and_trials_share_the_workers():
    cfg = IMPConfig.paper("lenet_300_100", rounds=2, trials=2, reinit=0, iterations=1000, eval_every=100)
    one, two = estimate.plan(cfg, workers=1), estimate.plan(cfg, workers=2)
    assert one["runs"] == two["runs"] == 6 and one["left"] == 6 and one["done"] == 0
    assert one["seconds"] == pytest.approx(6 * run_time(1000, 100))
    assert two["seconds"] == pytest.approx(3 * run_time(1000, 100))   # each trial's 3 levels wait on each other
    assert "6 runs" in one["text"] and "2 workers" in two["text"]


def test_an_instability_path_costs_its_points_on_test_and_training_examples():
    cfg = InstabilityConfig.paper("lenet_300_100", level=(0,), rewind_iteration=(0,), points=7,
                                  train_examples=1000, iterations=500, eval_every=100)
    plan = estimate.plan(cfg, workers=1)
    n_test = SPLIT_SIZES["mnist"][2]
    assert plan["runs"] == 3                                          # two copies and their path
    assert plan["seconds"] == pytest.approx(2 * run_time(500, 100) + 7 * (n_test + 1000) * EXAMPLE)


def test_a_pruning_at_init_plan_counts_every_variant():
    cfg = PruneAtInitConfig.paper("lenet_300_100", method=("snip", "magnitude"), sparsity=(0.5, 0.9),
                                  ablation=("none", "reinit"), iterations=100, eval_every=100)
    assert estimate.plan(cfg)["runs"] == 2 * 2 * 2
