"""The project's expected failures: one base class, one line each at the command line.

Every error a user can cause by input (a bad option, a corrupt or locked file,
a dataset that cannot be had, a run that diverges, an unusable backend) is a
``MiniLotteryError``. The command wrapper prints its message as one line on
stderr and exits with code 2; anything else is a bug and keeps its traceback.
"""


def one_line(e):
    """An error's message on one line (HDF5 and OS errors span several)."""
    return " ".join(str(e).split())


class MiniLotteryError(Exception):
    """Base of every expected failure."""


class ConfigError(MiniLotteryError, ValueError):
    """An option, or a combination of options, that cannot be run."""


class StoreError(MiniLotteryError, RuntimeError):
    """An experiment store that is unreadable, corrupt, locked, or of another configuration."""


class DatasetError(MiniLotteryError):
    """A dataset file that is missing, corrupt, of the wrong format, or cannot be downloaded."""


class DivergenceError(MiniLotteryError, RuntimeError):
    """Training diverged (the rule is stated where it is raised, in train.py)."""


class BackendError(MiniLotteryError, RuntimeError):
    """The asked-for array backend is not usable on this machine."""
