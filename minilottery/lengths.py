"""Training lengths in iterations or epochs, as users type them (open_lth's ``1000it`` / ``2ep``).

A length flag takes ``N`` or ``Nit`` (N iterations, i.e. mini-batches) or ``Nep``
(N epochs of the training split, fractions allowed). Epochs become iterations as
soon as the dataset and the batch size are known: ⌈N · N_train / batch⌉
(:func:`minilottery.data.epochs`), so a stored configuration always holds the
iteration count it ran, and ``2ep`` and the number it resolves to are the same
configuration.
"""
import argparse
import math

HELP = "; N or Nit iterations, or Nep epochs"


class Epochs(float):
    """A length given in epochs, not yet resolved to iterations."""

    def __repr__(self):
        return f"{float(self):g}ep"


def parse(text):
    """``"1000"`` / ``"1000it"`` -> 1000; ``"2ep"`` -> Epochs(2.0); anything else is refused."""
    t = str(text).strip().lower()
    try:
        if t.endswith("ep"):
            v = float(t[:-2])
            if not (v > 0 and math.isfinite(v)):
                raise ValueError
            return Epochs(v)
        return int(t[:-2] if t.endswith("it") else t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a length: N or Nit (iterations), or Nep (epochs), "
                                         f"e.g. 1000, 1000it, 2ep") from None


def iterations(value, dataset, batch_size):
    """``value`` in iterations: an int as it is, Epochs over ``dataset``'s training split at ``batch_size``."""
    if not isinstance(value, Epochs):
        return value
    from minilottery.data import SPLIT_SIZES, epochs
    if float(value).is_integer():
        return epochs(int(value), batch_size, dataset)
    return math.ceil(float(value) * SPLIT_SIZES[dataset][0] / batch_size)
