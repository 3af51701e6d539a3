"""sha256 of everything longtail writes for fixed seeds: renders of scenes covering every render
path (day, night, fog, rain, snow, low-sun glare, a camera rig, a plate), their exports in every
format, weather-augmented copies, and a few training steps. Restructuring must not change these
bytes (or say why): tests/test_pins.py compares a subset against tests/data/pins.json.

Usage: python scripts/pin_outputs.py OUT.json [--work DIR]
       python scripts/pin_outputs.py --check tests/data/pins.json   (exit 1 on any difference)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

SCENARIOS = ("fallen_cargo", "night_rain_city", "dense_fog_highway", "snowy_rural_road", "cyclist_low_sun",
             "pedestrian_behind_bus")
SIZE = ("160", "96")
SEED = "11"
# files that hold absolute paths or versions of the machine: not part of the pinned bytes
SKIP = ("longtail_export.json", "data.yaml")


def _cli(*argv) -> None:
    from longtail.cli import main

    rc = main([str(a) for a in argv])
    if rc != 0:
        raise SystemExit(f"longtail {' '.join(map(str, argv))} exited {rc}")


def _plate(work: Path) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    img = np.empty((96, 160, 3), np.uint8)
    img[:30] = (175, 185, 200)
    img[30:] = (90, 92, 90)
    img[30:] += rng.integers(0, 20, (66, 160, 1), dtype=np.uint8)
    (work / "frames").mkdir()
    Image.fromarray(img).save(work / "frames" / "000001.png")
    (work / "cam.yaml").write_text("fx: 150\nheight_m: 6\npitch_deg: 16\n")
    _cli("plate", "fit", work / "frames", "--out", work / "plate", "--camera", work / "cam.yaml")
    sc = work / "plate_scene.yaml"
    sc.write_text(f"name: pinned_plate\ndescription: d\nlayout: {{kind: plate}}\nplate: {work / 'plate'}\n"
                  "coverage: {fog: 0.5, night: 0.25}\n"
                  "events: [{asset: pedestrian, count_range: [2, 4], region: ground, distance_m_range: [6, 30], "
                  "heading_deg_range: [-180, 180]}]\n")
    return sc


def _rig(work: Path) -> Path:
    import yaml

    from longtail.worlds.scenario import load_scenario

    doc = load_scenario("fallen_cargo").model_dump(mode="json")
    doc["name"] = "pinned_rig"
    doc["camera"]["rig"] = "front_sides"
    f = work / "rig.yaml"
    f.write_text(yaml.safe_dump(doc))
    return f


def _train(work: Path, data: Path) -> dict[str, str]:
    import torch

    _cli("train", "--data", data, "--model", "ssdlite320_mobilenet_v3_large", "--steps", "3", "--batch", "2",
         "--img-size", "96", "160", "--out", work / "run", "--seed", "3", "--quiet")
    state = torch.load(work / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    h = hashlib.sha256()
    for key in sorted(state["ema"]):
        h.update(key.encode())
        h.update(state["ema"][key].detach().cpu().numpy().tobytes())
    return {"train/ema_weights": h.hexdigest()}


def pins(work: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    sets = {name: name for name in SCENARIOS} | {"rig": _rig(work), "plate": _plate(work)}
    for name, scenario in sets.items():
        _cli("render", "--scenario", scenario, "--frames", "2", "--out", work / "ds" / name, "--width", SIZE[0],
             "--height", SIZE[1], "--seed", SEED, "--quiet")
    for fmt in ("coco", "kitti", "yolo", "cityscapes"):
        _cli("export", work / "ds" / "fallen_cargo", "--out", work / "exp" / fmt, "--format", fmt)
    for preset in ("heavy_rain", "night"):
        _cli("augment", work / "ds" / "pedestrian_behind_bus", work / "aug" / preset, "--preset", preset, "--seed", "2")
    for f in sorted(p for p in work.rglob("*") if p.is_file()):
        rel = f.relative_to(work).as_posix()
        if rel.split("/")[0] in ("ds", "exp", "aug") and f.name not in SKIP:
            data = f.read_bytes()
            if rel == "ds/plate/manifest.json":  # its scenario (and digest) and records hold the work dir
                files = json.loads(data)["files"]
                data = json.dumps({k: v for k, v in files.items() if not k.startswith(("labels/", "coco"))},
                                  sort_keys=True).encode()
            elif rel.startswith("ds/plate/"):
                data = data.replace(str(work).encode(), b"WORK")
            out[rel] = hashlib.sha256(data).hexdigest()
    out.update(_train(work, work / "ds" / "fallen_cargo"))
    return out


def machine() -> dict:
    """What the pinned float results depend on besides longtail: CPU vector units, library versions."""
    import platform

    import cv2
    import numpy as np
    import torch
    from numpy._core._multiarray_umath import __cpu_features__

    return {"arch": platform.machine(), "numpy_cpu_features": sorted(k for k, v in __cpu_features__.items() if v),
            "numpy": np.__version__, "torch": torch.__version__, "opencv": cv2.__version__}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--check", type=Path, help="compare with this pins file instead of writing one")
    ap.add_argument("--work", type=Path, help="keep the outputs here (default: a temporary directory)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp) / "pins"
        work.mkdir(parents=True)
        got = pins(work)
    if args.check:
        want = json.loads(args.check.read_text())["sha256"]
        diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
        for k in diff:
            print(f"{k}: {'missing' if k not in got else 'new' if k not in want else 'changed'}")
        print(f"{len(got)} files, {len(diff)} differ")
        return 1 if diff else 0
    args.out.write_text(json.dumps({"machine": machine(), "sha256": got}, indent=1, sort_keys=True) + "\n")
    print(f"{args.out}: {len(got)} files pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
