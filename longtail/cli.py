"""The ``longtail`` command line. Library code raises LongtailError; only this module prints
messages and chooses exit codes (0 ok, 1 failed, 2 bad input)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import NoReturn

from longtail import __version__
from longtail.errors import InputError, LongtailError, ParameterError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
MAX_FINDINGS_SHOWN = 20  # verify prints this many findings and a count of the rest


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer below 2**63, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="longtail", description="Synthetic driving data for the long tail: rare conditions and "
                 "rare events, rendered headlessly with pixel-exact labels.")
    ap.add_argument("--version", action="version", version=f"longtail {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("render", help="render a labelled dataset from a scenario",
                       description="Render N frames of a scenario into a dataset directory (RGB, depth, instance "
                       "and semantic PNGs, per-frame label JSON, coco.json, manifest.json). Rerunning the same "
                       "command resumes an interrupted run.")
    r.add_argument("--scenario", required=True, metavar="NAME_OR_PATH",
                   help="built-in scenario name (see `longtail scenarios`) or path to a scenario YAML file")
    r.add_argument("--frames", required=True, type=_positive_int, metavar="N", help="number of frames to render")
    r.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output directory: new, empty, or holding this same dataset (resume)")
    r.add_argument("--seed", type=_seed, default=None, metavar="S",
                   help="dataset seed; frame i draws from seed S and index i (default: a fresh random seed, "
                   "printed and written to the manifest)")
    r.add_argument("--workers", type=_positive_int, default=None, metavar="K",
                   help="worker processes, one renderer each (default 1); with --backend ray and no --address, the "
                   "CPUs of the local Ray instance (default: all); output bytes do not depend on K")
    r.add_argument("--backend", choices=("process", "ray"), default="process",
                   help="process: a pool of --workers processes on this machine (default); ray: shards of frames as "
                   "Ray tasks of one CPU each, retried when a worker or node dies (pip install 'longtail[ray]')")
    r.add_argument("--address", default=None, metavar="ADDR",
                   help="with --backend ray: the cluster to join (host:port from `ray start --head`, or auto); "
                   "default: start a local Ray instance. --out must be on a filesystem every node sees")
    r.add_argument("--width", type=_positive_int, default=None, metavar="W",
                   help="image width in pixels (default: the scenario's camera, 640)")
    r.add_argument("--height", type=_positive_int, default=None, metavar="H",
                   help="image height in pixels (default: the scenario's camera, 384)")
    r.add_argument("--sequence", type=_positive_int, default=1, metavar="T",
                   help="render runs of T consecutive frames (0.1 s apart) with moving actors and stable track "
                   "ids; frame i is step i %% T of run i // T (default 1: independent frames)")
    r.add_argument("--shards", action="store_true",
                   help="write the dataset as WebDataset tar shards (the layout of `export --format webdataset`): "
                   "frames are rendered into a hidden sibling folder .OUT.frames, packed, and that folder removed")
    r.add_argument("--shard-size", type=_positive_int, default=None, metavar="N",
                   help="frames per shard with --shards (default 1000)")
    r.add_argument("--preview", type=Path, default=None, metavar="PNG",
                   help="also write a gallery of the first frames: RGB with boxes | semantic | instance | depth")
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    ls = sub.add_parser("scenarios", help="list the built-in scenarios, one line each",
                        description="List the built-in scenarios with their one-line description.")
    ls.add_argument("--contact-sheet", type=Path, metavar="PNG",
                    help="also render frame 0 of every scenario (boxes drawn: red = the rare event) into one image")
    ls.add_argument("--seed", type=_seed, default=0, metavar="S", help="seed for the contact sheet (default 0)")

    ex = sub.add_parser("export", help="export a dataset to COCO, KITTI, YOLO, Cityscapes or WebDataset shards",
                        description="Write a rendered dataset in a standard format. Objects of kept classes that "
                        "fail the filters become ignore regions (COCO iscrowd, KITTI DontCare, Cityscapes "
                        "instance-less pixels; YOLO has none, so they are left out). webdataset: tar shards, one "
                        "sample per frame holding its files as they are, a COCO file per shard and shards.json "
                        "(written last); rerunning the same command resumes an interrupted export.")
    ex.add_argument("dir", type=Path, metavar="DIR", help="a complete longtail dataset (or, except for webdataset, "
                    "a shard set written by --format webdataset)")
    ex.add_argument("--out", required=True, type=Path, metavar="OUT",
                    help="output directory: new, empty, or an earlier export of the same format (replaced; "
                    "webdataset: resumed)")
    ex.add_argument("--format", required=True, choices=["coco", "kitti", "yolo", "cityscapes", "webdataset"],
                    help="target format")
    ex.add_argument("--shard-size", type=_positive_int, default=None, metavar="N",
                    help="webdataset: frames per shard (default 1000)")
    ex.add_argument("--min-visible-px", type=int, default=1, metavar="N",
                    help="objects with fewer visible pixels become ignore regions (default 1)")
    ex.add_argument("--max-occlusion", type=float, default=1.0, metavar="X",
                    help="objects more occluded than this fraction become ignore regions (default 1.0: keep all)")
    ex.add_argument("--classes", default=None, metavar="A,B",
                    help="comma-separated classes to keep (default: every detection target)")

    au = sub.add_parser("augment", help="write a new dataset with weather applied to a saved one",
                        description="Apply weather to saved footage using its depth. --preset: a weather preset on "
                        "every frame of a longtail dataset, into a new dataset (own manifest; labels pass through "
                        "with per-object visibility). --ramp: one physical weather knob changing from FROM to TO "
                        "across a sequence, every frame recording the value applied: over each run of a longtail "
                        "dataset's --sequence (independent frames: the whole dataset is one ramp), or over a "
                        "MOTChallenge sequence (img1/, gt/gt.txt) with a ground-plane depth prior, written as a "
                        "MOTChallenge sequence with conditions.json (condition tags) and ramp.json.")
    au.add_argument("src", type=Path, metavar="IN_DIR", help="a complete longtail dataset, or (--ramp) a "
                    "MOTChallenge sequence")
    au.add_argument("out", type=Path, metavar="OUT_DIR", help="new or empty directory")
    how = au.add_mutually_exclusive_group(required=True)
    how.add_argument("--preset", metavar="NAME",
                     help="weather preset: light_fog, dense_fog, ground_fog, heavy_rain, night_rain, heavy_snow, "
                     "low_sun, dusk, night")
    how.add_argument("--ramp", metavar="KNOB=FROM..TO[:log|linear]",
                     help="ramp one knob across the sequence: fog.visibility_m (m), fog.beta_per_m (1/m) or "
                     "night.skylight_ev (EV); default spacing log for fog, linear for EV "
                     "(e.g. fog.visibility_m=1500..30)")
    au.add_argument("--variants", type=_positive_int, default=1, metavar="N",
                    help="augmented copies per frame (--preset only)")
    au.add_argument("--strength", type=float, default=None, metavar="X",
                    help="preset strength, 0..1 (default 1; --preset only)")
    au.add_argument("--camera", type=Path, default=None, metavar="PLATE_DIR|camera.json",
                    help="--ramp over a MOTChallenge sequence: the camera `longtail plate fit` fitted to it, for "
                    "the ground-plane depth (default: a level car camera)")
    au.add_argument("--seed", type=_seed, default=0, metavar="S", help="seed of the weather draws (default 0)")
    au.add_argument("--quiet", action="store_true", help="no progress bar")

    vf = sub.add_parser("verify", help="re-check a dataset from disk; list every problem found",
                        description="Re-check a dataset: checksums against the manifest, every file present and "
                        "decodable, boxes equal to mask extents, ids consistent, depth valid on objects, COCO "
                        "consistent. Prints one line per finding; exit code 1 if there is any.")
    vf.add_argument("dir", type=Path, metavar="DIR", help="a longtail dataset")
    st = sub.add_parser("stats", help="write an HTML report with plots of what a dataset covers",
                        description="Objects per class and condition, distance, box size, occlusion and truncation "
                        "histograms, and rare-event coverage, as one self-contained HTML file.")
    st.add_argument("dir", type=Path, metavar="DIR", help="a longtail dataset")
    st.add_argument("--out", type=Path, default=None, metavar="HTML", help="report path (default DIR/stats.html)")

    pl = sub.add_parser("plate", help="fit a background plate and camera to a static camera's footage",
                        description="Real plates: the user's own static-camera footage as the background.")
    pls = pl.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    pf = pls.add_parser("fit", help="make PLATE_DIR from footage: median background, camera, depth, sky",
                        description="From frames of a static camera (a MOTChallenge sequence, a folder of images or "
                        "one image) make the background plate (temporal median: moving people vanish), the "
                        "camera model (give exactly one way), a ground-plane depth map and the airlight colour. "
                        "Prints the reprojection error of a fitted camera.")
    pf.add_argument("source", type=Path, metavar="FRAMES_OR_SEQUENCE")
    pf.add_argument("--out", required=True, type=Path, metavar="PLATE_DIR", help="new or empty directory")
    pf.add_argument("--camera", type=Path, metavar="YAML",
                    help="explicit intrinsics (fx or hfov_deg, cx, cy) and extrinsics (height_m, pitch_deg, ...)")
    pf.add_argument("--correspondences", metavar="CSV|gt",
                    help="image <-> ground points, rows u,v,x,y (pixels, metres; >= 4 points), or 'gt' for the "
                    "foot positions in a MOTChallenge sequence's gt/gt.txt (columns 8-9)")
    pf.add_argument("--horizon-row", type=float, metavar="ROW", help="horizon row (with --camera-height, --focal)")
    pf.add_argument("--camera-height", type=float, metavar="M", help="camera height above the ground, metres")
    pf.add_argument("--focal", type=float, metavar="PX", help="focal length in pixels")
    pf.add_argument("--occluder", type=Path, action="append", metavar="PNG",
                    help="mask of static occluders (nonzero) that stay in front of inserted objects; repeatable")
    pf.add_argument("--max-frames", type=_positive_int, default=200, metavar="N",
                    help="frames sampled evenly for the median (default 200)")

    tg = sub.add_parser("target", help="turn the weakest slices of `evaluate --slices` into a targeted scenario",
                        description="Read the ranked slices of `longtail evaluate --slices --out EVAL_JSON` and write "
                        "a copy of the base scenario whose every frame aims at the weakest slices a scenario knob "
                        "can reach (visibility and hour ranges, distances, pixel sizes via distances, crowding). "
                        "The YAML's header says which slice became which knob and which were skipped, and why.")
    tg.add_argument("eval_json", type=Path, metavar="EVAL_JSON", help="the JSON written by `evaluate --slices --out`")
    tg.add_argument("--scenario", required=True, metavar="NAME_OR_PATH", help="the base scenario")
    tg.add_argument("--out", required=True, type=Path, metavar="YAML", help="the targeted scenario file to write")
    tg.add_argument("--top", type=_positive_int, default=1, metavar="N",
                    help="aim at the N weakest reachable slices (default 1); their knobs compose")
    tg.add_argument("--classes", default=None, metavar="A,B",
                    help="classes the detector was scored on (default: those the evaluation names, else person,car)")
    sc = sub.add_parser("scenario", help="validate, sample or describe scenario files",
                        description="Work with scenario files.")
    scs = sc.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    v = scs.add_parser("validate", help="check a scenario file against the schema",
                       description="Check a scenario file; print one line naming the first problem, or OK.")
    v.add_argument("file", metavar="NAME_OR_PATH", help="scenario YAML file or built-in name")
    scs.add_parser("schema", help="print the scenario JSON Schema", description="Print the scenario JSON Schema.")
    s = scs.add_parser("sample", help="print the concrete Scene of one frame as JSON",
                       description="Sample a scenario for (seed, index) and print the Scene JSON.")
    s.add_argument("file", metavar="NAME_OR_PATH", help="scenario YAML file or built-in name")
    s.add_argument("--seed", type=_seed, default=0, metavar="S", help="dataset seed (default 0)")
    s.add_argument("--index", type=_seed, default=0, metavar="I", help="frame index (default 0)")
    from longtail.cli_train import add_commands

    add_commands(sub, _positive_int, _seed)
    from longtail.cli_editor import add_command as add_editor

    add_editor(sub, _positive_int)
    from longtail.cli_loop import add_command as add_loop

    add_loop(sub, _positive_int)
    return ap


def _cmd_render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from longtail.pipeline import render_dataset
    from longtail.seeding import fresh_seed
    from longtail.worlds.scenario import load_scenario

    scenario = load_scenario(args.scenario).with_resolution(args.width, args.height)
    seed = args.seed if args.seed is not None else fresh_seed()
    if args.seed is None:
        print(f"seed: {seed} (pass --seed {seed} to reproduce)", file=sys.stderr)
    bar = tqdm(total=args.frames, unit="frame", desc=scenario.name, disable=args.quiet or None, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    backend = None
    if args.backend == "ray":
        from longtail.cluster import ray_backend

        if args.address is not None and args.workers is not None:
            raise InputError("--workers", None, "does not apply with --address: a cluster runs one task per CPU")
        backend = ray_backend(args.address, args.workers)
    elif args.address is not None:
        raise InputError("--address", None, "applies to --backend ray only")
    if args.shard_size is not None and not args.shards:
        raise InputError("--shard-size", None, "applies to --shards only")
    if args.shards and args.preview:
        raise InputError("--preview", None, "applies to a folder dataset; render without --shards to preview")
    try:
        if args.shards:
            from longtail.shard_render import render_shards
            from longtail.shards import DEFAULT_SHARD_SIZE

            summary = render_shards(scenario, args.out, args.frames, seed, args.shard_size or DEFAULT_SHARD_SIZE,
                                    args.workers or 1, progress, args.sequence, backend)
        else:
            summary = render_dataset(scenario, args.out, args.frames, seed, args.workers or 1, progress,
                                     args.sequence, backend)
    finally:
        bar.close()
    resumed = summary.frames - summary.rendered
    cams = scenario.camera.names()
    what = "frames" if len(cams) == 1 else f"images ({args.frames} frames x {len(cams)} cameras: {', '.join(cams)})"
    print(f"{args.out}: {summary.frames} {what} ({summary.rendered} rendered"
          f"{f', {resumed} already done' if resumed else ''}), {summary.objects} objects, "
          f"{summary.seconds:.1f} s, {summary.fps:.2f} frames/s")
    sh = summary.shares
    fmt = lambda d: ", ".join(f"{k} {v:.0%}" for k, v in d.items())  # noqa: E731
    print(f"conditions: {fmt(sh['time_of_day'])}; {fmt(sh['weather'])}; rare event visible in "
          f"{sh['event']['visible']:.0%} of frames")
    if args.preview:
        from longtail.preview import gallery

        print(f"preview: {gallery(args.out, args.preview)}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from longtail.labelers.export import ExportFilter, export_dataset

    if args.format == "webdataset":
        return _export_shards(args)
    if args.shard_size is not None:
        raise InputError("--shard-size", None, "applies to --format webdataset only")
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else None
    flt = ExportFilter(min_visible_px=args.min_visible_px, max_occlusion=args.max_occlusion, classes=classes)
    res = export_dataset(args.dir, args.out, args.format, flt)
    print(f"{res['out']}: {args.format} export of {res['images']} images, {res['objects']} objects, "
          f"{res['ignored']} ignore regions")
    return EXIT_OK


def _export_shards(args: argparse.Namespace) -> int:
    from longtail.labelers.shard_export import export_shards
    from longtail.shards import DEFAULT_SHARD_SIZE

    for flag, given in (("--min-visible-px", args.min_visible_px != 1), ("--max-occlusion", args.max_occlusion != 1.0),
                        ("--classes", args.classes is not None)):
        if given:
            raise InputError(flag, None, "does not apply to --format webdataset: shards hold every frame's files "
                             "as they are")
    res = export_shards(args.dir, args.out, args.shard_size or DEFAULT_SHARD_SIZE)
    reused = f", {res['reused']} already done" if res["reused"] else ""
    print(f"{res['out']}: webdataset export of {res['samples']} frames in {res['shards']} shards of "
          f"{res['shard_size']} ({res['written']} written{reused})")
    return EXIT_OK


def _cmd_augment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.ramp is not None:
        for flag, bad in (("--variants", args.variants != 1), ("--strength", args.strength is not None)):
            if bad:
                raise InputError(flag, None, "applies to --preset only; a ramp writes one copy of each frame, the "
                                 "knob set exactly")
    elif args.camera is not None:
        raise InputError("--camera", None, "applies to --ramp over a MOTChallenge sequence only")
    bars: list[tqdm] = []  # opened at the first frame: a refusal before it stays one line on a terminal

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="frame", desc="augment", disable=args.quiet or None, file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        if args.ramp is not None:
            from longtail.augment_ramp import ramp_dataset

            res = ramp_dataset(args.src, args.out, args.ramp, args.seed, args.camera, progress)
        else:
            from longtail.augment import augment_dataset

            strength = 1.0 if args.strength is None else args.strength
            res = augment_dataset(args.src, args.out, args.preset, args.variants, strength, args.seed, progress)
    finally:
        for bar in bars:
            bar.close()
    if args.ramp is not None:
        where = f"MOTChallenge sequence, {res['camera']}" if res["source"] == "mot" else \
            f"{res['runs']} run{'s' if res['runs'] != 1 else ''}, {res['objects']} objects"
        print(f"{args.out}: {res['frames']} frames ({where}), {res['knob']} {res['from']:g}..{res['to']:g} "
              f"{res['unit']} ({res['curve']}), {res['seconds']:.1f} s")
    else:
        print(f"{args.out}: {res['frames']} frames ({res['source_frames']} x {res['variants']} variants of "
              f"{args.preset} at strength {res['strength']:g}), {res['objects']} objects, {res['seconds']:.1f} s")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from longtail.labelers.verify import verify_dataset

    findings = verify_dataset(args.dir)
    for f in findings[:MAX_FINDINGS_SHOWN]:
        print(f"{args.dir}/{f}")
    if len(findings) > MAX_FINDINGS_SHOWN:
        print(f"... and {len(findings) - MAX_FINDINGS_SHOWN} more findings (`longtail verify` lists the first "
              f"{MAX_FINDINGS_SHOWN})")
    print(f"{args.dir}: {len(findings)} finding{'s' if len(findings) != 1 else ''}" if findings else f"{args.dir}: OK")
    return EXIT_FAIL if findings else EXIT_OK


def _cmd_stats(args: argparse.Namespace) -> int:
    from longtail.labelers.stats import write_stats

    print(f"report: {write_stats(args.dir, args.out or Path(args.dir) / 'stats.html')}")
    return EXIT_OK


def _cmd_plate(args: argparse.Namespace) -> int:
    from longtail.worlds.plates import Horizon, correspondences_from_mot, fit_plate

    if args.action != "fit":
        build_parser().parse_args(["plate", "--help"])
    horizon = None
    if any(v is not None for v in (args.horizon_row, args.camera_height, args.focal)):
        if None in (args.horizon_row, args.camera_height, args.focal):
            raise InputError("--horizon-row", None,
                             "the horizon method needs --horizon-row, --camera-height and --focal")
        horizon = Horizon(args.horizon_row, args.camera_height, args.focal)
    corr = args.correspondences
    if corr == "gt":
        corr = correspondences_from_mot(args.source)
    elif corr is not None:
        corr = Path(corr)
    plate = fit_plate(args.source, args.out, camera_yaml=args.camera, correspondences=corr, horizon=horizon,
                      occluders=args.occluder, max_frames=args.max_frames)
    cam, fit = plate.camera, plate.fit
    err = f", reprojection RMS {fit.rms_px:.2f} px (median {fit.median_px:.2f}, max {fit.max_px:.2f}) over " \
          f"{fit.n_points} points" if fit.n_points else ""
    print(f"{args.out}: plate {cam.width}x{cam.height}, camera by {fit.method}: f {cam.fx:.1f} px, height "
          f"{cam.position[2]:.2f} m, pitch {math.degrees(cam.pitch):.1f} deg down{err}")
    return EXIT_OK


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from longtail.worlds.scenario import list_scenarios

    items = list_scenarios()
    width = max(len(s.name) for s in items)
    for s in items:
        print(f"{s.name:<{width}}  {s.description}")
    if args.contact_sheet:
        from longtail.preview import contact_sheet

        print(f"contact sheet: {contact_sheet(items, args.seed, args.contact_sheet)}")
    return EXIT_OK


def _cmd_target(args: argparse.Namespace) -> int:
    from longtail.atomic import write_bytes
    from longtail.worlds.scenario import load_scenario
    from longtail.worlds.target import load_slices, scenario_yaml, target_scenario

    slices, classes = load_slices(args.eval_json)
    if args.classes:
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    base = load_scenario(args.scenario)
    scenario, plan = target_scenario(slices, base, args.top, set(classes) if classes else None)
    if args.out.exists() and args.out.is_dir():
        raise InputError(str(args.out), None, "is a directory; expected a YAML file path")
    write_bytes(args.out, scenario_yaml(scenario, plan, str(args.eval_json)).encode())
    for p in plan:
        print(f"rank {p['rank']}: {p['slice']} -> {p['knob'] if 'knob' in p else 'skipped: ' + p['skipped']}")
    print(f"{args.out}: {scenario.name} (every frame aims at the targeted slices)")
    return EXIT_OK


def _cmd_scenario(args: argparse.Namespace) -> int:
    from longtail.worlds.sampler import sample
    from longtail.worlds.scenario import Scenario, load_scenario

    if args.action == "validate":
        sc = load_scenario(args.file)
        print(f"{args.file}: OK ({sc.name})")
    elif args.action == "schema":
        print(json.dumps(Scenario.model_json_schema(), indent=2))
    elif args.action == "sample":
        print(sample(load_scenario(args.file), args.seed, args.index).model_dump_json(indent=2))
    else:
        build_parser().parse_args(["scenario", "--help"])
    return EXIT_OK


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of ``parser`` by name (argparse keeps no public list of them)."""
    out: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.update(action._name_parser_map)
    return out


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` and of the subcommand parsers below it."""
    out: set[str] = set()
    for action in parser._actions:
        out.update(action.option_strings)
    for sub in _subcommands(parser).values():
        out |= _options(sub)
    return out


def message(err: InputError, parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The one line an InputError becomes: a library ParameterError names its parameter
    (``min_visible_px``); shown under the command's flag that set it (``--min-visible-px``)."""
    if isinstance(err, ParameterError):
        flag = "--" + err.param.replace("_", "-")
        command = _subcommands(parser).get(args.command)
        if command is not None and flag in _options(command):
            return err.message.replace(err.param, flag, 1)
    return err.message


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from longtail.cli_editor import cmd_editor
    from longtail.cli_loop import cmd_loop
    from longtail.cli_train import cmd_compare, cmd_evaluate, cmd_train

    handler = {"train": cmd_train, "evaluate": cmd_evaluate, "compare": cmd_compare, "render": _cmd_render,
               "scenarios": _cmd_scenarios, "scenario": _cmd_scenario,
               "export": _cmd_export, "verify": _cmd_verify, "stats": _cmd_stats, "plate": _cmd_plate,
               "augment": _cmd_augment, "editor": cmd_editor, "target": _cmd_target,
               "loop": cmd_loop}[args.command]
    try:
        return handler(args)
    except InputError as e:
        print(f"longtail: error: {message(e, parser, args)}", file=sys.stderr)
        return EXIT_USAGE
    except LongtailError as e:
        print(f"longtail: error: {e}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("longtail: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
