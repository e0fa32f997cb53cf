"""minilottery: the lottery-ticket literature in NumPy/CuPy, without autograd."""
from minilottery.backend import get_backend, set_backend, to_numpy, xp_of

__all__ = ["get_backend", "set_backend", "to_numpy", "xp_of"]
__version__ = "0.1.0"
