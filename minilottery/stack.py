"""Stacked runs: R independent runs of one architecture trained as one network (nn/stacked.py).

``train_stacked(nets, data, cfg, streams)`` trains the R networks together: their weights,
masks and optimiser state carry a leading run axis, every step takes one batch per run (each
from its own ``streams[r].data``), and evaluation reads every run's sums in one transfer.
Each run gets the TrainResult and the weights that ``train(nets[r], data, cfg, streams[r])``
gives it: bitwise, where the products keep their shapes (tests/test_stack.py).

In an experiment's plan, jobs that carry the same stack key (plan.Job.stack) and are ready
together (the trials of a level, a level's random controls) run as one ``StackedJob`` of up to
``--stack`` runs (``bundles``); each run's stored result is the one it gets alone.

On the CPU this removes the Python and launch overhead per run; on a GPU it turns R small,
launch-bound steps into one full one.
"""
import math
from dataclasses import dataclass

import numpy as np

from minilottery import backend, blas, executors
from minilottery.backend import resident, xp_of
from minilottery.data import Batches
from minilottery.nn.losses import softmax_cross_entropy
from minilottery.nn.stacked import StackedNet
from minilottery.progress import Progress
from minilottery.errors import DivergenceError
from minilottery.train import (CURVES, DIVERGENCE_FACTOR, check_divergence, evaluation_sums, not_finite,
                               read_together, result)


def train_stacked(nets, data, cfg, streams, progress=False, label=""):
    """Train ``nets`` (Sequentials of one architecture whose layers stack) in place, as one stacked network.

    streams: one rng.Streams per run. Returns one TrainResult per run, in order."""
    if len(streams) != len(nets):
        raise ValueError(f"{len(nets)} networks need as many streams, got {len(streams)}")
    model = StackedNet(nets)
    runs = model.runs
    opt = cfg.optimizer_for(model.params())
    limit = DIVERGENCE_FACTOR * math.log(model.output_shape[-1])
    batches = [Batches(*data.train, batch_size=cfg.batch_size, rng=s.data,
                       augment=cfg.augmentation(getattr(data, "name", None))) for s in streams]
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
                                 *evaluation_sums(model, *test, cfg.eval_batch),
                                 *(xp.isfinite(p).reshape(runs, -1).all(axis=1) for p in model.params().values()))
            for r in range(runs):                                   # (6 + parameters, R), one read
                lsum, n_right, vsum, v_right, tsum, t_right = (float(v) for v in sums[:6, r])
                run = f"{label}run {r} of the stack: "
                check_divergence(lsum / steps, limit, start, it, cfg, run)
                values = (it, lsum / steps, n_right / (steps * cfg.batch_size), vsum / val[0].shape[0],
                          v_right / val[0].shape[0], tsum / test[0].shape[0], t_right / test[0].shape[0])
                bad = not_finite(model, {"val_loss": values[3], "test_loss": values[5]}, sums[6:, r])
                if bad:
                    raise DivergenceError(f"{run}training diverged by iteration {it}: {', '.join(bad[:4])} "
                                          f"not finite (lr {cfg.lr}; try a smaller learning rate)")
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


@dataclass
class StackedJob:
    """Jobs of one stack key run as one (``fn_many`` of their args); the result is the list of theirs."""
    jobs: list

    def __call__(self):
        first = self.jobs[0]
        executors.announce(" + ".join(j.name for j in self.jobs))
        if backend.backend_name() != first.backend_name:
            backend.set_backend(first.backend_name)
        with blas.single_threaded():
            return first.stack[1]([j.args for j in self.jobs])


def bundles(ready, stack):
    """[(tasks, job)]: the ready (task, job) pairs, those of one stack key in runs of up to ``stack``."""
    out, groups = [], {}
    for task, job in ready:
        if stack > 1 and job.stack is not None:
            groups.setdefault(job.stack[0], []).append((task, job))
        else:
            out.append(([task], job))
    for pairs in groups.values():
        for i in range(0, len(pairs), stack):
            part = pairs[i:i + stack]
            out.append(([t for t, _ in part], part[0][1] if len(part) == 1 else StackedJob([j for _, j in part])))
    return out
