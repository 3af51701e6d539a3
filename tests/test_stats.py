"""`dataset_stats` agrees with a count done here from the frame records; `write_stats` writes one
self-contained HTML file whose plots are real PNG images."""

import base64
import io
import json
import re
from collections import Counter

import pytest
from PIL import Image

from longtail.dataset import frame_files
from longtail.labelers.stats import CONDITIONS, dataset_stats, write_stats
from longtail.pipeline import render_dataset
from longtail.worlds.scenario import load_scenario

FRAMES = 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("stats") / "ds"
    render_dataset(load_scenario("fallen_cargo").with_resolution(160, 96), out, frames=FRAMES, seed=4)
    return out


@pytest.fixture(scope="module")
def records(dataset):
    return [json.loads((dataset / frame_files(i)["labels"]).read_text()) for i in range(FRAMES)]


def in_bin(value, edges, k):
    """numpy's rule: bins are [a, b) except the last, which is [a, b]."""
    last = k == len(edges) - 2
    return edges[k] <= value < edges[k + 1] or (last and value == edges[k + 1])


def test_counts_match_the_records(dataset, records):
    stats = dataset_stats(dataset)
    visible = [(r, o) for r in records for o in r["objects"] if o["area"] > 0]
    assert stats["frames"] == FRAMES and stats["scenario"] == "fallen_cargo" and stats["seed"] == 4
    assert stats["objects"] == len(visible) > 0
    assert stats["objects"] + stats["hidden_objects"] == sum(len(r["objects"]) for r in records)
    assert stats["objects_per_class"] == Counter(o["class"] for _, o in visible)
    for c in CONDITIONS:
        assert stats["frames_per_condition"][c] == Counter(str(r["attributes"][c]) for r in records)
        assert stats["objects_per_condition"][c] == Counter(str(r["attributes"][c]) for r, _ in visible)


@pytest.mark.parametrize("name, value", [
    ("distance_m", lambda o: o["distance_m"]),
    ("box_height_px", lambda o: o["bbox"][3] - o["bbox"][1]),
    ("occlusion", lambda o: o["occlusion"]),
    ("truncation", lambda o: o["truncation"]),
])
def test_histograms_match_the_records(dataset, records, name, value):
    hist = dataset_stats(dataset)[name]
    values = [value(o) for r in records for o in r["objects"] if o["area"] > 0]
    edges = hist["edges"]
    assert edges[0] <= min(values) and max(values) <= edges[-1]
    assert hist["counts"] == [sum(in_bin(v, edges, k) for v in values) for k in range(len(edges) - 1)]


def test_event_coverage_matches_the_records(dataset, records):
    coverage = dataset_stats(dataset)["event_coverage"]
    events = {r["attributes"]["event"] for r in records}
    assert set(coverage) == events
    for event in events:
        frames = [r for r in records if r["attributes"]["event"] == event]
        seen = sum(any(o["role"] == "event" and o["area"] > 0 for o in r["objects"]) for r in frames)
        assert coverage[event]["frames"] == len(frames)
        assert coverage[event]["frames_visible"] == seen
        assert coverage[event]["share"] == pytest.approx(seen / len(frames))


def test_report_embeds_decodable_plots_and_the_numbers(dataset, tmp_path):
    out = write_stats(dataset, tmp_path / "report" / "stats.html")
    assert out == tmp_path / "report" / "stats.html" and out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["stats.html"]  # self-contained, no temp left
    text = out.read_text()
    plots = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(plots) == 7
    for data in plots:
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            assert img.format == "PNG" and img.width > 100 and img.height > 100
            img.load()
    stats = dataset_stats(dataset)
    for cls, n in stats["objects_per_class"].items():
        assert f"<td>{cls}</td><td>{n}</td>" in text
