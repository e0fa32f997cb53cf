import os
from pathlib import Path

import pytest

from minilottery import backend

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def mnist_mirror():
    """The MNIST mirror for tests: $MINILOTTERY_MIRROR, else ../shared/datasets if present."""
    m = os.environ.get("MINILOTTERY_MIRROR")
    if m:
        return m
    if (SHARED / "mnist").is_dir():
        return SHARED.as_uri()
    return None


@pytest.fixture(scope="session")
def mirror():
    m = mnist_mirror()
    if m is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs MNIST: set MINILOTTERY_MIRROR or provide ../shared/datasets")
        pytest.skip("no MNIST mirror (set MINILOTTERY_MIRROR to a folder or file:// URL)")
    return m


requires_gpu = pytest.mark.skipif(not backend.cupy_available(), reason="CuPy with a GPU is not available")
