"""Speed benchmarks: the speed guard (guard.py) and its plain-NumPy yardstick (plain.py); stacked
runs against the same runs one by one (stack.py, ``bench --stack``)."""
