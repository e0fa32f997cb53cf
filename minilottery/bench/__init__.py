"""Speed benchmarks: the speed guard (guard.py) and its plain-NumPy yardstick (plain.py)."""
