"""``python -m minilottery train``: one network, the papers' protocol by default."""
import json

import numpy as np

from minilottery.data import load_dataset
from minilottery.nn.models import MODELS, build_model
from minilottery.protocol import paper_protocol
from minilottery.rng import Streams
from minilottery.train import TrainConfig, train


def add_arguments(p):
    p.add_argument("--model", choices=MODELS, default="lenet_300_100")
    p.add_argument("--dataset", choices=("mnist", "cifar10"), default=None,
                   help="default: the paper's dataset for the model")
    p.add_argument("--iterations", type=int, default=None, help="default: the paper's")
    p.add_argument("--lr", type=float, default=None, help="default: the paper's")
    p.add_argument("--optimizer", choices=("adam", "sgd", "momentum"), default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--dropout", type=float, default=0.0,
                   help="dropout rate after hidden dense layers; conv nets then default to 3x the iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="where datasets are kept (default $MINILOTTERY_DATA or ./datasets)")
    p.add_argument("--mirror", default=None, help="folder or URL holding mnist/ and cifar10/ (default $MINILOTTERY_MIRROR)")
    p.add_argument("--json", default=None, help="write the summary and curves to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def config_from_args(args, proto):
    """A TrainConfig from the paper's protocol, overridden by explicit flags."""
    pick = lambda v, d: d if v is None else v  # noqa: E731
    return TrainConfig(iterations=pick(args.iterations, proto.iterations), lr=pick(args.lr, proto.lr),
                       batch_size=pick(args.batch_size, proto.batch_size),
                       optimizer=pick(args.optimizer, proto.optimizer),
                       eval_every=pick(args.eval_every, proto.eval_every))


def run(args):
    proto = paper_protocol(args.model, args.dropout)
    cfg = config_from_args(args, proto)
    dataset = args.dataset or proto.dataset
    data = load_dataset(dataset, data_dir=args.data_dir, mirror=args.mirror)
    rngs = Streams.from_seed(args.seed)
    model = build_model(args.model, rngs, dataset=dataset, dropout=args.dropout)
    res = train(model, data, cfg, rngs, progress=not args.quiet)
    print(f"{args.model} on {dataset}, seed {args.seed}, dropout {args.dropout}, {cfg}")
    print(f"early-stopping iteration {res.early_stop_iteration}: "
          f"test accuracy {100 * res.early_stop_test_acc:.2f}%  "
          f"(final {100 * res.final_test_acc:.2f}%, train {100 * res.final_train_acc:.2f}%)")
    if args.json:
        out = {"model": args.model, "dataset": dataset, "seed": args.seed, "dropout": args.dropout,
               "config": vars(cfg),
               **res.summary(), "curves": {k: np.asarray(v).tolist() for k, v in res.curves.items()}}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json}")
