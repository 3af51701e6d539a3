"""`longtail train` and `longtail evaluate`: the CLI wiring of ``longtail.train`` (torch is
imported only when these commands run; install with ``pip install -e .[train]``)."""

from __future__ import annotations

import sys
from pathlib import Path

from longtail.errors import InputError


def add_commands(sub, positive_int, seed) -> None:
    t = sub.add_parser("train", help="train a torchvision detector on synthetic, real or mixed data",
                       description="Train a torchvision detector (weights=None: nothing is downloaded) on one or more "
                       "datasets. Writes RUN_DIR/run.json, metrics.jsonl and checkpoint.pt (atomically); --resume "
                       "continues an interrupted run to the same result.")
    t.add_argument("--data", required=True, action="append", metavar="[NAME=]KIND:PATH",
                   help="a dataset: KIND is longtail|coco|kitti|yolo|mot (or give PATH and let the format be "
                   "detected); repeat for mixes; NAME (default: synthetic for longtail data, else real) names it in --mix")
    t.add_argument("--mix", metavar="NAME=SHARE,...", help="share of each named dataset in every batch (default equal)")
    t.add_argument("--model", default="fasterrcnn_mobilenet_v3_large_320_fpn", metavar="NAME",
                   help="torchvision detection model (default fasterrcnn_mobilenet_v3_large_320_fpn)")
    t.add_argument("--classes", metavar="A,B", help="longtail classes to detect (default: every detection target)")
    t.add_argument("--steps", required=True, type=positive_int, metavar="N", help="optimizer steps")
    t.add_argument("--batch", type=positive_int, default=4, metavar="B", help="images per step (default 4)")
    t.add_argument("--img-size", type=positive_int, nargs=2, metavar=("H", "W"), help="input size (default: the model's)")
    t.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory (new, or this run's)")
    t.add_argument("--seed", type=seed, default=0, metavar="S", help="run seed (default 0)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present")
    t.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its checkpoint")
    t.add_argument("--init", type=Path, metavar="PATH", help="start from a local checkpoint (weights_only load)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="COCO metrics of a checkpoint, overall and per condition",
                       description="Evaluate a checkpoint with pycocotools: AP, AP50, AP75, AP small/medium/large, "
                       "AR, per class, and per condition (weather, time of day, scenario, event) with image and "
                       "object counts.")
    e.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    e.add_argument("--data", required=True, metavar="KIND:PATH", help="test dataset")
    e.add_argument("--weights", default="ema", choices=["ema", "model"], help="EMA (default) or raw weights")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    e.add_argument("--out", type=Path, metavar="JSON", help="also write all numbers to this file")


def _named(specs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        head, sep, rest = spec.partition("=")
        if sep and ":" not in head and "/" not in head:
            name, ds = head, rest
        else:
            name, ds = ("synthetic" if spec.split(":", 1)[0] in ("longtail", "synthetic") else "real"), spec
        base, k = name, 2
        while name in out:
            name, k = f"{base}{k}", k + 1
        out[name] = ds
    return out


def cmd_train(args) -> int:
    from tqdm import tqdm

    from longtail.train.checkpoint import load_init
    from longtail.train.datasets import open_dataset
    from longtail.train.engine import SampledBatches, train
    from longtail.train.models import ModelSpec
    from longtail.train.sampler import parse_shares

    specs = _named(args.data)
    datasets = {name: open_dataset(ds) for name, ds in specs.items()}
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else None
    spec = ModelSpec(name=args.model, img_size=tuple(args.img_size) if args.img_size else None,
                     **({"classes": classes} if classes else {}))
    if len(datasets) == 1:
        if args.mix:
            raise InputError("--mix", None, "needs two or more --data")
        data = SampledBatches.single(next(iter(datasets.values())), args.steps, args.batch, args.seed)
    else:
        shares = parse_shares(args.mix) if args.mix else {n: 1.0 / len(datasets) for n in datasets}
        data = SampledBatches.mixed(datasets, shares, args.steps, args.batch, args.seed)
    model = spec.build(args.seed)
    if args.init:
        load_init(model, args.init)
    bar = tqdm(total=args.steps, unit="step", disable=args.quiet or None, file=sys.stderr)

    def progress(done: int, total: int, line: dict) -> None:
        bar.update(done - bar.n)
        bar.set_postfix(loss=f"{line.get('loss', float('nan')):.3f}", img_s=f"{line.get('images_per_s', 0):.1f}")

    try:
        res = train(model, data, args.steps, spec=spec, out_dir=args.out, seed=args.seed, device=args.device,
                    resume=args.resume, progress=progress,
                    run_info={"data": specs, "mix": args.mix, "init": str(args.init) if args.init else None})
    finally:
        bar.close()
    print(f"{res.out_dir}: {res.steps} steps ({res.steps - res.started_at} this run), "
          f"loss {res.last.get('loss', float('nan')):.3f}, checkpoint {res.checkpoint}")
    return 0


def cmd_evaluate(args) -> int:
    from longtail.atomic import write_json
    from longtail.train.datasets import open_dataset
    from longtail.train.engine import resolve_device
    from longtail.train.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, open_dataset(args.data), resolve_device(args.device),
                                 weights=args.weights)
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731 - no objects in the cell
    o = result["all"]
    print(f"{args.checkpoint} on {args.data}: AP {fmt(o['AP'])}, AP50 {fmt(o['AP50'])}, AP75 {fmt(o['AP75'])} "
          f"({o['images']} images, {o['objects']} objects)")
    for key, cells in result["by"].items():
        for value, m in cells.items():
            print(f"  {key}={value}: AP50 {fmt(m['AP50'])} ({m['images']} images, {m['objects']} objects)")
    if args.out:
        write_json(args.out, result)
    return 0
