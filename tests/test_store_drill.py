"""Kill drill: a writer SIGKILLed at random instants, rerun, equals an uninterrupted run bitwise.
Concurrency drill: three writers (one through a symlink) and a reader at once on one experiment.

More: ``python tests/store_drill.py --count 20``, ``python tests/store_drill.py --concurrent 20``.
"""
import pytest

from tests.store_drill import concurrency, drill


@pytest.mark.slow
def test_killed_writer_reruns_to_the_uninterrupted_result(tmp_path):
    lines = drill(3, tmp_path, seed=1, log=lambda line: None)
    assert len(lines) == 3


@pytest.mark.slow
def test_concurrent_writers_one_finishes_the_others_are_refused_and_readers_read(tmp_path):
    lines = concurrency(2, tmp_path, log=lambda line: None)
    assert len(lines) == 2
