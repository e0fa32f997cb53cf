"""Stacked runs: R independent runs of one architecture trained as one network (nn/stacked.py).

``train_stacked(nets, data, cfg, streams)`` trains the R networks together: their weights,
masks and optimiser state carry a leading run axis, every step takes one batch per run (each
from its own ``streams[r].data``), and evaluation reads every run's sums in one transfer.
Each run gets the TrainResult and the weights that ``train(nets[r], data, cfg, streams[r])``
gives it: bitwise, where the products keep their shapes (tests/test_stack.py).

On the CPU this removes the Python and launch overhead per run; on a GPU it turns R small,
launch-bound steps into one full one.
"""
import math

import numpy as np

from minilottery.backend import resident, xp_of
from minilottery.data import Batches
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.stacked import StackedNet
from minilottery.progress import Progress
from minilottery.train import (CURVES, DIVERGENCE_FACTOR, check_divergence, evaluation_sums,
                               read_together, result)


def train_stacked(nets, data, cfg, streams, progress=False, label=""):
    """Train ``nets`` (Dense Sequentials of one architecture) in place, as one stacked network.

    streams: one rng.Streams per run. Returns one TrainResult per run, in order."""
    if len(streams) != len(nets):
        raise ValueError(f"{len(nets)} networks need as many streams, got {len(streams)}")
    model = StackedNet(nets)
    runs = model.runs
    opt = cfg.optimizer_for(model.params())
    limit = DIVERGENCE_FACTOR * math.log(model.output_shape[-1])
    batches = [Batches(*data.train, batch_size=cfg.batch_size, rng=s.data) for s in streams]
    val = tuple(resident(a) for a in data.val)
    test = tuple(resident(a) for a in data.test)
    xp, start = xp_of(val[0]), 1
    curves = [{k: [] for k in CURVES} for _ in range(runs)]
    bar = Progress(cfg.iterations, label=f"{label}{runs} stacked, iter ", enabled=progress)
    loss_sum, right = xp.zeros(runs, np.float64), xp.zeros(runs, np.int64)
    for it in range(1, cfg.iterations + 1):
        xb, yb = (xp.stack(parts) for parts in zip(*(next(b) for b in batches)))   # (R, N, ...)
        logits = model.forward(xb, train=True)
        loss, dlogits = softmax_cross_entropy(logits, yb)          # (R,): each run's mean loss
        model.backward(dlogits, input_grad=False)
        opt.lr = cfg.lr_at(it)
        opt.step(model.grads(), model.frozen())
        loss_sum += loss
        right += (logits.argmax(axis=-1) == yb).sum(axis=-1)
        if it % cfg.eval_every == 0 or it == cfg.iterations:
            steps = it - start + 1
            sums = read_together(loss_sum, right, *evaluation_sums(model, *val, cfg.eval_batch),
                                 *evaluation_sums(model, *test, cfg.eval_batch))   # (6, R), one read
            for r in range(runs):
                lsum, n_right, vsum, v_right, tsum, t_right = (float(v) for v in sums[:, r])
                check_divergence(lsum / steps, limit, start, it, cfg, f"{label}run {r} of the stack: ")
                values = (it, lsum / steps, n_right / (steps * cfg.batch_size), vsum / val[0].shape[0],
                          v_right / val[0].shape[0], tsum / test[0].shape[0], t_right / test[0].shape[0])
                for k, v in zip(CURVES, values):
                    curves[r][k].append(v)
            bar.update(it, train_loss=f"{float(sums[0].mean()) / steps:.4f} (mean of the runs)")
            loss_sum, right, start = xp.zeros(runs, np.float64), xp.zeros(runs, np.int64), it + 1
    train_x, train_y = (resident(a) for a in data.train)
    train_right = read_together(*evaluation_sums(model, train_x, train_y, cfg.eval_batch))[1]
    weights = model.get_weights()
    for r, net in enumerate(nets):                                  # each network ends as it would alone
        net.set_weights(model.run_weights(r, weights))
    return [result(curves[r], float(train_right[r]) / train_x.shape[0]) for r in range(runs)]
