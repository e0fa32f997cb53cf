"""The engine: layers with hand-derived backward passes, losses, optimisers, models."""
from minilottery.nn.conv import Conv2d, MaxPool2d
from minilottery.nn.layers import Dense, Dropout, Flatten, Layer, Prunable, ReLU
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.sequential import Sequential

__all__ = ["Conv2d", "Dense", "Dropout", "Flatten", "Layer", "MaxPool2d", "Prunable", "ReLU",
           "Sequential", "softmax_cross_entropy"]
