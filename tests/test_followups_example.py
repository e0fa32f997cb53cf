"""The follow-ups example: --help, and its protocols build, pass every check and match up
(the pruning-at-init densities are the IMP levels' Pm; the retraining variants differ only in --retrain)."""

import pytest
from tests.helpers_data import load_example



def _example():
    return load_example("followups_lenet")


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        _example().main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--out" in text and "--workers" in text and "quick protocol" in text and "--only" in text


@pytest.mark.parametrize("paper", [False, True])
def test_protocols_build_and_match_up(paper):
    ex = _example()
    p = ex.PAPER if paper else ex.QUICK
    imp, retrain = ex.configs(p, seed=0)
    assert imp.retrain == "rewind" and imp.train.lr == 1.2e-3 and imp.train.batch_size == 60
    assert {r: c.retrain for r, c in retrain.items()} == {"rewind": "rewind", "lr_rewind": "lr_rewind",
                                                         "finetune": "finetune"}
    first = retrain["rewind"].to_dict()
    for cfg in retrain.values():
        d = cfg.to_dict()
        assert {k for k in d if d[k] != first[k]} <= {"retrain"}
    assert retrain["rewind"].train.lr_at(p["iterations"]) < retrain["rewind"].train.lr   # a decaying rate
    pms = [ex.pm_of(imp, lv) for lv in p["levels"]]
    assert pms == sorted(pms, reverse=True) and 0.02 < pms[-1] < 0.2
    assert max(p["rewind"]) < p["iterations"]
