"""`longtail train` and `longtail evaluate`: the CLI wiring of ``longtail.train`` (torch is
imported only when these commands run; install with ``pip install -e .[train]``)."""

from __future__ import annotations

import sys
from pathlib import Path

from longtail.errors import InputError, ParameterError


BOX_HEAD_HELP = ("RoI box head: auto (default: layer for a fasterrcnn_* model, none for the others), layer (a "
                 "LayerNorm before each ReLU: keeps the head alive when trained on rendered scenes) or none "
                 "(torchvision's, the earlier default)")


def add_commands(sub, positive_int, seed) -> None:
    t = sub.add_parser("train", help="train a torchvision detector on synthetic, real or mixed data",
                       description="Train a torchvision detector (weights=None: nothing is downloaded) on one or more "
                       "datasets. Writes RUN_DIR/run.json, metrics.jsonl and checkpoint.pt (atomically); --resume "
                       "continues an interrupted run to the same result.")
    t.add_argument("--data", required=True, action="append", metavar="[NAME=]KIND:PATH",
                   help="a dataset: KIND is longtail|coco|kitti|yolo|mot (or give PATH and let the format be "
                   "detected); repeat for mixes; NAME (default: synthetic for longtail data, else real) names it "
                   "in --mix")
    t.add_argument("--mix", metavar="NAME=SHARE,...", help="share of each named dataset in every batch (default equal)")
    t.add_argument("--model", default="fasterrcnn_mobilenet_v3_large_320_fpn", metavar="NAME",
                   help="torchvision detection model (default fasterrcnn_mobilenet_v3_large_320_fpn)")
    t.add_argument("--box-head-norm", default="auto", metavar="NORM",
                   help=BOX_HEAD_HELP + "; with --init, auto keeps the base checkpoint's head")
    t.add_argument("--classes", metavar="A,B", help="longtail classes to detect (default: every detection target)")
    t.add_argument("--steps", required=True, type=positive_int, metavar="N", help="optimizer steps")
    t.add_argument("--batch", type=positive_int, default=4, metavar="B", help="images per step (default 4)")
    t.add_argument("--img-size", type=positive_int, nargs=2, metavar=("H", "W"),
                   help="input size (default: the model's)")
    t.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory (new, or this run's)")
    t.add_argument("--seed", type=seed, default=0, metavar="S", help="run seed (default 0)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present")
    t.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its checkpoint")
    t.add_argument("--init", type=Path, metavar="PATH", help="start from a local checkpoint (weights_only load)")
    t.add_argument("--init-parts", default="all", metavar="PARTS",
                   help="what --init takes: all (default) or backbone (backbone and FPN; fresh detection heads)")
    t.add_argument("--augment", metavar="PRESET[,PRESET]", help="weather stage on the fly: each image gets one "
                   "of these weather presets with probability --augment-p (real images: ground-plane depth prior)")
    t.add_argument("--augment-p", type=float, default=0.5, metavar="P", help="share of images augmented (default 0.5)")
    t.add_argument("--camera", type=Path, metavar="PLATE_DIR|camera.json",
                   help="camera of the real images for the depth prior and insertion (default: a level car camera "
                   "1.65 m up, 81 deg wide)")
    t.add_argument("--camera-height", type=float, default=1.65, metavar="M",
                   help="without --camera: the car camera's height above the road (default 1.65 m, KITTI's)")
    t.add_argument("--camera-pitch", type=float, default=0.0, metavar="DEG",
                   help="without --camera: its downward pitch (default 0)")
    t.add_argument("--camera-hfov", type=float, default=81.0, metavar="DEG",
                   help="without --camera: its horizontal field of view (default 81 deg)")
    t.add_argument("--insert", metavar="SCENARIO",
                   help="insert actors of this plate-style scenario (assets, counts, distances, headings) into the "
                   "real images on the fly, standing on --camera's ground plane, before --augment's weather")
    t.add_argument("--insert-p", type=float, default=0.5, metavar="P",
                   help="share of real images that get actors (default 0.5)")
    t.add_argument("--order", choices=["epochs", "stream"],
                   help="epochs (folders' default): each epoch a fresh permutation of all frames; stream (the "
                   "only order of a shard set, --data wds:PATH): shards in a seeded order per epoch, split across "
                   "--workers (and nodes), each worker's through a --shuffle-buffer. A folder in stream order "
                   "draws, step for step, what its shards (--shard-size) stream, so both train the same")
    t.add_argument("--shuffle-buffer", type=positive_int, metavar="N",
                   help="stream order: samples each worker's shuffle buffer holds (default 1000)")
    t.add_argument("--workers", type=int, metavar="N",
                   help="stream order: data-loader processes reading the shards, each its own stream; part of "
                   "the order, so fixed, never the machine's core count (default 2; 0 reads in this process)")
    t.add_argument("--shard-size", type=positive_int, metavar="N",
                   help="a folder in stream order: the shard size of the export whose stream it follows "
                   "(default 1000, the export's)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--dry-run", action="store_true",
                   help="only open and check every --data source (labels, and every image's header against the "
                   "size its labels give), print what would be trained on, and stop; writes nothing")

    c = sub.add_parser("compare", help="train real, synthetic and mixed arms; report AP per condition with plots",
                       description="Train every arm (real, synthetic, mixed, pretrain-finetune, real+weather, "
                       "real+plates, real+inserted, pretrained+real, pretrained+inserted) with the same step "
                       "budget (the pretrained arms start from a base model with a budget of its own), evaluate "
                       "each on held-out real frames, clear and under each weather preset, and write results.json, "
                       "report.md and report.html. Finished arms are skipped when rerun (resumable). Without --test "
                       "the real frames are split into train and test by contiguous blocks.")
    c.add_argument("--real", required=True, metavar="[KIND:]PATH", help="real training data (MOT, COCO, KITTI, YOLO)")
    c.add_argument("--synthetic", metavar="DIR",
                   help="longtail dataset (synthetic, mixed, pretrain-finetune, pretrained+real arms)")
    c.add_argument("--plates", metavar="DIR", help="longtail dataset rendered on your plate (real+plates arm)")
    c.add_argument("--insert", metavar="SCENARIO",
                   help="plate-style scenario of actors inserted into the real frames (real+inserted arm)")
    c.add_argument("--pretrain-steps", type=positive_int, metavar="N",
                   help="budget of a base detector trained once on --synthetic and fine-tuned by the "
                   "pretrained+real arm with the real arm's steps (a fair pretraining; adds the arm, and "
                   "pretrained+inserted with --insert: the real+inserted arm started from the same base)")
    c.add_argument("--pretrain-parts", metavar="PARTS",
                   help="what the pretrained arms take from the base model: all (default) or backbone (its "
                   "backbone and FPN, with fresh detection heads)")
    c.add_argument("--test", action="append", default=[], metavar="[KIND:]PATH",
                   help="held-out test set (repeatable); default: the last block of the real frames")
    c.add_argument("--out", required=True, type=Path, metavar="REPORT_DIR")
    c.add_argument("--preset", default="smoke", metavar="NAME",
                   help="smoke (plumbing, <10 min on 2 CPU cores), cpu (~35 min, numbers worth reading at one "
                   "seed), converged (cpu's setting at 1000 steps, where real-only has stopped improving on a CPU; "
                   "3 seeds, ~17 min a run) or full (for a GPU); the options below override it")
    c.add_argument("--model", metavar="NAME")
    c.add_argument("--box-head-norm", metavar="NORM",
                   help=BOX_HEAD_HELP)
    c.add_argument("--steps", type=positive_int, metavar="N")
    c.add_argument("--batch", type=positive_int, metavar="B")
    c.add_argument("--img-size", type=positive_int, nargs=2, metavar=("H", "W"))
    c.add_argument("--arms", metavar="A,B",
                   help="arms to run (default: all but real+plates, real+inserted and the pretrained arms, which come "
                   "with --plates, --insert and --pretrain-steps)")
    c.add_argument("--real-fractions", metavar="F,F", help="fractions of the real training frames, e.g. 0.1,0.25,1")
    c.add_argument("--seeds", type=positive_int, metavar="N", help="seeds per arm and fraction")
    c.add_argument("--only-seeds", metavar="S,S",
                   help="run and report only these of the seeds 0..N-1, e.g. 2 or 1,2: spread one comparison's "
                   "seeds over machines, copy their runs/ folders into one directory and rerun without it for the "
                   "joint report")
    c.add_argument("--robustness", metavar="PRESET,...", help="weather presets of the test conditions")
    c.add_argument("--severities", metavar="S,S", help="preset strengths of the robustness table (0..1)")
    c.add_argument("--real-camera", type=Path, metavar="PLATE_DIR|camera.json",
                   help="camera of the real footage (longtail plate fit) for the ground-plane depth prior")
    c.add_argument("--classes", metavar="A,B", help="classes to train and score (default: those the real data labels)")
    c.add_argument("--pretrained", action="store_true",
                   help="ImageNet backbone weights, only from the local torch cache (never downloaded)")
    c.add_argument("--synthetic-share", type=float, metavar="S",
                   help="share of rendered images in each batch of the mixed and real+plates arms (default 0.5)")
    c.add_argument("--sensor-augment", action="store_true",
                   help="randomise the camera of rendered frames while training (exposure, white balance, blur, "
                   "noise, JPEG): domain randomisation against the renderer's clean look")
    c.add_argument("--sweep", action="append", metavar="KNOB=FROM..TO:N",
                   help="robustness curve every arm is scored along (repeatable; replaces the preset's: cpu sweeps "
                   "fog.visibility_m=2000..30:8, full also night.skylight_ev=0..-8:9; 'none' for no curve); the "
                   "report shows each arm's AP50 against the value and its V50. Added to a finished comparison, "
                   "it scores the saved checkpoints without training again")
    c.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    c.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="COCO metrics of a checkpoint, overall and per condition",
                       description="Evaluate a checkpoint with pycocotools: AP, AP50, AP75, AP small/medium/large, "
                       "AR, per class, and per condition (weather, time of day, scenario, event) with image and "
                       "object counts.")
    e.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    e.add_argument("--data", required=True, metavar="KIND:PATH", help="test dataset")
    e.add_argument("--weights", default="ema", choices=["ema", "model"], help="EMA (default) or raw weights")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    e.add_argument("--out", type=Path, metavar="JSON", help="also write all numbers to this file")
    e.add_argument("--robustness", metavar="PRESET,...", help="also evaluate under these weather presets: AP per "
                   "preset and strength, mPC and rPC (Michaelis et al. 2019)")
    e.add_argument("--severities", default="0.25,0.5,0.75", metavar="S,S",
                   help="preset strengths (default 0.25,0.5,0.75)")
    e.add_argument("--camera", type=Path, metavar="PLATE_DIR|camera.json",
                   help="camera of real test images for the ground-plane depth prior; with --slices, objects "
                   "without a distance get the distance of the ground under their box's foot")
    e.add_argument("--sweep", action="append", metavar="KNOB=FROM..TO:N",
                   help="also evaluate with one weather parameter set to N physical values from FROM to TO "
                   "(repeatable): fog.visibility_m (metres, log-spaced), fog.beta_per_m (extinction, 1/m, "
                   "log-spaced) or night.skylight_ev (daylight left, stops, linear); AP50 and AP per value, and "
                   "where AP50 falls to half its clear value (V50, beta50, EV50). E.g. fog.visibility_m=2000..30:10")
    e.add_argument("--tags", type=Path, metavar="JSON|CSV",
                   help="per-image condition tags of a real test set (e.g. the conditions.json augment --ramp "
                   "writes): the breakdown by condition uses them")
    e.add_argument("--adapt", choices=["bn"],
                   help="also score with test-time adaptation along the data, in order: bn = batch-norm statistics "
                   "updated online from each frame before it is predicted (no labels read); printed next to the "
                   "unadapted numbers, per condition")
    e.add_argument("--adapt-momentum", type=float, default=0.1, metavar="M",
                   help="with --adapt bn: each frame's weight in the running statistics (default 0.1; 0 = none)")
    e.add_argument("--plot", type=Path, metavar="PNG",
                   help="with --sweep: AP50 against each swept value (default: <--out stem>_sweep.png next to --out)")
    e.add_argument("--slices", action="store_true",
                   help="failure slices: AP50 and recall at IoU 0.5 per condition value (image slices) and per "
                   "distance, box height, occlusion, truncation band and class (object slices), with support and "
                   "bootstrap intervals over images; prints the weakest, writes all to --out's JSON (slices)")
    e.add_argument("--min-support", type=int, metavar="N",
                   help="with --slices: fewest images (image slices) or objects (object slices) a ranked slice "
                   "has (default 10)")
    e.add_argument("--bootstrap", type=int, metavar="B",
                   help="with --slices: bootstrap resamples of the images for the 95 %% intervals (default 200; "
                   "0: none)")
    e.add_argument("--min-score", type=float, metavar="S",
                   help="with --slices: lowest detection score a recall counts (default 0.5)")


def _named(specs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        head, sep, rest = spec.partition("=")
        if sep and ":" not in head and "/" not in head:
            name, ds = head, rest
        else:
            name, ds = ("synthetic" if spec.split(":", 1)[0] in ("longtail", "synthetic", "wds", "webdataset")
                        else "real"), spec
        base, k = name, 2
        while name in out:
            name, k = f"{base}{k}", k + 1
        out[name] = ds
    return out


def _camera(args):
    """(GroundPrior, Plate or None) of the real images: --camera's plate or camera.json, else the
    car camera prior of --camera-height, --camera-pitch and --camera-hfov."""
    from pydantic import ValidationError

    from longtail.readers import validation_message
    from longtail.render.weather.transforms import FrameCamera
    from longtail.train.weather import GroundPrior
    from longtail.worlds.plates import load_camera, load_plate

    if args.camera:
        plate = load_plate(args.camera) if args.camera.is_dir() else None
        return GroundPrior(camera=load_camera(args.camera)), plate
    try:
        spec = FrameCamera(height_m=args.camera_height, pitch_deg=args.camera_pitch, hfov_deg=args.camera_hfov)
    except ValidationError as err:
        e = validation_message("camera prior", err)
        raise InputError(f"--camera-{(e.field or 'height').split('_')[0]}", None, e.problem) from None
    return GroundPrior(spec=spec), None


def _augment(args, prior):
    """--augment's weather stage (or None)."""
    if not args.augment:
        return None
    from longtail.train.weather import WeatherAugment

    return WeatherAugment(tuple(args.augment.split(",")), p=args.augment_p, prior=prior)


def _shard_set(spec: str) -> Path | None:
    """The path of a --data spec naming a WebDataset shard set (``wds:PATH``, or a directory
    holding shards.json), else None."""
    from longtail.train.datasets import detect_kind, parse_spec

    kind, path = parse_spec(spec)
    if kind is None and path.is_dir():
        kind = detect_kind(path)
    return path if kind == "wds" else None


def _stream_options(args, stream: bool) -> None:
    """Refuse the stream-order options where they do not apply."""
    if not stream:
        for flag, value in (("--shuffle-buffer", args.shuffle_buffer), ("--workers", args.workers),
                            ("--shard-size", args.shard_size)):
            if value is not None:
                raise InputError(flag, None, "applies to --order stream (and shard sets) only")
    if args.workers is not None and args.workers < 0:
        raise InputError("--workers", None, f"expected an integer >= 0, got {args.workers}")


def _train_stream(args, shards: Path, augment):
    """The batches of a run on a shard set, streamed (``longtail.train.stream``)."""
    from longtail.train.stream import StreamBatches, check_shards
    from longtail.train.stream_order import DEFAULT_BUFFER, DEFAULT_WORKERS

    if len(args.data) > 1:
        raise InputError("--data", None, "a shard set (wds:PATH) streams alone; to mix, give the folder datasets")
    if args.order == "epochs":
        raise InputError("--order", None, "epochs need random access; a shard set streams in stream order only")
    if args.shard_size is not None:
        raise InputError("--shard-size", None, "a shard set's comes from its shards.json")
    if args.insert:
        raise InputError("--insert", None, "needs a real dataset (coco, kitti, yolo, mot) among --data")
    _stream_options(args, True)
    if args.dry_run:
        found = check_shards(shards)
        print(f"synthetic: wds {shards}: {found['images']} images in {found['shards']} shards, every sha256 and "
              "record checked")
        return None
    return StreamBatches(shards, args.steps, args.batch, args.seed,
                         DEFAULT_BUFFER if args.shuffle_buffer is None else args.shuffle_buffer,
                         DEFAULT_WORKERS if args.workers is None else args.workers, augment)


def _stream_sampler(args, dataset):
    """--order stream over one random-access dataset: the order its shards would stream in."""
    from longtail.shards import DEFAULT_SHARD_SIZE
    from longtail.train.stream import node_info
    from longtail.train.stream_order import DEFAULT_BUFFER, DEFAULT_WORKERS, StreamSampler, StreamSpec

    rank, nodes = node_info()
    spec = StreamSpec(len(dataset), args.shard_size or DEFAULT_SHARD_SIZE, args.seed,
                      DEFAULT_BUFFER if args.shuffle_buffer is None else args.shuffle_buffer,
                      DEFAULT_WORKERS if args.workers is None else args.workers, rank, nodes)
    return StreamSampler(spec, args.steps, args.batch)


def cmd_train(args) -> int:
    from longtail.train.datasets import open_dataset
    from longtail.train.engine import SampledBatches
    from longtail.train.batching import parse_shares

    specs = _named(args.data)
    shards = [p for p in map(_shard_set, specs.values()) if p is not None]
    if shards:
        data = _train_stream(args, shards[0], _augment(args, _camera(args)[0]))
        return 0 if data is None else _train(args, specs, data)
    _stream_options(args, args.order == "stream")
    datasets = {name: open_dataset(ds) for name, ds in specs.items()}
    prior, plate = _camera(args)
    if args.insert and all(ds.kind == "longtail" for ds in datasets.values()):
        raise InputError("--insert", None, "needs a real dataset (coco, kitti, yolo, mot) among --data")
    if args.order == "stream" and len(datasets) > 1:
        raise InputError("--order", None, "stream order draws from one dataset; mixes draw in epochs")
    if args.dry_run:
        from longtail.train.entries import check_images

        for name, ds in datasets.items():
            check_images(ds)
            d = ds.describe()
            unmapped = ", ".join(f"{k} {v}" for k, v in d["unmapped"].items())
            print(f"{name}: {d['kind']} {d['path']}: {d['images']} images, {d['objects']} objects"
                  + (f" (classes not mapped, left out: {unmapped})" if unmapped else ""))
        return 0
    insert = None
    if args.insert:
        from longtail.train.insert import ActorBank, Inserter
        from longtail.worlds.scenario import load_scenario

        scenario = load_scenario(args.insert)
        inserter = Inserter(scenario, ActorBank(scenario), prior, p=args.insert_p, plate=plate)
        insert = {name: inserter for name, ds in datasets.items() if ds.kind != "longtail"}
    augment = _augment(args, prior)
    if len(datasets) == 1:
        if args.mix:
            raise InputError("--mix", None, "needs two or more --data")
        dataset = next(iter(datasets.values()))
        ins = next(iter(insert.values())) if insert else None
        if args.order == "stream":
            data = SampledBatches({"data": dataset}, _stream_sampler(args, dataset), {"data": augment} if augment
                                  else None, {"data": ins} if ins else None)
        else:
            data = SampledBatches.single(dataset, args.steps, args.batch, args.seed, augment, ins)
    else:
        shares = parse_shares(args.mix) if args.mix else {n: 1.0 / len(datasets) for n in datasets}
        data = SampledBatches.mixed(datasets, shares, args.steps, args.batch, args.seed,
                                    {n: augment for n in datasets} if augment else None, insert)
    return _train(args, specs, data)


def _train(args, specs: dict[str, str], data) -> int:
    from tqdm import tqdm

    from longtail.train.checkpoint import init_box_head_norm, load_init, read_torch_file
    from longtail.train.engine import train
    from longtail.train.models import ModelSpec, box_head_options, check_box_head_norm

    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else None
    norm = args.box_head_norm
    init = read_torch_file(args.init) if args.init else None  # read once: its head, then its weights
    if norm == "auto" and args.init:  # fine-tuning keeps the base's head (an older base has the plain one)
        norm = init_box_head_norm(init, args.model) or norm
    spec = ModelSpec(name=args.model, img_size=tuple(args.img_size) if args.img_size else None,
                     classes=classes or ModelSpec.classes,  # the field's default when none are given
                     options=box_head_options(check_box_head_norm(norm, args.model)))
    model = spec.build(args.seed)
    if args.init_parts != "all" and not args.init:
        raise ParameterError("init_parts", "needs --init (the checkpoint the parts come from)")
    if args.init:
        load_init(model, args.init, args.init_parts, data=init)
    bar = tqdm(total=args.steps, unit="step", disable=args.quiet or None, file=sys.stderr)

    def progress(done: int, total: int, line: dict) -> None:
        bar.update(done - bar.n)
        bar.set_postfix(loss=f"{line.get('loss', float('nan')):.3f}", img_s=f"{line.get('images_per_s', 0):.1f}")

    try:
        res = train(model, data, args.steps, spec=spec, out_dir=args.out, seed=args.seed, device=args.device,
                    resume=args.resume, progress=progress,
                    run_info={"sources": specs, "mix": args.mix, "init": str(args.init) if args.init else None,
                              **({"init_parts": args.init_parts} if args.init_parts != "all" else {}),
                              "camera": str(args.camera) if args.camera else None,
                              **({"insert": args.insert, "insert_p": args.insert_p} if args.insert else {})})
    finally:
        bar.close()
    print(f"{res.out_dir}: {res.steps} steps ({res.steps - res.started_at} this run), "
          f"loss {res.last.get('loss', float('nan')):.3f}, checkpoint {res.checkpoint}")
    return 0


def cmd_evaluate(args) -> int:
    from longtail.atomic import write_json
    from longtail.train.datasets import open_dataset
    from longtail.train.engine import resolve_device
    from longtail.train.evaluate import evaluate_detections, predict_checkpoint

    sweeps = _parse_sweeps(args)  # checked before any image is read
    slicing = _slice_config(args)
    if args.adapt and (args.robustness or sweeps):
        raise InputError("--adapt", None, "scores --data as one sequence; run --robustness and --sweep without it")
    if not 0.0 <= args.adapt_momentum <= 1.0:
        raise InputError("--adapt-momentum", None, f"expected a momentum in [0, 1], got {args.adapt_momentum:g}")
    dataset = open_dataset(args.data, tags=args.tags)
    device = resolve_device(args.device)
    detections, info = predict_checkpoint(args.checkpoint, dataset, device, weights=args.weights)
    result = {**evaluate_detections(dataset, detections), **info}
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731 - no objects in the cell
    o = result["all"]
    print(f"{args.checkpoint} on {args.data}: AP {fmt(o['AP'])}, AP50 {fmt(o['AP50'])}, AP75 {fmt(o['AP75'])} "
          f"({o['images']} images, {o['objects']} objects)")
    for key, cells in result["by"].items():
        for value, m in cells.items():
            print(f"  {key}={value}: AP50 {fmt(m['AP50'])} ({m['images']} images, {m['objects']} objects)")
    if slicing is not None:
        result["slices"] = _slices(args, dataset, detections, slicing)
    if args.robustness:
        from longtail.train.checkpoint import load_detector
        from longtail.train.weather import GroundPrior, robustness_table
        from longtail.worlds.plates import load_camera

        model, spec, _ = load_detector(args.checkpoint, args.weights)
        prior = GroundPrior(camera=load_camera(args.camera)) if args.camera else GroundPrior()
        severities = _numbers(args.severities, "--severities")
        if not severities or any(not 0 <= v <= 1 for v in severities):
            raise InputError("--severities", None, f"expected strengths in [0, 1], got {args.severities!r}")
        presets = _names(args.robustness)
        assert presets is not None  # args.robustness is set here
        table = robustness_table(model, dataset, presets, severities, prior, device, spec.labels, clear=o)
        for preset, by_s in table["presets"].items():
            cells = ", ".join(f"{s}: {fmt(m['AP50'])}" for s, m in by_s.items())
            print(f"  {preset}: AP50 {cells}")
        print(f"  mPC {fmt(table['mPC'])} (mean AP50 under weather), rPC {fmt(table['rPC'])} (mPC / clear AP50)")
        result["robustness"] = table
    if sweeps:
        result["sweeps"] = _sweeps(args, dataset, device, sweeps, o)
    if args.adapt:
        result["adapted"] = _adapted(args, dataset, device, result)
    if args.out:
        write_json(args.out, result)
    return 0


def _slice_config(args):
    """--slices' SliceConfig (None without --slices); its options alone are refused in one line."""
    options = {"min_support": args.min_support, "bootstrap": args.bootstrap, "min_score": args.min_score}
    if not args.slices:
        given = next((k for k, v in options.items() if v is not None), None)
        if given is not None:
            raise InputError(f"--{given.replace('_', '-')}", None, "needs --slices")
        return None
    from longtail.train.slices import SliceConfig

    return SliceConfig(**{k: v for k, v in options.items() if v is not None})  # ParameterError: shown as its flag


def _slices(args, dataset, detections: list[dict], config) -> dict:
    """``evaluate --slices``: the slices of the plain detections, the weakest printed as a table;
    with --camera, objects without a distance get their foot's."""
    from longtail.train.slices import add_foot_distances, compute_slices, slice_lines

    located = None
    if args.camera:
        from longtail.worlds.plates import load_camera

        located = add_foot_distances(dataset, load_camera(args.camera))
    result = compute_slices(dataset, detections, config)
    if located is not None:
        result["settings"]["foot_distance"] = {"camera": str(args.camera), "objects": located}
    for line in slice_lines(result):
        print(f"  {line}")
    return result


def _parse_sweeps(args) -> list:
    """(knob, values) of each --sweep; one line naming --sweep (exit 2) when one is wrong."""
    if not args.sweep:
        if args.plot:
            raise InputError("--plot", None, "needs one or more --sweep KNOB=FROM..TO:N")
        return []
    from longtail.train.weather import parse_sweep

    sweeps = [parse_sweep(text) for text in args.sweep]
    names = [knob.name for knob, _ in sweeps]
    if len(set(names)) < len(names):
        raise InputError("--sweep", None, f"expected each knob once, got {', '.join(names)}")
    return sweeps


def _sweeps(args, dataset, device, sweeps, clear: dict) -> dict:
    """``evaluate --sweep``: each knob's curve printed as a table, plotted to --plot (default
    <--out stem>_sweep.png), returned by knob name."""
    from longtail.atomic import write_bytes
    from longtail.train.checkpoint import load_detector
    from longtail.train.weather import GroundPrior, sweep_curve, sweep_lines, sweep_plot_png
    from longtail.worlds.plates import load_camera

    model, spec, _ = load_detector(args.checkpoint, args.weights)
    prior = GroundPrior(camera=load_camera(args.camera)) if args.camera else GroundPrior()
    out = {}
    for knob, values in sweeps:
        sweep = sweep_curve(model, dataset, knob, values, prior, device, spec.labels, clear=clear)
        print(f"  sweep {knob.name}:")
        for line in sweep_lines(sweep):
            print(f"    {line}")
        out[knob.name] = sweep
    plot = args.plot or (args.out.with_name(f"{args.out.stem}_sweep.png") if args.out else None)
    if plot is not None:
        write_bytes(plot, sweep_plot_png(list(out.values())))
        print(f"  sweep plot: {plot}")
    return out


def _adapted(args, dataset, device, plain: dict) -> dict:
    """``evaluate --adapt``: the metrics with test-time adaptation, printed against the plain ones."""
    from longtail.train.adapt import evaluate_adapted
    from longtail.train.checkpoint import load_detector

    model, spec, _ = load_detector(args.checkpoint, args.weights)
    res = evaluate_adapted(model, dataset, device, labels=spec.labels, method=args.adapt,
                           momentum=args.adapt_momentum)
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731 - no objects in the cell

    def delta(a, b) -> str:
        return "" if a is None or b is None else f" ({100 * (a - b):+.1f} points)"

    a, o = res["all"], plain["all"]
    print(f"  adapted ({args.adapt}, momentum {args.adapt_momentum:g}, {len(dataset)} frames in order): "
          f"AP {fmt(a['AP'])}, AP50 {fmt(a['AP50'])}{delta(a['AP50'], o['AP50'])}")
    for key, cells in res["by"].items():
        for value, m in cells.items():
            before = plain["by"].get(key, {}).get(value, {}).get("AP50")
            print(f"    {key}={value}: AP50 {fmt(m['AP50'])}{delta(m['AP50'], before)}")
    return res


def _numbers(text: str | None, name: str, kind: type = float) -> tuple | None:
    """Comma-separated numbers of ``kind`` (None when the option is not given)."""
    if text is None:
        return None
    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        what = "whole numbers" if kind is int else "numbers"
        raise InputError(name, None, f"expected {what} separated by commas, got {text!r}") from None


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(v.strip() for v in text.split(",") if v.strip())


def _compare_sweeps(texts: list[str] | None) -> tuple[str, ...] | None:
    """compare's --sweep values: None keeps the preset's, 'none' drops every curve."""
    if not texts:
        return None
    if [t.strip().lower() for t in texts] == ["none"]:
        return ()
    return tuple(t.strip() for t in texts)


class RunBars:
    """A step progress bar per training run (one after another) and log lines between them, for
    the commands that train several runs (compare, loop)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def step(self, done: int, total: int, line: dict) -> None:
        from tqdm import tqdm

        if self.quiet:
            return
        bar = self.bar
        if bar is None or bar.total != total or done <= bar.n:
            self.close()
            bar = self.bar = tqdm(total=total, unit="step", file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        bar.set_postfix(loss=f"{line.get('loss', float('nan')):.3f}", img_s=f"{line.get('images_per_s', 0):.1f}")

    def log(self, text: str) -> None:
        self.close()
        print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_compare(args) -> int:
    from longtail.train.compare import DEFAULT_ARMS, preset_config, run_compare

    arms = _names(args.arms)
    if arms is None:
        arms = DEFAULT_ARMS + (("real+plates",) if args.plates else ()) + (("real+inserted",) if args.insert else ()) \
            + (("pretrained+real",) if args.pretrain_steps else ()) \
            + (("pretrained+inserted",) if args.pretrain_steps and args.insert else ())
    cfg = preset_config(args.preset, model=args.model, steps=args.steps, batch=args.batch,
                        img_size=tuple(args.img_size) if args.img_size else None, arms=arms,
                        real_fractions=_numbers(args.real_fractions, "--real-fractions"), seeds=args.seeds,
                        robustness=_names(args.robustness), severities=_numbers(args.severities, "--severities"),
                        pretrained=args.pretrained or None, synthetic_share=args.synthetic_share,
                        sensor_augment=args.sensor_augment or None, pretrain_steps=args.pretrain_steps,
                        pretrain_parts=args.pretrain_parts, box_head_norm=args.box_head_norm,
                        sweeps=_compare_sweeps(args.sweep), only_seeds=_numbers(args.only_seeds, "--only-seeds", int))
    bars = RunBars(args.quiet)
    try:
        results = run_compare(args.real, args.synthetic, args.test, args.out, cfg, plates=args.plates,
                              real_camera=args.real_camera, classes=_names(args.classes), device=args.device,
                              log=bars.log, step_progress=bars.step, preset=args.preset, insert=args.insert)
    finally:
        bars.close()
    for v in results["summary"]["verdicts"]:
        print(f"- {v['text']}")
    print(f"{args.out}: results.json, report.md, report.html")
    return 0
