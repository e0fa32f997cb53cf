"""The papers' hyperparameters, in one table (Frankle & Carbin 2019, Figure 2, §4 and App. I).

| model          | dataset | optimiser  | batch | iterations | conv / fc / output pruning per round |
|----------------|---------|------------|-------|------------|--------------------------------------|
| lenet_300_100  | mnist   | Adam 1.2e-3| 60    | 50,000     |  –  / 20% / 10%                      |
| conv2          | cifar10 | Adam 2e-4  | 60    | 20,000     | 10% / 20% / 10%                      |
| conv4          | cifar10 | Adam 3e-4  | 60    | 25,000     | 10% / 20% / 10%                      |
| conv6          | cifar10 | Adam 3e-4  | 60    | 30,000     | 15% / 20% / 10%                      |
| resnet20       | cifar10 | SGD 0.1, μ 0.9 | 128 | 30,000   | global 20%; shortcuts and output unpruned |
| vgg11/16/19    | cifar10 | SGD 0.1, μ 0.9 | 64  | 112,480  | global 20%; output unpruned          |

With dropout (0.5) the conv networks train three times as long
(the paper's Appendix). Validation and test are evaluated every 100 iterations.
Deconstructing Lottery Tickets uses the same networks, rates and training.

The deeper networks (§4, App. I): weight decay 1e-4 on every parameter (BatchNorm's γ and
β included, as open_lth's optimiser over ``model.parameters()``); the rate ÷10 at
iterations 20,000 and 25,000 (ResNet-20) or at epochs 80 and 120 = 56,240 and 84,360
(VGG, 703 batches of 64 per epoch of the 45,000 training images); augmentation: random
crop with 4-pixel padding and horizontal flip (crop only on MNIST); global magnitude
pruning of 20 % of the remaining prunable weights per round. Defaults are the paper's
standard rate without warmup; its warmup variants are ``--lr 0.03 --warmup 20000``
(ResNet-20) and ``--warmup 10000`` (VGG-19), in WARMUP. The paper trains only VGG-19;
VGG-11/16 take its protocol. Differences from open_lth's defaults, stated: open_lth
trains both for 160 epochs at batch 128 (ResNet-20's fc pruned there; here the paper's
choice), and its warmup factor is it/k with it counted from 0 (the first step at rate 0);
here t/k with t from 1.
"""
from dataclasses import dataclass, replace

from minilottery.errors import ConfigError
from minilottery.train import TrainConfig


@dataclass(frozen=True)
class Protocol:
    dataset: str
    train: TrainConfig
    conv_rate: float = 0.0      # fraction of remaining conv weights pruned per round
    fc_rate: float = 0.2        # hidden fully connected layers (the global rate under global pruning)
    output_rate: float = 0.1    # the output layer, half the hidden rate (0: never pruned)
    global_pruning: bool = False


def _deep(iterations, batch, milestones):
    sgd = TrainConfig(iterations=iterations, lr=0.1, batch_size=batch, optimizer="momentum", momentum=0.9,
                      weight_decay=1e-4, milestones=milestones, gamma=0.1, augment="standard")
    return Protocol("cifar10", sgd, conv_rate=0.2, fc_rate=0.2, output_rate=0.0, global_pruning=True)


VGG = _deep(112_480, 64, (56_240, 84_360))
PAPER = {
    "lenet_300_100": Protocol("mnist", TrainConfig(iterations=50_000, lr=1.2e-3)),
    "conv2": Protocol("cifar10", TrainConfig(iterations=20_000, lr=2e-4), conv_rate=0.1),
    "conv4": Protocol("cifar10", TrainConfig(iterations=25_000, lr=3e-4), conv_rate=0.1),
    "conv6": Protocol("cifar10", TrainConfig(iterations=30_000, lr=3e-4), conv_rate=0.15),
    "resnet20": _deep(30_000, 128, (20_000, 25_000)),
    "vgg11": VGG, "vgg16": VGG, "vgg19": VGG,
}
# the paper's warmup variants (§4): what changes from PAPER
WARMUP = {"resnet20": {"lr": 0.03, "warmup": 20_000}, "vgg11": {"warmup": 10_000},
          "vgg16": {"warmup": 10_000}, "vgg19": {"warmup": 10_000}}
DROPOUT_LENGTH_FACTOR = 3


def paper_protocol(model, dropout=0.0):
    """The paper's protocol for ``model``; a conv net with dropout trains 3× as long."""
    if model not in PAPER:
        raise ConfigError(f"unknown model {model!r}; choose one of {tuple(PAPER)}")
    p = PAPER[model]
    if dropout > 0 and p.conv_rate > 0:
        return replace(p, train=replace(p.train, iterations=DROPOUT_LENGTH_FACTOR * p.train.iterations))
    return p
