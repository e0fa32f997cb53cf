"""What the surviving weights are reset to before a pruned network retrains.

- ``rewind`` to θ0 (Frankle & Carbin's reset, the default), or to θk, the
  dense run's weights at iteration k ("late resetting", ``--rewind-iteration k``);
- ``reinitialize``: the random-reinitialisation control, a fresh draw θ0' from
  the initialisation distribution under the same mask.
Every reset copies (biases included): nothing aliases a stored array.
Optimiser state is not kept across rounds: the trainer builds a fresh one.
"""
from minilottery.nn.models import build_model


def rewind(model, theta, masks):
    """Set the model to θ (θ0 or θk) ⊙ mask: W ← θ_W ⊙ m, b ← θ_b (copies)."""
    model.set_weights(theta)
    model.set_masks(masks)


def reinitialize(model_name, rngs, dataset, dropout=0.0):
    """Fresh initial weights θ0' (host copies) drawn from rngs.init, as a weights dict."""
    return build_model(model_name, rngs, dataset=dataset, dropout=dropout).get_weights()
