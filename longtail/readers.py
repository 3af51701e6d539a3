"""Reading outside files, totally: any bytes give a value or one InputError naming the file.

Every reader of a user's file (scenario YAML, camera files, CSVs, MOT text, COCO/KITTI/YOLO
labels, a dataset's manifest and records, request bodies) goes through these, so the CLI can turn
whatever a file holds into one line and exit code 2:

- ``read_bytes`` / ``read_text``: unreadable paths and text that is not UTF-8;
- ``parse_yaml`` / ``parse_json``: syntax errors with line and column, nesting too deep for the
  parsers (RecursionError), YAML aliases that expand to more than ``MAX_NODES`` values (a
  "billion laughs" file is small on disk and endless to walk), non-finite JSON numbers;
- ``read_image``: anything the image decoders refuse (PIL raises a zoo of exception types on
  damaged files; all of them mean "not a readable image" here), and decompression bombs.

Structure is checked afterwards by the caller, usually with a pydantic model and
``validation_message``.
"""

from __future__ import annotations

import configparser
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import yaml
from PIL import Image
from pydantic import ValidationError

from longtail.errors import InputError, one_line

MAX_DEPTH = 64  # nesting levels of a YAML/JSON document; scenario files use < 8
MAX_NODES = 1_000_000  # values in a document, aliases expanded
MAX_VALUE_CHARS = 60  # of an offending value quoted in a message


def read_bytes(path: Path, what: str = "file") -> bytes:
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise InputError(str(path), None, f"is a directory; expected a {what}") from None
    except OSError as e:
        raise InputError(str(path), None, f"cannot read {what} ({e.strerror or e})") from None


def decode_text(data: bytes, source: str, what: str = "file") -> str:
    """UTF-8 text (a byte-order mark is dropped) or InputError naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(source, None, f"byte {e.start} is not UTF-8 text; expected a UTF-8 text {what}") from None


def read_text(path: Path, what: str = "file") -> str:
    return decode_text(read_bytes(path, what), str(path), what)


def check_shape(data: Any, source: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> Any:
    """``data`` unchanged, or InputError if it nests deeper than ``max_depth`` or holds more than
    ``max_nodes`` values (counting every path to a shared value, as a consumer would walk it)."""
    stack = [(data, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise InputError(source, None, f"holds more than {max_nodes:,} values (with aliases expanded); "
                                           "expected a small document")
        children: list[Any] | tuple[Any, ...]
        if isinstance(value, dict):
            children = list(value.keys()) + list(value.values())
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        if depth >= max_depth and children:
            raise InputError(source, None, f"nested more than {max_depth} levels deep; expected a flat document")
        stack.extend((c, depth + 1) for c in children)
    return data


def parse_yaml(text: str, source: str) -> Any:
    """The value of a YAML document (safe loader), or InputError with line and column."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or getattr(e, "context", None) or str(e)
        raise InputError(source, None, f"not valid YAML: {where}{problem}") from None
    except RecursionError:
        raise InputError(source, None, "nested too deeply for the YAML parser; expected a flat document") from None
    return check_shape(data, source)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(text: str | bytes, source: str) -> Any:
    """The value of a JSON document, or InputError with line and column. NaN and Infinity,
    which Python's json accepts but JSON does not, are refused."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise InputError(source, None, f"not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise InputError(source, None, f"byte {e.start} is not UTF-8 text; expected JSON") from None
    except RecursionError:
        raise InputError(source, None, "nested too deeply for the JSON parser; expected a flat document") from None
    except ValueError as e:  # a refused constant, or an integer too long to convert
        raise InputError(source, None, f"not valid JSON: {e}") from None
    return check_shape(data, source)


def load_yaml(path: Path, what: str = "YAML file") -> Any:
    return parse_yaml(read_text(path, what), str(path))


def load_json(path: Path, what: str = "JSON file") -> Any:
    return parse_json(read_text(path, what), str(path))


def read_image(source: Path | bytes, name: str | None = None, mode: str | None = None) -> np.ndarray:
    """The pixels of an image file (or its bytes), converted to ``mode`` if given, or InputError.

    Args:
        source: a path, or the file's bytes (then ``name`` says where they came from).
        mode: a PIL mode ("RGB", "L") to convert to; None keeps the stored one (16-bit PNGs stay
            uint16).
    """
    where = name or str(source)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img.load()
            return np.array(img.convert(mode) if mode else img)
    except FileNotFoundError:
        raise InputError(where, None, "image file not found") from None
    except Exception as e:  # noqa: BLE001 - any decoder failure on outside bytes: not a readable image
        text = str(e).strip().splitlines()
        raise InputError(where, None, f"not a readable image ({text[0] if text else type(e).__name__})") from None


def read_ini(path: Path, what: str = "INI file") -> configparser.ConfigParser:
    """An INI file (no ``%`` interpolation: values are taken as written), or InputError."""
    ini = configparser.ConfigParser(interpolation=None)
    try:
        ini.read_string(read_text(path, what), source=str(path))
    except configparser.Error as e:
        problem = one_line(e.message if hasattr(e, "message") else e)
        raise InputError(str(path), None, f"not a readable {what} ({problem})") from None
    return ini


def text_lines(path: Path, what: str = "text file") -> list[tuple[int, str]]:
    """(1-based line number, line) of each non-blank line of a UTF-8 text file."""
    return [(n, line) for n, line in enumerate(read_text(path, what).splitlines(), 1) if line.strip()]


def parse_number(text: str) -> float:
    """A finite float from text; ValueError otherwise (also for 'nan', 'inf' and overflow)."""
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"{text!r} is not a finite number")
    return v


def parse_int(text: str) -> int:
    """An integer written as ``12`` or ``12.0`` (MOT files do both); ValueError otherwise."""
    v = parse_number(text)
    if v != int(v):
        raise ValueError(f"{text!r} is not a whole number")
    return int(v)


def number_rows(path: Path, what: str, min_columns: int, expected: str) -> list[tuple[int, list[float]]]:
    """(line number, row) of a text file of numbers separated by commas and/or whitespace, each
    with at least ``min_columns`` finite numbers; InputError naming the first bad line."""
    rows = []
    for n, line in text_lines(path, what):
        try:
            row = [parse_number(f) for f in line.replace(",", " ").split()]
        except ValueError:
            raise InputError(str(path), f"line {n}", f"expected {expected}") from None
        if len(row) < min_columns:
            raise InputError(str(path), f"line {n}", f"expected {expected}")
        rows.append((n, row))
    return rows


def quote(value: Any) -> str:
    """A short one-line rendering of an offending value for a message."""
    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 3] + "..."


def format_loc(loc: Iterable[int | str]) -> str:
    """A pydantic error location as ``a.b[2].c``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_message(source: str, err: ValidationError, hint: str | None = None) -> InputError:
    """The first schema error as a one-line InputError (file, field path, value, expectation).

    ``hint`` is added to "unknown field" errors (e.g. where to find the schema)."""
    e = err.errors(include_url=False)[0]
    loc = format_loc(e["loc"]) or None
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown field" + (f" ({hint})" if hint else "")
    elif e["type"] != "missing" and loc is not None:  # whole-file checks name their field themselves
        msg = f"{quote(e.get('input'))}: {msg}"
    return InputError(source, loc, msg)
