"""The speed guard: its plain-NumPy yardstick does the same work as our step, and its
verdict (median ratio against a stated multiple, one retry) is the one it prints.

Timing itself is not asserted here (CI runs the guard after the tests).
"""
import numpy as np
import pytest

from minilottery.bench import guard, plain
from minilottery.nn.conv import Conv2d


def _model(ours):
    return next(c.cell_contents for c in ours.__closure__ if hasattr(c.cell_contents, "get_weights"))


def test_plain_lenet_step_is_our_step():
    """Two steps of each from the same weights, masks and batch: the same weights up to
    float32 rounding (a different summation order), pruned weights 0 in both."""
    ours, peer = guard.steps("lenet_300_100")
    start = _model(ours).get_weights()
    for _ in range(2):
        ours()
        peer()
    got = _model(ours).get_weights()
    for k, w in got.items():
        assert not np.array_equal(w, start[k]), k                 # both moved
        np.testing.assert_allclose(w, peer.p[k], rtol=0, atol=1e-5, err_msg=k)
        if k in peer.masks:
            assert not np.any(w[peer.masks[k] == 0]) and not np.any(peer.p[k][peer.masks[k] == 0]), k


def test_plain_conv_and_its_backward_match_conv2d():
    rng = np.random.default_rng(0)
    conv = Conv2d(3, 4, 3, rng, padding=1, dtype=np.float64)
    x = rng.standard_normal((2, 3, 5, 6))
    y, cols = plain.conv3x3(x, conv.params["W"], conv.params["b"])
    np.testing.assert_allclose(y, conv.forward(x), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    gw, gb, dx = plain.conv3x3_backward(dy, cols, conv.params["W"], x.shape, input_grad=True)
    np.testing.assert_allclose(dx, conv.backward(dy), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, conv.grads["W"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, conv.grads["b"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ratios_seen, verdict, attempts", [
    ([1.0], True, 1),            # within the multiple at once
    ([9.0, 1.0], True, 2),       # one noisy attempt, the retry passes
    ([9.0, 9.0], False, 2),      # too slow twice: fails, after exactly one retry
])
def test_verdict_is_the_median_ratio_with_one_retry(monkeypatch, ratios_seen, verdict, attempts):
    monkeypatch.setitem(guard.CASES, "fake", ("lenet_300_100", 2.0, 3, 1))
    monkeypatch.setattr(guard, "steps", lambda name: (None, None))
    seen = iter(ratios_seen)

    def fake_ratios(ours, peer, repeats, inner):
        r = next(seen)
        return [r, r, 100.0], [1.0, 1.0, 1.0]                     # median ratio r (one outlier)
    monkeypatch.setattr(guard, "ratios", fake_ratios)
    lines = []
    assert guard.check("fake", out=lines.append) is verdict
    assert len(lines) == attempts
    assert ("TOO SLOW" in lines[-1]) is (not verdict)


def test_ratios_interleave_and_alternate():
    calls = []
    a, b = (lambda: calls.append("a")), (lambda: calls.append("b"))
    t_a, t_b = guard.ratios(a, b, repeats=3, inner=2, clock=lambda: 0.0)
    assert len(t_a) == len(t_b) == 3
    assert "".join(calls) == "ab" + "aabb" + "bbaa" + "aabb"     # warm-up, then alternating order


def test_unknown_case_refused_in_one_line(capsys):
    with pytest.raises(SystemExit):
        guard.main(["--cases", "resnet"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "unknown case resnet" in err
