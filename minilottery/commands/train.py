"""``python -m minilottery train``: one network, the papers' protocol by default."""

import numpy as np

from minilottery import config
from minilottery.commands import add_io_arguments, check_writable, write_json
from minilottery.data import load_dataset
from minilottery.experiments.base import check_common
from minilottery.nn.models import INPUT_SHAPES, MODELS, build_model
from minilottery.protocol import paper_protocol
from minilottery.rng import Streams
from minilottery.train import TrainConfig, train


def add_arguments(p):
    p.add_argument("--model", choices=MODELS, default="lenet_300_100", help="network (default: lenet_300_100)")
    p.add_argument("--dataset", choices=tuple(INPUT_SHAPES), default=None,
                   help="dataset (default: the paper's for the model)")
    config.add_flags(p, TrainConfig, paper_defaults=TrainConfig.names())
    p.add_argument("--width", type=float, default=1.0,
                   help="channel multiplier of resnet20 and vgg* for CPU-sized runs (default: 1.0)")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="dropout rate after hidden dense layers; conv nets then default to 3x the iterations")
    p.add_argument("--seed", type=int, default=0, help="seed of θ0, data order and dropout (default: 0)")
    add_io_arguments(p, json_help="write the summary and curves to this JSON file")


def run(args):
    proto = paper_protocol(args.model, args.dropout)
    dataset = args.dataset or proto.dataset
    cfg = config.build(TrainConfig, config.to_dict(proto.train), config.overrides(args, TrainConfig), dataset)
    check_common(args.model, dataset, args.seed, {"": cfg}, args.dropout, args.width)
    check_writable(args.json, "--json")
    data = load_dataset(dataset, data_dir=args.data_dir, mirror=args.mirror)
    rngs = Streams.from_seed(args.seed)
    model = build_model(args.model, rngs, dataset=dataset, dropout=args.dropout, width=args.width)
    res = train(model, data, cfg, rngs, progress=not args.quiet)
    print(f"{args.model} on {dataset}, seed {args.seed}, dropout {args.dropout}, width {args.width}, {cfg}")
    print(f"early-stopping iteration {res.early_stop_iteration}: "
          f"test accuracy {100 * res.early_stop_test_acc:.2f}%  "
          f"(final {100 * res.final_test_acc:.2f}%, train {100 * res.final_train_acc:.2f}%)")
    if args.json:
        out = {"model": args.model, "dataset": dataset, "seed": args.seed, "dropout": args.dropout, "width": args.width,
               "config": config.to_dict(cfg),
               **res.summary(), "curves": {k: np.asarray(v).tolist() for k, v in res.curves.items()}}
        write_json(args.json, out)
        print(f"wrote {args.json}")
