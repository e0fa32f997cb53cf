"""Speed benchmarks: the cases of ``python -m minilottery bench`` (cases.py), their PyTorch peers
(torch_peers.py) and measurement (measure.py); the speed guard (guard.py) and its plain-NumPy
yardstick (plain.py); Conv2d on the deeper nets' layer shapes (conv_shapes.py); stacked runs against
the same runs one by one (stack.py, ``bench --stack``)."""
