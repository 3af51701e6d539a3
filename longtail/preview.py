"""Pictures for people: boxes drawn on a frame, colour maps of the label buffers, a gallery of a
dataset's first frames and a contact sheet of scenarios (one rendered frame each).

Frames are computed by ``pipeline.compute_frame``, the one per-frame function, so a preview shows
exactly what ``longtail render`` writes. The editor uses the same colour helpers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from longtail.atomic import read_png, write_bytes
from longtail.classes import palette
from longtail.dataset import Manifest, frame_files
from longtail.depth import read_depth
from longtail.pipeline import compute_frame, engines
from longtail.records import read_record
from longtail.worlds.scenario import Scenario

EVENT_BOX = (255, 60, 40)
TRAFFIC_BOX = (60, 230, 90)


def draw_boxes(rgb: np.ndarray, objects: list[dict]) -> Image.Image:
    """RGB (H, W, 3) uint8 with each visible object's box: red for the event, green for traffic."""
    im = Image.fromarray(rgb)
    d = ImageDraw.Draw(im)
    for o in objects:
        if o["bbox"]:
            x0, y0, x1, y1 = o["bbox"]
            d.rectangle([x0, y0, x1 - 1, y1 - 1], outline=EVENT_BOX if o["role"] == "event" else TRAFFIC_BOX)
    return im


def contact_sheet(scenarios: list[Scenario], seed: int, out: Path, tile: tuple[int, int] = (320, 192),
                  columns: int = 4) -> Path:
    """Render frame 0 of each scenario at ``tile`` size into one captioned PNG grid at ``out``."""
    w, h = tile
    caption = 14
    rows = (len(scenarios) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * w, rows * (h + caption)), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    with engines() as eng:
        for k, sc in enumerate(scenarios):
            frame = compute_frame(sc.with_resolution(w, h), seed, 0, eng)
            x, y = (k % columns) * w, (k // columns) * (h + caption)
            sheet.paste(draw_boxes(frame.images["rgb"], frame.record["objects"]), (x, y + caption))
            draw.text((x + 3, y + 1), sc.name, fill=(235, 235, 235))
    data = io.BytesIO()
    sheet.save(data, format="PNG")
    write_bytes(Path(out), data.getvalue())
    return Path(out)


def instance_colours(instance: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: a fixed pseudo-random colour per instance id, black for none."""
    ids = np.arange(int(instance.max()) + 1, dtype=np.uint32)
    lut = np.stack([(ids * 97) % 255, (ids * 57 + 80) % 255, (ids * 151 + 40) % 255], 1).astype(np.uint8)
    lut[0] = 0
    return lut[instance]


def depth_colours(depth: np.ndarray, max_m: float = 80.0) -> np.ndarray:
    """(H, W, 3) uint8: near = bright yellow, far = dark purple (log scale), sky = black."""
    from matplotlib import colormaps

    finite = np.isfinite(depth)
    t = np.clip(np.log1p(np.where(finite, depth, max_m)) / np.log1p(max_m), 0, 1)
    rgb = (colormaps["magma"](1.0 - t)[..., :3] * 255).astype(np.uint8)
    rgb[~finite] = 0
    return rgb


def gallery(root: Path, out: Path, frames: int = 4, width: int = 320) -> Path:
    """A grid of the first ``frames`` frames of a dataset: RGB with boxes | semantic | instance |
    depth, each scaled to ``width`` pixels, so the look and the labels can be judged together."""
    root = Path(root)
    n = min(frames, Manifest.load(root).frame_count)
    lut = palette()
    rows = []
    for i in range(n):
        f = frame_files(i)
        rec = read_record(root / f["labels"], i)
        panels = [draw_boxes(read_png(root / f["rgb"]), rec["objects"]),
                  Image.fromarray(lut[read_png(root / f["semantic"])]),
                  Image.fromarray(instance_colours(read_png(root / f["instance"]))),
                  Image.fromarray(depth_colours(read_depth(root / f["depth"])))]
        h = round(panels[0].height * width / panels[0].width)
        rows.append([p_.resize((width, h), Image.Resampling.NEAREST) for p_ in panels])
    h = rows[0][0].height
    sheet = Image.new("RGB", (4 * width, n * h))
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            sheet.paste(panel, (c * width, r * h))
    data = io.BytesIO()
    sheet.save(data, format="PNG")
    write_bytes(Path(out), data.getvalue())
    return Path(out)
