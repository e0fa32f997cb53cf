"""The Lottery Ticket paper's networks (Frankle & Carbin 2019, Figure 2).

- LeNet-300-100: fully connected 784-300-100-10, ReLU.
- Conv-2 / Conv-4 / Conv-6: 3×3 convolutions (stride 1, 'same' padding) of
  64,64 [,128,128 [,256,256]] channels, 2×2 max-pool after each pair, then
  fully connected 256-256-10, ReLU.
The dropout variant puts inverted dropout after every hidden fully connected
layer. The last layer is marked as the output layer (``output = True``):
pruning treats it at its own rate.

The deeper networks of the paper's Section 4, as open_lth's ``cifar_resnet_20`` and
``cifar_vgg_{11,16,19}`` (Kaiming-normal weights, N(0, 2/fan_in); BatchNorm γ ~ U(0, 1),
β = 0, open_lth's "uniform" BatchNorm init; LeNet and Conv-x keep Glorot):
- ResNet-20: 3×3 conv to 16 channels + BN + ReLU, three stages of three basic blocks
  (nn/blocks.py) at 16/32/64 channels, stride 2 and a 1×1 conv + BN shortcut where the
  shape changes, global average pooling, fc 64→10. 272,474 parameters (convs without bias,
  as open_lth), of which 2,560 shortcut and 640 output weights.
- VGG-11/16/19: 3×3 conv (with bias) + BN + ReLU per entry of the plan, 2×2 max-pool at
  each "M"; global average pooling (the 2×2 average pool of open_lth at 32×32 inputs) to
  512, fc 512→10. Grey 28×28 inputs are zero-padded to 32×32 first (the four pools need it).
``width`` multiplies every channel count (a float, rounded, at least 1) for CPU-sized runs.
"""
import numpy as np

from minilottery.nn.blocks import BasicBlock, GlobalAvgPool2d, ZeroPad2d
from minilottery.nn.conv import Conv2d, MaxPool2d
from minilottery.nn.init import kaiming_normal
from minilottery.nn.layers import Dense, Dropout, Flatten, ReLU
from minilottery.nn.norm import BatchNorm2d
from minilottery.nn.sequential import Sequential

INPUT_SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
CONV_WIDTHS = {"conv2": (64,), "conv4": (64, 128), "conv6": (64, 128, 256)}
RESNET_STAGES = {"resnet20": ((16, 3), (32, 3), (64, 3))}  # (channels, blocks) per stage
VGG_PLANS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512),
}
DEEP = tuple(RESNET_STAGES) + tuple(VGG_PLANS)  # the BatchNorm networks of the paper's Section 4


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


def scaled(channels, width):
    """A channel count times the width multiplier, rounded, at least 1."""
    return max(1, int(round(channels * width)))


def resnet(name, rngs, input_shape=(3, 32, 32), width=1.0, dtype=np.float32):
    """ResNet-20 (``name`` in RESNET_STAGES); see the module docstring."""
    rng, c = rngs.init, scaled(RESNET_STAGES[name][0][0], width)
    stem = Conv2d(input_shape[0], c, 3, rng, padding=1, dtype=dtype, input_shape=input_shape, bias=False,
                  init=kaiming_normal)
    layers = [("conv", stem), ("bn", BatchNorm2d(c, dtype, rng=rng)), ("relu", ReLU())]
    shape, i = stem.output_shape(input_shape), 0
    for stage, (channels, blocks) in enumerate(RESNET_STAGES[name]):
        for b in range(blocks):
            i += 1
            stride = 2 if stage > 0 and b == 0 else 1
            block = BasicBlock(shape[0], scaled(channels, width), stride, rng, dtype, shape, bn_uniform=True)
            layers.append((f"block{i}", block))
            shape = block.output_shape(shape)
    return _gap_head(layers, shape, rng, dtype, input_shape)


def vgg(name, rngs, input_shape=(3, 32, 32), width=1.0, dtype=np.float32):
    """VGG-11/16/19 (``name`` in VGG_PLANS); see the module docstring."""
    rng, shape, layers, i = rngs.init, tuple(input_shape), [], 0
    if shape[1:] == (28, 28):
        layers.append(("pad", ZeroPad2d(2)))
        shape = layers[-1][1].output_shape(shape)
    for spec in VGG_PLANS[name]:
        if spec == "M":
            layers.append((f"pool{i}", MaxPool2d(2, input_shape=shape)))
        else:
            i += 1
            conv = Conv2d(shape[0], scaled(spec, width), 3, rng, padding=1, dtype=dtype, input_shape=shape,
                          init=kaiming_normal)
            layers += [(f"conv{i}", conv), (f"bn{i}", BatchNorm2d(conv.out_channels, dtype, rng=rng)),
                       (f"relu{i}", ReLU())]
        shape = layers[-1][1].output_shape(shape) if spec == "M" else conv.output_shape(shape)
    return _gap_head(layers, shape, rng, dtype, input_shape)


def _gap_head(layers, shape, rng, dtype, input_shape):
    """Global average pooling and the output layer fc (Kaiming normal, zero bias)."""
    fc = Dense(shape[0], 10, rng, dtype, init=kaiming_normal)
    fc.output = True
    return Sequential(layers + [("pool", GlobalAvgPool2d()), ("fc", fc)], input_shape)


MODELS = ("lenet_300_100", "conv2", "conv4", "conv6") + DEEP


def width_error(name, width):
    """Why ``width`` does not fit model ``name`` (a one-line message), or None."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not (width > 0 and np.isfinite(width)):
        return f"width must be a positive number, got {width!r}"
    if width != 1.0 and name not in DEEP:
        return f"width applies to {DEEP} only, not {name!r}"
    return None


def build_model(name, rngs, dataset="mnist", dropout=0.0, dtype=np.float32, width=1.0):
    """Build a paper model by name for a dataset's input shape; rngs is an rng.Streams.

    ``width`` (deeper networks only) multiplies their channel counts.
    """
    if dataset not in INPUT_SHAPES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {tuple(INPUT_SHAPES)}")
    if width_error(name, width):
        raise ValueError(width_error(name, width))
    if dropout and name in DEEP:
        raise ValueError(f"dropout applies to LeNet and Conv-x only, not {name!r}")
    shape = INPUT_SHAPES[dataset]
    if name == "lenet_300_100":
        return lenet_300_100(rngs, shape, dropout, dtype)
    if name in CONV_WIDTHS:
        return conv_net(name, rngs, shape, dropout, dtype)
    if name in RESNET_STAGES:
        return resnet(name, rngs, shape, width, dtype)
    if name in VGG_PLANS:
        return vgg(name, rngs, shape, width, dtype)
    raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
