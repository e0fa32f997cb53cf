"""Worker processes notice their coordinator's death and exit, and the resource tracker goes with them."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

COORDINATOR = """
    import time
    from multiprocessing import resource_tracker
    from minilottery.plan import Job, Local
    ex = Local(2)
    futures = [ex.submit(Job(time.sleep, (120,))) for _ in range(2)]
    while len(ex.last) < 2:                       # both jobs started (their workers are up)
        ex._drain()
        time.sleep(0.05)
    print(*ex.pool._processes, resource_tracker._resource_tracker._pid, flush=True)
    time.sleep(120)
"""


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(line for line in fh if line.startswith("State:")).split()[1] != "Z"
    except (FileNotFoundError, StopIteration):
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_workers_and_resource_tracker_exit_when_the_coordinator_is_killed():
    coord = subprocess.Popen([sys.executable, "-c", textwrap.dedent(COORDINATOR)], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    pids = []
    try:
        pids = [int(p) for p in coord.stdout.readline().split()]
        assert len(pids) == 3 and all(map(_alive, pids)), pids
        coord.send_signal(signal.SIGKILL)
        coord.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(map(_alive, pids)):
            time.sleep(0.1)
        assert not [p for p in pids if _alive(p)], ("orphans left running", [open(f"/proc/{p}/status").read()[:400].replace(chr(10), " ") for p in pids if _alive(p)])
    finally:
        coord.kill()
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
