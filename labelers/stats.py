"""What a dataset holds, in numbers (``dataset_stats``) and as a one-file HTML report (``write_stats``).

Counts are of *visible* objects (area > 0), the ones a detector is trained and scored on; objects
hidden completely by others are counted apart. The report embeds its plots as base64 PNG data
URIs, so the HTML file is all there is to copy or attach.

A sharded dataset (``longtail.shards``) gives the same numbers as its folder dataset: its frame
records are read from the shards' JSON members, images skipped.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend
from matplotlib.ticker import FuncFormatter

from longtail.atomic import write_bytes
from longtail.dataset import Manifest, frame_files
from longtail.records import read_record
from longtail.shards import ShardReader, is_sharded

CONDITIONS = ("time_of_day", "weather", "scenario", "event")  # frame attributes broken down by
DISTANCE_BIN_M = 10.0
FRACTION_EDGES = [i / 10 for i in range(11)]  # occlusion and truncation, 0..1 in tenths
NONE = "none"  # a condition that is null in the record, e.g. no event
# the object fields the numbers are made of: records are kept with these only (no masks)
OBJECT_FIELDS = ("area", "bbox", "class", "distance_m", "occlusion", "truncation", "role")


def load_records(root: Path) -> tuple[Manifest, list[dict]]:
    """The manifest and the frame records it lists, in frame order.

    Raises:
        DatasetError: no readable manifest, or a listed record that cannot be read.
    """
    manifest = Manifest.load(Path(root))
    return manifest, list(_folder_records(Path(root), manifest))


def _folder_records(root: Path, manifest: Manifest) -> Iterator[dict]:
    for i in range(manifest.frame_count):
        rel = frame_files(i)["labels"]
        if rel not in manifest.files:
            continue  # not rendered yet: an interrupted or running render
        yield read_record(root / rel, i)


def slim(record: dict) -> dict:
    """The part of a frame record ``records_stats`` reads: attributes and a few object fields."""
    return {"attributes": record["attributes"],
            "objects": [{k: o[k] for k in OBJECT_FIELDS if k in o} for o in record["objects"]]}


def dataset_stats(root: Path) -> dict:
    """The numbers of the report for the dataset at ``root`` (see ``records_stats``), plus its
    ``scenario`` name, ``seed`` and ``complete`` flag. ``root`` is a folder dataset or a shard set
    (``longtail.shards``); records are read one at a time and kept without their masks.

    Raises:
        DatasetError: no readable manifest, or a listed record that cannot be read.
    """
    root = Path(root)
    if is_sharded(root):
        with ShardReader(root) as shards:
            src = shards.manifest.source
            head = {"scenario": src.scenario.get("name"), "seed": src.seed, "complete": True}
            records = [slim(r) for r in shards.records()]
    else:
        manifest = Manifest.load(root)
        head = {"scenario": manifest.scenario.get("name"), "seed": manifest.seed, "complete": manifest.complete}
        records = [slim(r) for r in _folder_records(root, manifest)]
    return head | records_stats(records)


def records_stats(records: list[dict]) -> dict:
    """Counts and histograms of frame records.

    Returns:
        ``frames``, ``objects`` (visible), ``hidden_objects`` (area 0); ``objects_per_class``
        {class: n}; ``frames_per_condition`` and ``objects_per_condition`` {attribute: {value: n}};
        histograms ``distance_m`` (metres, camera to 3D box centre), ``box_height_px`` (powers of
        two), ``occlusion`` and ``truncation`` (fractions), each {edges, counts, median};
        ``event_coverage`` (see ``event_coverage``).
    """
    visible = [(r, o) for r in records for o in r["objects"] if o["area"] > 0]
    objects = [o for _, o in visible]
    heights = [o["bbox"][3] - o["bbox"][1] for o in objects]
    distances = [o["distance_m"] for o in objects]
    return {
        "frames": len(records),
        "objects": len(objects),
        "hidden_objects": sum(1 for r in records for o in r["objects"] if o["area"] <= 0),
        "objects_per_class": count(o["class"] for o in objects),
        "frames_per_condition": {c: count(_condition(r, c) for r in records) for c in CONDITIONS},
        "objects_per_condition": {c: count(_condition(r, c) for r, _ in visible) for c in CONDITIONS},
        "distance_m": histogram(distances, _linear_edges(distances, DISTANCE_BIN_M)),
        "box_height_px": histogram(heights, _log2_edges(heights)),
        "occlusion": histogram([o["occlusion"] for o in objects], FRACTION_EDGES),
        "truncation": histogram([o["truncation"] for o in objects], FRACTION_EDGES),
        "event_coverage": event_coverage(records),
    }


def event_coverage(records: list[dict]) -> dict[str, dict]:
    """Per event name (frame attribute ``event``; frames without one are left out): ``frames``,
    ``frames_with_event_objects`` (an object of role "event" in the record, visible or not),
    ``frames_visible`` (one with area > 0) and ``share`` = frames_visible / frames."""
    out: dict[str, dict] = {}
    for r in records:
        event = r["attributes"].get("event")
        if event is None:
            continue
        row = out.setdefault(event, {"frames": 0, "frames_with_event_objects": 0, "frames_visible": 0})
        ev = [o for o in r["objects"] if o.get("role") == "event"]
        row["frames"] += 1
        row["frames_with_event_objects"] += bool(ev)
        row["frames_visible"] += any(o["area"] > 0 for o in ev)
    for row in out.values():
        row["share"] = row["frames_visible"] / row["frames"]
    return dict(sorted(out.items()))


def count(values: Iterable) -> dict[str, int]:
    """{value: occurrences}, most frequent first (ties by name)."""
    return dict(sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))


def histogram(values: list[float], edges: list[float]) -> dict:
    """{edges, counts, median}: numpy's bins ([a, b), the last [a, b]); median None if empty."""
    counts, _ = np.histogram(np.asarray(values, float), bins=np.asarray(edges, float))
    return {"edges": [float(e) for e in edges], "counts": counts.tolist(),
            "median": float(np.median(values)) if values else None}


def _condition(record: dict, name: str) -> str:
    value = record["attributes"].get(name)
    return NONE if value is None else str(value)


def _linear_edges(values: list[float], step: float) -> list[float]:
    top = max(1, math.ceil(max(values, default=0) / step))
    return [i * step for i in range(top + 1)]


def _log2_edges(values: list[float]) -> list[float]:
    """1, 2, 4, ... up to the first power of two >= max(values): one bin per octave of box size."""
    top = max(1, math.ceil(math.log2(max(max(values, default=1), 1))))
    return [float(2 ** k) for k in range(top + 1)]


# --- the report ----------------------------------------------------------------------------------

def write_stats(root: Path, out: Path) -> Path:
    """Write the HTML report of the dataset at ``root`` to ``out`` (atomically); return ``out``.

    One self-contained file: plots are embedded as base64 PNG data URIs.

    Raises:
        DatasetError: see ``dataset_stats``.
    """
    stats = dataset_stats(root)
    write_bytes(Path(out), report_html(stats, title=f"longtail dataset {Path(root).name}").encode())
    return Path(out)


def report_html(stats: dict, title: str) -> str:
    """The HTML page for ``stats`` (from ``dataset_stats``)."""
    sections = [
        ("Objects per class", _bar_png(stats["objects_per_class"], "visible objects"),
         _table(["class", "objects"], stats["objects_per_class"].items())),
        ("Objects per condition", _conditions_png(stats["objects_per_condition"]), _conditions_table(stats)),
        ("Rare-event coverage", _coverage_png(stats["event_coverage"]), _coverage_table(stats["event_coverage"])),
        ("Distance", _hist_png(stats["distance_m"], "distance to the 3D box centre (m)"),
         _hist_table(stats["distance_m"], "distance (m)")),
        ("Box height", _hist_png(stats["box_height_px"], "visible box height (px)", log=True),
         _hist_table(stats["box_height_px"], "height (px)")),
        ("Occlusion", _hist_png(stats["occlusion"], "occlusion (fraction hidden)"),
         _hist_table(stats["occlusion"], "occlusion")),
        ("Truncation", _hist_png(stats["truncation"], "truncation (fraction outside the image)"),
         _hist_table(stats["truncation"], "truncation")),
    ]
    summary = _table(["dataset", ""], [("scenario", stats.get("scenario")), ("seed", stats.get("seed")),
                                ("complete", stats.get("complete")), ("frames", stats["frames"]),
                                ("visible objects", stats["objects"]), ("hidden objects", stats["hidden_objects"])])
    body = "".join(f'<h2>{html.escape(name)}</h2>\n<img alt="{html.escape(name)}" src="data:image/png;base64,'
                   f'{base64.b64encode(png).decode()}">\n{table}\n' for name, png, table in sections)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>\n"
            f"<style>{CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{summary}\n{body}</body></html>\n")


CSS = ("body{font-family:sans-serif;max-width:60em;margin:auto} table{border-collapse:collapse;margin:.5em 0}"
       " td,th{border:1px solid #ccc;padding:2px 8px;text-align:right} img{max-width:100%}")


def _table(headers: list[str], rows: Iterable[Iterable]) -> str:
    head = "<tr>" + "".join(_cell(h, "th") for h in headers) + "</tr>"
    return "<table>" + head + "".join("<tr>" + "".join(_cell(v, "td") for v in r) + "</tr>" for r in rows) + "</table>"


def _cell(value: object, tag: str) -> str:
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    return f"<{tag}>{html.escape(text)}</{tag}>"


def _conditions_table(stats: dict) -> str:
    rows = [(c, v, stats["frames_per_condition"][c].get(v, 0), n)
            for c in CONDITIONS for v, n in stats["objects_per_condition"][c].items()]
    rows += [(c, v, n, 0) for c in CONDITIONS for v, n in stats["frames_per_condition"][c].items()
             if v not in stats["objects_per_condition"][c]]
    return _table(["attribute", "value", "frames", "visible objects"], rows)


def _coverage_table(coverage: dict) -> str:
    return _table(["event", "frames", "with event objects", "event visible", "share"],
                  [(e, r["frames"], r["frames_with_event_objects"], r["frames_visible"], r["share"])
                   for e, r in coverage.items()])


def _hist_table(hist: dict, what: str) -> str:
    e = hist["edges"]
    rows = [(f"{e[i]:g} - {e[i + 1]:g}", n) for i, n in enumerate(hist["counts"])]
    return _table([what, "objects"], rows + [("median", hist["median"] if hist["median"] is not None else "-")])


# --- plots (PNG bytes) ---------------------------------------------------------------------------

def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})  # no version stamp: stable bytes
    return buf.getvalue()


def _bar(ax, counts: dict, ylabel: str) -> None:
    ax.bar(range(len(counts)), list(counts.values()), color="#4c72b0")
    ax.set_xticks(range(len(counts)), list(counts), rotation=30, ha="right")
    ax.set_ylabel(ylabel)


def _bar_png(counts: dict, ylabel: str) -> bytes:
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    _bar(fig.add_subplot(), counts, ylabel)
    return _png(fig)


def _conditions_png(per_condition: dict[str, dict]) -> bytes:
    fig = Figure(figsize=(9.6, 3.2), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(CONDITIONS), squeeze=False)[0], CONDITIONS):
        _bar(ax, per_condition[name], "visible objects" if name == CONDITIONS[0] else "")
        ax.set_title(name)
    return _png(fig)


def _coverage_png(coverage: dict) -> bytes:
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax = fig.add_subplot()
    _bar(ax, {e: r["share"] for e, r in coverage.items()}, "frames with it visible")
    ax.set_ylim(0, 1)
    return _png(fig)


def _hist_png(hist: dict, xlabel: str, log: bool = False) -> bytes:
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.stairs(hist["counts"], hist["edges"], fill=True, color="#4c72b0")
    if log:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1, 2, 4 rather than 2^k
    ax.set_xlabel(xlabel)
    ax.set_ylabel("visible objects")
    return _png(fig)
