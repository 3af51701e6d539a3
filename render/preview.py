"""Pictures for people: a contact sheet of scenarios (one rendered frame each, boxes drawn)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from longtail.atomic import write_bytes
from longtail.labelers.annotate import annotate
from longtail.render.capture import Renderer
from longtail.worlds.physics import Physics
from longtail.worlds.sampler import sample
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
    with Renderer() as r, Physics() as ph:
        for k, sc in enumerate(scenarios):
            sc = sc.with_resolution(w, h)
            scene = sample(sc, seed, 0, ph)
            buf = r.render(scene)
            x, y = (k % columns) * w, (k // columns) * (h + caption)
            sheet.paste(draw_boxes(buf.rgb, annotate(scene, buf)), (x, y + caption))
            draw.text((x + 3, y + 1), sc.name, fill=(235, 235, 235))
    data = io.BytesIO()
    sheet.save(data, format="PNG")
    write_bytes(Path(out), data.getvalue())
    return Path(out)
