"""The (i+1)-th smallest entry of a host float vector, np.partition(flat, i)[i] bit for bit, fast
where every sign bit is clear (|s|, NaN included): those floats order as their bit patterns b.

Radix select: a histogram of the top 14 bits names the bucket that holds rank i, and only that
bucket is partitioned.
Bracket (given a ``Near``, the last answer for a vector that has moved a little since, as scores
do in one optimiser step): with c = #{b < lo}, rank i lies in [lo, hi] = last ∓ w when
c ≤ i < c + #{lo ≤ b ≤ hi}, and is then the (i − c)-th smallest of those few; a miss doubles w
and falls back to the radix select, a bracket of more than 4,096 entries halves w. Either way the
answer is exact; the hint only decides how fast it comes.
Anything else (a sign bit set, a vector under 8,192 entries, an integer dtype) is np.partition.
"""
import numpy as np

_RADIX_MIN, _TOP, _WIDE = 1 << 13, 14, 1 << 12   # from 8,192 entries; 2¹⁴ buckets (a 128 KB count)
_UINT = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


class Near:
    """Where the last answer lay (its bit pattern) and the bracket's half-width w, in bit steps."""

    def __init__(self):
        self.bits = self.width = None


def smallest(flat, i, near=None):
    """np.partition(flat, i)[i]; ``near`` (a Near, updated here) for a vector that moves a little."""
    if flat.size < _RADIX_MIN or flat.dtype not in _UINT:
        return np.partition(flat, i)[i]
    bits = flat.view(_UINT[flat.dtype])
    if near is not None and near.bits is not None:
        if bits.max() >> np.uint8(8 * flat.itemsize - 1):       # a sign bit set: bit order is not value order
            return np.partition(flat, i)[i]
        got = _bracketed(bits, i, near)
        if got is not None:
            return got.view(flat.dtype)
    got = _radix(bits, i)
    if got is None:
        return np.partition(flat, i)[i]
    if near is not None:
        near.bits = int(got)
        near.width = near.width or 1 << (np.finfo(flat.dtype).nmant - 10)  # about 2⁻¹⁰ of a binade
    return got.view(flat.dtype)


def _radix(bits, i):
    """The (i+1)-th smallest bit pattern by a histogram of the top bits; None where a sign bit is set."""
    top = bits >> np.uint8(8 * bits.itemsize - _TOP)             # sign, exponent, first mantissa bits
    count = np.bincount(top, minlength=1 << _TOP)
    if count[1 << (_TOP - 1):].any():
        return None
    below = np.cumsum(count)
    b = int(np.searchsorted(below, i, side="right"))             # the bucket of rank i
    rest = i - (int(below[b - 1]) if b else 0)
    return np.partition(bits[top == b], rest)[rest]


def _bracketed(bits, i, near):
    """The (i+1)-th smallest bit pattern if it lies in near.bits ∓ near.width, else None (w doubled)."""
    t, w = bits.dtype.type, near.width
    lo, hi = t(max(near.bits - w, 0)), t(min(near.bits + w, np.iinfo(bits.dtype).max))
    below = int(np.count_nonzero(bits < lo))
    inside = bits[bits - lo <= hi - lo]                          # b − lo wraps round for b < lo
    if not below <= i < below + inside.size:
        near.width = 2 * w
        return None
    if inside.size > _WIDE:
        near.width = max(w // 2, 1)
    got = np.partition(inside, i - below)[i - below]
    near.bits = int(got)
    return got
