"""Kill drill: a writer SIGKILLed at random instants, rerun, equals an uninterrupted run bitwise.

More instants: ``python tests/store_drill.py --count 20``.
"""
import pytest

from tests.store_drill import drill


@pytest.mark.slow
def test_killed_writer_reruns_to_the_uninterrupted_result(tmp_path):
    lines = drill(3, tmp_path, seed=1, log=lambda line: None)
    assert len(lines) == 3
