import contextlib
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

DEVICES = ["strict", pytest.param("cupy", marks=requires_gpu)]


@pytest.fixture(params=DEVICES)
def device(request):
    """The CuPy path, as the active backend: on the strict stand-in (tests/strict_cupy.py, always)
    and on CuPy (where a GPU is present). Yields the array module; NumPy is active again after."""
    from tests import strict_cupy
    ctx = strict_cupy.installed() if request.param == "strict" else contextlib.nullcontext()
    with ctx:
        try:
            xp = backend.set_backend("cupy")
            strict_cupy.SYNCS.reset()
            yield xp
        finally:
            backend.set_backend("numpy")


@pytest.fixture
def syncs(device):
    """The stand-in's synchronisation counter (tests that count syncs run on the stand-in only)."""
    from tests import strict_cupy
    if device is not strict_cupy:
        pytest.skip("synchronisations are counted on the strict stand-in")
    return strict_cupy.SYNCS


def pytest_collection_modifyitems(config, items):
    """Every test of the CuPy path (one that uses the ``device`` fixture) is marked ``cupy_path``."""
    for item in items:
        if "device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cupy_path)
