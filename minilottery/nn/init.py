"""Initialisations: Gaussian Glorot (the Lottery Ticket paper's LeNet and Conv-x), Kaiming normal
(open_lth's ResNet and VGG), zero biases. Drawn on the host, moved to the backend."""
import numpy as np

from minilottery.backend import asarray


def fans(shape):
    """(fan_in, fan_out) of a Dense (out, in) or Conv (out, in, kh, kw) weight."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def glorot_normal(shape, rng, dtype=np.float32):
    """W ~ N(0, 2 / (fan_in + fan_out)), drawn on the host, moved to the backend."""
    fan_in, fan_out = fans(shape)
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return asarray(rng.normal(0.0, std, size=shape).astype(dtype, copy=False))


def kaiming_normal(shape, rng, dtype=np.float32):
    """W ~ N(0, 2 / fan_in): PyTorch's kaiming_normal_ (mode fan_in, gain √2), as open_lth uses."""
    std = np.sqrt(2.0 / fans(shape)[0])
    return asarray(rng.normal(0.0, std, size=shape).astype(dtype, copy=False))


def zeros(shape, dtype=np.float32):
    return asarray(np.zeros(shape, dtype=dtype))
