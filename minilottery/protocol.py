"""The papers' hyperparameters, in one table (Frankle & Carbin 2019, Figure 2).

| model          | dataset | optimiser  | batch | iterations | conv / fc / output pruning per round |
|----------------|---------|------------|-------|------------|--------------------------------------|
| lenet_300_100  | mnist   | Adam 1.2e-3| 60    | 50,000     |  –  / 20% / 10%                      |
| conv2          | cifar10 | Adam 2e-4  | 60    | 20,000     | 10% / 20% / 10%                      |
| conv4          | cifar10 | Adam 3e-4  | 60    | 25,000     | 10% / 20% / 10%                      |
| conv6          | cifar10 | Adam 3e-4  | 60    | 30,000     | 15% / 20% / 10%                      |

With dropout (0.5) the conv networks train three times as long
(the paper's Appendix). Validation and test are evaluated every 100 iterations.
Deconstructing Lottery Tickets uses the same networks, rates and training.
"""
from dataclasses import dataclass, replace

from minilottery.errors import ConfigError
from minilottery.train import TrainConfig


@dataclass(frozen=True)
class Protocol:
    dataset: str
    train: TrainConfig
    conv_rate: float = 0.0      # fraction of remaining conv weights pruned per round
    fc_rate: float = 0.2        # hidden fully connected layers
    output_rate: float = 0.1    # the output layer, half the hidden rate


PAPER = {
    "lenet_300_100": Protocol("mnist", TrainConfig(iterations=50_000, lr=1.2e-3)),
    "conv2": Protocol("cifar10", TrainConfig(iterations=20_000, lr=2e-4), conv_rate=0.1),
    "conv4": Protocol("cifar10", TrainConfig(iterations=25_000, lr=3e-4), conv_rate=0.1),
    "conv6": Protocol("cifar10", TrainConfig(iterations=30_000, lr=3e-4), conv_rate=0.15),
}
DROPOUT_LENGTH_FACTOR = 3


def paper_protocol(model, dropout=0.0):
    """The paper's protocol for ``model``; a conv net with dropout trains 3× as long."""
    if model not in PAPER:
        raise ConfigError(f"unknown model {model!r}; choose one of {tuple(PAPER)}")
    p = PAPER[model]
    if dropout > 0 and p.conv_rate > 0:
        return replace(p, train=replace(p.train, iterations=DROPOUT_LENGTH_FACTOR * p.train.iterations))
    return p
