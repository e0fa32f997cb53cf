"""What the surviving weights are reset to before a pruned network retrains.

- ``rewind`` to θ0 (Frankle & Carbin's reset, the default), or to θk, the
  dense run's weights at iteration k ("late resetting", ``--rewind-iteration k``);
- ``reinitialize``: the random-reinitialisation control, a fresh draw θ0' from
  the initialisation distribution under the same mask.
Every reset copies (biases included): nothing aliases a stored array.
Optimiser state is not kept across rounds: the trainer builds a fresh one.
"""
from minilottery.backend import asarray, xp_of
from minilottery.nn.models import build_model


def rewind(model, theta, masks):
    """Set the model to θ (θ0 or θk) ⊙ mask: W ← θ_W ⊙ m, b ← θ_b (copies).

    The LTH's choices: kept weights restart from θ (mask-1 action ``rewind``),
    pruned weights are exactly 0 (mask-0 action ``zero``; the optimiser keeps them there).
    """
    model.set_weights(theta)
    model.set_masks(masks)
    params = model.params()
    for key, m in masks.items():
        w = params[key]
        xp_of(w).copyto(w, 0, where=asarray(m) == 0)      # assigned, so an inf becomes 0, not nan


def reinitialize(model_name, rngs, dataset, dropout=0.0):
    """Fresh initial weights θ0' (host copies) drawn from rngs.init, as a weights dict."""
    return build_model(model_name, rngs, dataset=dataset, dropout=dropout).get_weights()
