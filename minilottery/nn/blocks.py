"""Pieces of the deeper networks: the residual basic block, global average pooling, zero padding.

The basic block (He et al. 2016, the CIFAR ResNets; open_lth's ``cifar_resnet`` block):
    h = relu(bn1(conv1(x)))                 conv1 3×3, stride s, padding 1, no bias
    y = relu(bn2(conv2(h)) + shortcut(x))   conv2 3×3, stride 1, padding 1, no bias
    shortcut(x) = x                         where the shape is kept (s = 1, C_in = C_out)
                = bn_s(conv_s(x))           else: conv_s 1×1, stride s, no bias (``kind = "shortcut"``)
A block is one entry of a ``Sequential``; its layers are its ``children`` and are addressed
as ``"block.child.key"`` (``"block4.conv1.W"``, ``"block4.bn1.running_mean"``).
"""
import numpy as np

from minilottery.backend import xp_of
from minilottery.nn.conv import Conv2d
from minilottery.nn.init import kaiming_normal
from minilottery.nn.layers import Layer, ReLU
from minilottery.nn.norm import BatchNorm2d


class BasicBlock(Layer):
    """The residual basic block above; ``bn_uniform`` draws each γ ~ U(0, 1) from ``rng`` (open_lth)."""

    def __init__(self, in_channels, out_channels, stride, rng, dtype=np.float32, input_shape=None,
                 init=kaiming_normal, bn_uniform=False):
        super().__init__()
        bn_rng = rng if bn_uniform else None

        def conv(c_in, k, s, p):
            return Conv2d(c_in, out_channels, k, rng, stride=s, padding=p, dtype=dtype, bias=False, init=init)

        self.children = [("conv1", conv(in_channels, 3, stride, 1)), ("bn1", BatchNorm2d(out_channels, dtype, rng=bn_rng)),
                         ("relu1", ReLU()), ("conv2", conv(out_channels, 3, 1, 1)),
                         ("bn2", BatchNorm2d(out_channels, dtype, rng=bn_rng))]
        self.identity = stride == 1 and in_channels == out_channels
        if not self.identity:
            shortcut = conv(in_channels, 1, stride, 0)
            shortcut.kind = "shortcut"                         # what pruning sees: the paper leaves these dense
            self.children += [("shortcut", shortcut), ("shortcut_bn", BatchNorm2d(out_channels, dtype, rng=bn_rng))]
        self.relu = ReLU()
        self.main = [layer for _, layer in self.children[:5]]
        self.side = [layer for _, layer in self.children[5:]]
        if input_shape is not None:
            self.output_shape(input_shape)

    def output_shape(self, in_shape):
        main, side = tuple(in_shape), tuple(in_shape)
        for layer in self.main:
            main = layer.output_shape(main)
        for layer in self.side:
            side = layer.output_shape(side)
        if main != side:
            raise ValueError(f"BasicBlock: main path gives {main}, shortcut {side}")
        return main

    def forward(self, x, train=False):                          # x (N, C_in, H, W)
        h = x
        for layer in self.main:
            h = layer.forward(h, train)                          # bn2(conv2(relu(bn1(conv1(x)))))
        s = x
        for layer in self.side:
            s = layer.forward(s, train)                          # x, or bn_s(conv_s(x))
        return self.relu.forward(h + s, train)                   # (N, C_out, Ho, Wo)

    def backward(self, dy):
        # d = dy·1[h + s > 0] flows into both paths; ∂L/∂x = main path's dx + shortcut's dx (d itself for identity)
        d = self.relu.backward(dy)
        dh = d
        for layer in reversed(self.main):
            dh = layer.backward(dh)
        ds = d
        for layer in reversed(self.side):
            ds = layer.backward(ds)
        return dh + ds

    def __repr__(self):
        c1 = self.children[0][1]
        return (f"BasicBlock({c1.in_channels}, {c1.out_channels}, stride={c1.s[0]}, "
                f"shortcut={'identity' if self.identity else '1x1 conv + BN'})")


class GlobalAvgPool2d(Layer):
    """y[n, c] = Σ_{h,w} x[n, c, h, w] / (H·W)."""

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"GlobalAvgPool2d expected input of shape (N, C, H, W), got (N, {', '.join(map(str, in_shape))})")
        return (in_shape[0],)

    def forward(self, x, train=False):                          # (N, C, H, W) -> (N, C)
        self.shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dy):
        # ∂y[n, c]/∂x[n, c, h, w] = 1/(H·W)
        xp, (h, w) = xp_of(dy), self.shape[2:]
        dx = xp.empty(self.shape, dtype=dy.dtype)
        dx[...] = (dy / (h * w))[:, :, None, None]
        return dx


class ZeroPad2d(Layer):
    """y = x with ``pad`` zeros on every side of each map (grey 28×28 digits to VGG's 32×32)."""

    def __init__(self, pad):
        super().__init__()
        if int(pad) != pad or pad < 0:
            raise ValueError(f"ZeroPad2d needs a non-negative integer padding, got {pad}")
        self.pad = int(pad)

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"ZeroPad2d expected input of shape (N, C, H, W), got (N, {', '.join(map(str, in_shape))})")
        return (in_shape[0], in_shape[1] + 2 * self.pad, in_shape[2] + 2 * self.pad)

    def forward(self, x, train=False):
        p = self.pad
        return xp_of(x).pad(x, ((0, 0), (0, 0), (p, p), (p, p)))

    def backward(self, dy):
        # ∂y/∂x = 1 on the inner window, the padding has no source
        p, (h, w) = self.pad, dy.shape[2:]
        return dy[:, :, p:h - p, p:w - p]

    def __repr__(self):
        return f"ZeroPad2d({self.pad})"
