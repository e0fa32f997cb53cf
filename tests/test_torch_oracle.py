"""Optional oracle: the same LeNet-300-100 training trajectory in PyTorch.

Skipped where torch is not installed (it is never a dependency). Same θ0,
same mini-batches, same masks, float64: our optimiser is built over
``model.params()`` and stepped with ``opt.step(model.grads(), model.frozen())``
after ``resets.reset`` applied the zero action (pruned weights exactly 0);
PyTorch trains the same weights through W ⊙ m, so its pruned weights get zero
gradients and stay 0. Every weight after 30 steps agrees to ~1e-10.
"""
import numpy as np
import pytest

from minilottery.lottery.resets import reset
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.models import build_model
from minilottery.nn.optim import make_optimizer
from minilottery.rng import Streams

torch = pytest.importorskip("torch")

CASES = {   # name: (our optimiser and keywords, PyTorch's)
    "adam": (("adam", {}), lambda p, lr: torch.optim.Adam(p, lr=lr)),
    "adam-wd": (("adam", {"weight_decay": 1e-2}), lambda p, lr: torch.optim.Adam(p, lr=lr, weight_decay=1e-2)),
    "sgd-wd": (("sgd", {"weight_decay": 5e-3}), lambda p, lr: torch.optim.SGD(p, lr=lr, weight_decay=5e-3)),
    "momentum": (("momentum", {"momentum": 0.9}), lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)),
    "nesterov-wd": (("momentum", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
                    lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-3)),
}


@pytest.mark.parametrize("case", CASES)
def test_masked_trajectory_matches_pytorch(case):
    (name, kw), torch_opt = CASES[case]
    lr = 1.2e-3 if name == "adam" else 0.05
    model = build_model("lenet_300_100", Streams.from_seed(0), dtype=np.float64)
    rng = np.random.default_rng(1)
    masks = {k: (rng.random(v.shape) > 0.5).astype(np.float64) for k, v in model.params().items() if k.endswith(".W")}
    reset(model, model.get_weights(), masks)                # θ0 ⊙ m: the zero action
    theta0 = model.get_weights()
    for k, m in masks.items():
        assert np.all(theta0[k][m == 0] == 0)
    t_params = {k: torch.tensor(v, requires_grad=True) for k, v in theta0.items()}
    t_masks = {k: torch.tensor(m) for k, m in masks.items()}
    opt_t = torch_opt(list(t_params.values()), lr)
    opt = make_optimizer(name, model.params(), lr, **kw)

    def torch_forward(x):
        h = x.reshape(x.shape[0], -1)
        for i, layer in enumerate(("fc1", "fc2", "fc3")):
            h = h @ (t_params[f"{layer}.W"] * t_masks[f"{layer}.W"]).T + t_params[f"{layer}.b"]
            h = torch.relu(h) if i < 2 else h
        return h

    for _ in range(30):
        x = rng.random((60, 1, 28, 28))
        y = rng.integers(0, 10, 60)
        loss, dlogits = softmax_cross_entropy(model.forward(x, train=True), y)
        model.backward(dlogits)
        opt.step(model.grads(), model.frozen())
        opt_t.zero_grad()
        loss_t = torch.nn.functional.cross_entropy(torch_forward(torch.tensor(x)), torch.tensor(y))
        loss_t.backward()
        opt_t.step()
        assert float(loss) == pytest.approx(loss_t.item(), rel=1e-9)
    ours = model.get_weights()
    for k, v in t_params.items():
        theirs = v.detach().numpy()
        np.testing.assert_allclose(ours[k], theirs, rtol=1e-8, atol=1e-10, err_msg=k)
        if k in masks:
            assert np.all(ours[k][masks[k] == 0] == 0) and np.all(theirs[masks[k] == 0] == 0), k
