"""minilottery: the lottery-ticket literature in NumPy/CuPy, without autograd.

The public API (minilottery/api.py): ``configure(kind, **settings)`` the papers' protocol with overrides,
``run(cfg, out)`` an experiment run, resumed or grown without printing, ``open(path)`` a stored one,
whose ``rows()``, ``curves(group)`` and ``table()`` are plain Python and NumPy.
"""
from minilottery.api import Results, configure, default_out, kinds, open, run
from minilottery.backend import get_backend, set_backend, to_numpy, xp_of

__all__ = ["Results", "configure", "default_out", "get_backend", "kinds", "open", "run", "set_backend", "to_numpy",
           "xp_of"]
__version__ = "0.1.0"
