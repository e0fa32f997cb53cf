"""What the surviving weights are reset to before a pruned network retrains.

- ``reset`` installs a start under the masks: θ0 (Frankle & Carbin's reset, the
  default), θk, the dense run's weights at iteration k ("late resetting",
  ``--rewind-iteration k``), or the start a mask-1 action made (lottery/actions.py);
- ``reinit_control``: the start of the LTH's random-reinitialisation control
  (``--reinit K``), a fresh draw θ0' from the initialisation distribution (not
  Deconstructing's mask-1 action ``reinit``, a permutation of θ0: actions.py).
Every reset copies (biases and BatchNorm's running statistics included): nothing
aliases a stored array, and the statistics come back bitwise.
Optimiser state is not kept across rounds: the trainer builds a fresh one.
"""
from minilottery.backend import asarray, xp_of
from minilottery.nn.models import build_model


def reset(model, start, masks, fills=None):
    """Set the model to start ⊙ mask: W ← start_W ⊙ m, b ← start_b (copies); pruned weights show ``fills``.

    start is θ0 or θk (the LTH's mask-1 action ``rewind``), or a start made by another
    mask-1 action; the trainable W is exactly 0 where pruned (the optimiser keeps it
    there), and W_eff shows the frozen fill F there (mask-0 actions; none means 0).
    """
    model.set_weights(start)
    model.set_masks(masks, fills)
    params = model.params()
    for key, m in masks.items():
        w = params[key]
        xp_of(w).copyto(w, 0, where=asarray(m) == 0)      # assigned, so an inf becomes 0, not nan


def reinit_control(model_name, rngs, dataset, dropout=0.0, width=1.0):
    """The random-reinitialisation control's start: fresh initial weights θ0' (host copies) drawn from
    rngs.init, as a weights dict (BatchNorm's γ redrawn too, its running statistics at their initial 0 and 1)."""
    return build_model(model_name, rngs, dataset=dataset, dropout=dropout, width=width).get_weights()
