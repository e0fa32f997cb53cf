"""minilottery as a library: an IMP experiment from a config object, its results as plain Python / NumPy.

    python examples/library.py [OUT.h5] [LENGTH]     # LENGTH per run, default 1ep (917 iterations)
"""
import sys

import minilottery as ml

out = sys.argv[1] if len(sys.argv) > 1 else "runs/library_example.h5"
length = sys.argv[2] if len(sys.argv) > 2 else "1ep"
cfg = ml.configure("imp", model="lenet_300_100", iterations=length, eval_every=50, rounds=3)
exp = ml.run(cfg, out)                                     # runs, or resumes, or grows; prints nothing
for row in exp.rows():
    if row["kind"] == "ticket":
        print(f"Pm {100 * row['Pm']:5.1f}%  early stop {row['early_stop_iteration']:4d}  "
              f"test {100 * row['early_stop_test_acc']:.2f}%  train {100 * row['final_train_acc']:.2f}%")
curve = exp.curves(exp.rows()[-1]["group"])                # {name: numpy array}
print(f"{len(curve['iteration'])} evaluations; best test accuracy {100 * curve['test_acc'].max():.2f}%")
