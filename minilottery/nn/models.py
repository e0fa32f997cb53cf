"""The Lottery Ticket paper's networks (Frankle & Carbin 2019, Figure 2).

- LeNet-300-100: fully connected 784-300-100-10, ReLU.
- Conv-2 / Conv-4 / Conv-6: 3×3 convolutions (stride 1, 'same' padding) of
  64,64 [,128,128 [,256,256]] channels, 2×2 max-pool after each pair, then
  fully connected 256-256-10, ReLU.
The dropout variant puts inverted dropout after every hidden fully connected
layer. The last layer is marked as the output layer (``output = True``):
pruning treats it at its own rate.
"""
import numpy as np

from minilottery.nn.conv import Conv2d, MaxPool2d
from minilottery.nn.layers import Dense, Dropout, Flatten, ReLU
from minilottery.nn.sequential import Sequential

INPUT_SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
CONV_WIDTHS = {"conv2": (64,), "conv4": (64, 128), "conv6": (64, 128, 256)}


def _fc_head(layers, in_features, hidden, rngs, dropout, dtype):
    """Append fc1..fc3 with ReLU (and dropout) after each hidden layer."""
    sizes = (in_features,) + tuple(hidden) + (10,)
    for i in range(len(sizes) - 1):
        name = f"fc{i + 1}"
        layers.append((name, Dense(sizes[i], sizes[i + 1], rngs.init, dtype)))
        layers[-1][1].output = i == len(sizes) - 2
        if i < len(sizes) - 2:
            layers.append((f"relu_{name}", ReLU()))
            if dropout:
                layers.append((f"drop_{name}", Dropout(dropout, rngs.dropout)))
    return layers


def lenet_300_100(rngs, input_shape=(1, 28, 28), dropout=0.0, dtype=np.float32):
    """784-300-100-10 for MNIST: 266,200 weights and 410 biases."""
    layers = [("flatten", Flatten())]
    return Sequential(_fc_head(layers, int(np.prod(input_shape)), (300, 100), rngs, dropout, dtype), input_shape)


def conv_net(name, rngs, input_shape=(3, 32, 32), dropout=0.0, dtype=np.float32):
    """Conv-2, Conv-4 or Conv-6 (``name`` in CONV_WIDTHS)."""
    layers, shape, c_in, i = [], tuple(input_shape), input_shape[0], 0
    for width in CONV_WIDTHS[name]:
        for _ in range(2):
            i += 1
            conv = Conv2d(c_in, width, 3, rngs.init, padding=1, dtype=dtype, input_shape=shape)
            layers += [(f"conv{i}", conv), (f"relu_conv{i}", ReLU())]
            shape, c_in = conv.output_shape(shape), width
        pool = MaxPool2d(2, input_shape=shape)
        layers.append((f"pool{i // 2}", pool))
        shape = pool.output_shape(shape)
    layers.append(("flatten", Flatten()))
    return Sequential(_fc_head(layers, int(np.prod(shape)), (256, 256), rngs, dropout, dtype), input_shape)


MODELS = ("lenet_300_100", "conv2", "conv4", "conv6")


def build_model(name, rngs, dataset="mnist", dropout=0.0, dtype=np.float32):
    """Build a paper model by name for a dataset's input shape; rngs is an rng.Streams."""
    if dataset not in INPUT_SHAPES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {tuple(INPUT_SHAPES)}")
    shape = INPUT_SHAPES[dataset]
    if name == "lenet_300_100":
        return lenet_300_100(rngs, shape, dropout, dtype)
    if name in CONV_WIDTHS:
        return conv_net(name, rngs, shape, dropout, dtype)
    raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
