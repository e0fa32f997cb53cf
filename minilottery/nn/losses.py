"""Softmax cross-entropy, numerically stable, mean over the batch."""
from minilottery.backend import xp_of


def softmax_cross_entropy(logits, labels):
    """Loss and its gradient.

    logits (N, K) float, labels (N,) int.
    L = (1/N) Σ_n [log Σ_k exp(z_nk) − z_n,y_n] ; ∂L/∂z = (softmax(z) − onehot(y)) / N
    Returns (loss as a 0-d array of the logits' dtype, dlogits (N, K)).
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"expected logits (N, K) and labels (N,), got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    xp = xp_of(logits)
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)          # shift: exp never overflows
    e = xp.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = xp.arange(n)
    loss = (xp.log(s[:, 0]) - z[rows, labels]).mean()
    grad = e / s                                             # softmax
    grad[rows, labels] -= 1
    grad /= logits.dtype.type(n)
    return loss, grad


def loss_and_correct(logits, labels):
    """Summed loss and number of correct predictions, for evaluation."""
    xp = xp_of(logits)
    z = logits - logits.max(axis=1, keepdims=True)
    lse = xp.log(xp.exp(z).sum(axis=1))
    total = (lse - z[xp.arange(logits.shape[0]), labels]).sum()
    correct = (logits.argmax(axis=1) == labels).sum()
    return total, correct
