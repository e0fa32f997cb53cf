"""The engine: layers with hand-derived backward passes, losses, optimisers, models."""
from minilottery.nn.blocks import BasicBlock, GlobalAvgPool2d, ZeroPad2d
from minilottery.nn.conv import Conv2d, MaxPool2d
from minilottery.nn.layers import Dense, Dropout, Flatten, Layer, Prunable, ReLU
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.norm import BatchNorm1d, BatchNorm2d
from minilottery.nn.sequential import Sequential

__all__ = ["BasicBlock", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dense", "Dropout", "Flatten",
           "GlobalAvgPool2d", "Layer", "MaxPool2d", "Prunable", "ReLU", "Sequential", "ZeroPad2d",
           "softmax_cross_entropy"]
