"""``longtail loop``: the closed loop's command line (``longtail.loop`` does the work)."""

from __future__ import annotations

from pathlib import Path

from longtail.cli_train import BOX_HEAD_HELP


def add_command(sub, positive_int) -> None:
    lp = sub.add_parser("loop", help="find where a detector fails, generate that, gate it, retrain; vs a control",
                        description="Round 0 trains a detector on the real frames and breaks its test AP50 and "
                        "recall down by slice. Each round then, for a targeted arm (a scenario aimed at the weakest "
                        "slices, `longtail target`) and a control arm (the base scenario, untargeted): render "
                        "candidates, admit those that pass the verifier gate, add them to the arm's pool (the real "
                        "frames always stay), fine-tune from the arm's previous round, evaluate. Writes "
                        "OUT/results.json, report.md and plots/loop.png; rerunning the same command resumes.")
    lp.add_argument("--real", required=True, metavar="[KIND:]PATH",
                    help="real labelled training frames (mot:, coco:, kitti:, yolo:, or a longtail dataset)")
    lp.add_argument("--test", required=True, action="append", metavar="[KIND:]PATH",
                    help="real test frames, scored by slice (repeatable: the sets are scored as one; images "
                    "without a weather tag count as clear)")
    lp.add_argument("--tags", type=Path, action="append", default=None, metavar="JSON|CSV",
                    help="condition tags of a test set (as `evaluate --tags`; repeat in --test's order, 'none' for "
                    "a set without)")
    lp.add_argument("--scenario", required=True, metavar="NAME_OR_PATH", help="the base scenario")
    lp.add_argument("--out", required=True, type=Path, metavar="DIR")
    lp.add_argument("--preset", default="cpu", choices=["smoke", "cpu"],
                    help="budget: smoke (plumbing, minutes) or cpu (default; the README's figures)")
    lp.add_argument("--rounds", type=positive_int, default=None, metavar="N")
    lp.add_argument("--per-round", type=positive_int, default=None, metavar="K",
                    help="admitted samples each arm adds per round")
    lp.add_argument("--steps0", type=positive_int, default=None, metavar="S", help="round 0's training steps")
    lp.add_argument("--steps", type=positive_int, default=None, metavar="S", help="fine-tuning steps per round")
    lp.add_argument("--seeds", type=positive_int, default=None, metavar="N")
    lp.add_argument("--top", type=positive_int, default=None, metavar="N", help="slices targeted per round")
    lp.add_argument("--pool-share", type=float, default=None, metavar="P",
                    help="share of each batch from the pool in rounds >= 1 (default 0.5)")
    lp.add_argument("--model", default=None,
                    help="torchvision detector (default fasterrcnn_mobilenet_v3_large_320_fpn)")
    lp.add_argument("--box-head-norm", default=None, metavar="NORM", help=BOX_HEAD_HELP)
    lp.add_argument("--img-size", type=positive_int, nargs=2, default=None, metavar=("H", "W"),
                    help="model input size (default 320 427)")
    lp.add_argument("--batch", type=positive_int, default=None, metavar="B", help="images per step (default 4)")
    lp.add_argument("--classes", default=None, metavar="A,B", help="classes to learn (default: the real labels')")
    lp.add_argument("--render-workers", type=positive_int, default=1, metavar="K",
                    help="worker processes rendering the candidates (default 1)")
    lp.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    lp.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_loop(args) -> int:
    from longtail.cli_train import RunBars
    from longtail.loop import preset_config, run_loop

    cfg = preset_config(args.preset, rounds=args.rounds, per_round=args.per_round, steps0=args.steps0,
                        steps=args.steps, seeds=args.seeds, top=args.top, pool_share=args.pool_share,
                        model=args.model, box_head_norm=args.box_head_norm,
                        img_size=tuple(args.img_size) if args.img_size else None, batch=args.batch)
    bars = RunBars(args.quiet)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    try:
        tags = [None if t is None or str(t) == "none" else t for t in (args.tags or [])]
        if len(tags) > len(args.test):
            from longtail.errors import InputError

            raise InputError("--tags", None, f"{len(tags)} given for {len(args.test)} --test sets")
        results = run_loop(args.real, args.test, args.scenario, args.out, cfg, classes=classes, tags=tags,
                           device=args.device, log=bars.log, preset=args.preset, step_progress=bars.step,
                           render_workers=args.render_workers)
    finally:
        bars.close()
    s = results["summary"]
    g = s["gain_over_control"]
    tracked = sorted({t for v in results["seeds"].values() for t in v["tracked"][:1]})
    if g[0] is not None:
        print(f"tracked slice {', '.join(tracked)}: targeted - control at round {cfg.rounds}: "
              f"{100 * g[0]:+.1f} ± {100 * (g[1] or 0):.1f} points")
    for a in s.get("aimed", []):
        if a["gain"][0] is not None:
            print(f"round {a['round']} aimed at {', '.join(a['slices'])}: targeted - control after it: "
                  f"{100 * a['gain'][0]:+.1f} ± {100 * (a['gain'][1] or 0):.1f} points")
    print(f"{args.out}: results.json, report.md, plots/loop.png")
    return 0
