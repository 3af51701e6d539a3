"""Per-image condition tags for real datasets, from a sidecar file.

Real sets rarely carry conditions in their labels, so a sidecar names them per image, by file
name (``000042.png``) or by path relative to the dataset's image folder::

    {"000042.png": {"time_of_day": "night", "weather": "rainy"}, ...}      # JSON

    file,time_of_day,weather                                                # CSV, header first
    000042.png,night,rainy

Tag values are strings (BDD100K's vocabulary reads best: time_of_day daytime / dawn/dusk / night,
weather clear / overcast / partly cloudy / rainy / snowy / foggy). A name that matches no image is
an error: a typo would otherwise drop an image out of its condition silently.
"""

from __future__ import annotations

import csv
from pathlib import Path

from longtail.errors import InputError
from longtail.readers import parse_json, read_text
from longtail.train.entries import Entry

FILE_COLUMNS = ("file", "file_name", "image")


def load_tags(path: Path) -> dict[str, dict[str, str]]:
    """Image name -> {tag: value} from a ``.json`` or ``.csv`` sidecar."""
    path = Path(path)
    text = read_text(path, "condition tags file")
    if path.suffix.lower() == ".csv":
        return _csv_tags(text, str(path))
    data = parse_json(text, str(path))
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(str(path), None, "expected a JSON object {image name: {tag: value}}")
    return {str(k): {str(t): str(v) for t, v in tags.items()} for k, tags in data.items()}


def _csv_tags(text: str, source: str) -> dict[str, dict[str, str]]:
    try:
        rows = list(csv.DictReader(text.splitlines()))
    except csv.Error as e:
        raise InputError(source, None, f"not a CSV file ({e})") from None
    header = list(rows[0]) if rows else []
    key = next((c for c in FILE_COLUMNS if c in header), None)
    if key is None:
        raise InputError(source, None, f"expected a CSV header with one of the columns {', '.join(FILE_COLUMNS)}")
    return {r[key]: {t: v for t, v in r.items() if t not in (key, None) and isinstance(v, str) and v}
            for r in rows if isinstance(r[key], str)}


def apply_tags(entries: list[Entry], tags: dict[str, dict[str, str]], image_root: Path, source: str) -> None:
    """Merge tags into each entry's ``conditions`` (in place), matching by relative path, then name."""
    by_name: dict[str, list[Entry]] = {}
    for e in entries:
        try:
            rel = e.image.relative_to(image_root).as_posix()
        except ValueError:
            rel = e.image.name
        for key in {rel, e.image.name}:
            by_name.setdefault(key, []).append(e)
    for name, values in tags.items():
        if name not in by_name:
            raise InputError(source, name, "names no image of the dataset")
        for e in by_name[name]:
            e.conditions.update(values)
