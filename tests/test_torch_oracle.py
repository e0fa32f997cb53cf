"""Optional oracle: the same LeNet-300-100 training trajectory in PyTorch.

Skipped where torch is not installed (it is never a dependency). Same θ0,
same mini-batches, same masks, Adam with the paper's learning rate, float64:
every weight after 30 steps agrees to ~1e-10.
"""
import numpy as np
import pytest

from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.models import build_model
from minilottery.nn.optim import Adam
from minilottery.rng import Streams

torch = pytest.importorskip("torch")


def test_masked_adam_trajectory_matches_pytorch():
    model = build_model("lenet_300_100", Streams.from_seed(0), dtype=np.float64)
    rng = np.random.default_rng(1)
    masks = {k: (rng.random(v.shape) > 0.5).astype(np.float64) for k, v in model.params().items() if k.endswith(".W")}
    model.set_masks(masks)
    theta0 = model.get_weights()
    t_params = {k: torch.tensor(v, requires_grad=True) for k, v in theta0.items()}
    t_masks = {k: torch.tensor(m) for k, m in masks.items()}
    opt_t = torch.optim.Adam(list(t_params.values()), lr=1.2e-3)
    opt = Adam(model, lr=1.2e-3)

    def torch_forward(x):
        h = x.reshape(x.shape[0], -1)
        for i, name in enumerate(("fc1", "fc2", "fc3")):
            h = h @ (t_params[f"{name}.W"] * t_masks[f"{name}.W"]).T + t_params[f"{name}.b"]
            h = torch.relu(h) if i < 2 else h
        return h

    for _ in range(30):
        x = rng.random((60, 1, 28, 28))
        y = rng.integers(0, 10, 60)
        loss, dlogits = softmax_cross_entropy(model.forward(x, train=True), y)
        model.backward(dlogits)
        opt.step()
        opt_t.zero_grad()
        loss_t = torch.nn.functional.cross_entropy(torch_forward(torch.tensor(x)), torch.tensor(y))
        loss_t.backward()
        opt_t.step()
        assert float(loss) == pytest.approx(loss_t.item(), rel=1e-9)
    ours = model.get_weights()
    for k, v in t_params.items():
        theirs = v.detach().numpy() * (t_masks[k].numpy() if k in t_masks else 1)
        np.testing.assert_allclose(ours[k], theirs, rtol=1e-8, atol=1e-10, err_msg=k)
