"""Softmax cross-entropy, numerically stable, mean over the batch.

Leading axes are independent runs (stacked runs: logits (R, N, K), labels (R, N), or
labels (N,) shared by every run); each run's loss and gradient are what it would get alone.
"""
from minilottery.backend import xp_of


def _shifted(logits, labels):
    """z = logits − max_k, log Σ_k e^z, z at the label (selected exactly: z or +0 summed), e^z."""
    xp = xp_of(logits)
    z = logits - logits.max(axis=-1, keepdims=True)         # shift: exp never overflows
    e = xp.exp(z)
    onehot = xp.arange(logits.shape[-1]) == labels[..., None]
    return z, e, onehot, xp.where(onehot, z, 0).sum(axis=-1)


def softmax_cross_entropy(logits, labels):
    """Loss and its gradient.

    logits (..., N, K) float, labels (..., N) int.
    L = (1/N) Σ_n [log Σ_k exp(z_nk) − z_n,y_n] ; ∂L/∂z = (softmax(z) − onehot(y)) / N
    Returns (loss as an array of the logits' dtype, one per leading index (0-d for (N, K)), dlogits).
    """
    if logits.ndim < 2 or tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"expected logits (N, K) and labels (N,), got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    xp = xp_of(logits)
    n = logits.shape[-2]
    z, e, onehot, z_label = _shifted(logits, labels)
    s = e.sum(axis=-1, keepdims=True)
    loss = (xp.log(s[..., 0]) - z_label).sum(axis=-1) / logits.dtype.type(n)  # the mean, without its wrapper
    grad = e / s                                             # softmax
    grad -= onehot                                           # − 1 at the label, − 0 elsewhere
    grad /= logits.dtype.type(n)
    return loss, grad


def loss_and_correct(logits, labels):
    """Summed loss and number of correct predictions (per leading index), for evaluation."""
    xp = xp_of(logits)
    z, e, _, z_label = _shifted(logits, labels)
    total = (xp.log(e.sum(axis=-1)) - z_label).sum(axis=-1)
    correct = (logits.argmax(axis=-1) == labels).sum(axis=-1)
    return total, correct
