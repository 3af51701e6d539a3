"""Shared pieces of the property-based tests of every reader of outside files (issue #16).

``run_cli`` runs ``longtail.cli.main`` in-process and returns (exit code, stdout, stderr); an
exception escaping it is a traceback a user would see, so it fails the test as it is. The
strategies make random bytes, random YAML/JSON-like values and random mutations of valid
documents.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings, strategies as st

from longtail.cli import main

# CI runs every property a bounded number of times; LONGTAIL_FUZZ_EXAMPLES=1000 digs deeper locally
EXAMPLES = int(os.environ.get("LONGTAIL_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=float(os.environ.get("LONGTAIL_FUZZ_DEADLINE_MS", "0")) or None,
                derandomize=os.environ.get("LONGTAIL_FUZZ_RANDOM") is None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's own exits
            rc = e.code if isinstance(e.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


def assert_clean(rc: int, out: str, err: str, allowed=(0, 2), max_err_lines: int = 1) -> None:
    """Exit code among ``allowed``; on failure at most ``max_err_lines`` lines, each naming a file."""
    assert rc in allowed, f"exit {rc}\nstdout: {out[-1500:]}\nstderr: {err[-1500:]}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    if rc == 2:
        assert 1 <= len(lines) <= max_err_lines, err
        assert lines[-1].startswith("longtail: error: "), err


def assert_scenario_refused(tmp_path: Path, text: str, field: str, words: str) -> None:
    """A scenario file holding ``text`` is refused in one line: ``FILE: FIELD: ...WORDS...``."""
    from longtail.errors import InputError
    from longtail.worlds.scenario import load_scenario_file

    f = tmp_path / "bad.yaml"
    f.write_text(text)
    try:
        load_scenario_file(f)
    except InputError as e:
        msg = str(e)
    else:
        raise AssertionError(f"accepted: {text!r}")
    assert msg.startswith(f"{f}: {field}:"), msg
    assert words in msg and "\n" not in msg, msg


def no_partial_output(path: Path) -> None:
    """Nothing written under ``path``: absent, or an empty directory (no temporary files either)."""
    if path.exists():
        left = [p for p in path.rglob("*")]
        assert not left, f"half-written output left in {path}: {[str(p) for p in left[:5]]}"


scalars = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | st.sampled_from([0, -1, 1, 0.5, 1e308, -1e308, 10**30, "", "x" * 300]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=16)
binary = st.binary(max_size=600) | st.sampled_from([b"\xff\xfe\x00bad", b"\x89PNG\r\n\x1a\n", b"\x00" * 64])


def numbers_like(old: int | float) -> st.SearchStrategy:
    if isinstance(old, int):
        return st.integers(-10, 10**6) | st.sampled_from([0, 1, 2**31, 10**12])
    return (st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, -0.0, 1e-300, 1e300, -1e300, 5e-324])
            | st.floats(old - abs(old) - 1, old + abs(old) + 1, allow_nan=False))


def paths_of(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON-like document (the root excluded)."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append(prefix + (k,))
            out += paths_of(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append(prefix + (i,))
            out += paths_of(v, prefix + (i,))
    return out


def mutate(doc: Any, data: st.DataObject) -> Any:
    """A copy of ``doc`` with one value replaced by a random one, deleted, or a key added."""
    import copy

    doc = copy.deepcopy(doc)
    paths = paths_of(doc)
    if not paths:
        return data.draw(values)
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    op = data.draw(st.sampled_from(["replace", "replace", "delete", "add", "number", "number"]))
    old = parent[path[-1]]
    if op == "number" and isinstance(old, (int, float)) and not isinstance(old, bool):
        # same type, any size: what passes the schema must also work downstream
        parent[path[-1]] = data.draw(numbers_like(old))
    elif op in ("replace", "number"):
        parent[path[-1]] = data.draw(values)
    elif op == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=8))] = data.draw(values)
    else:
        parent.append(data.draw(values))
    return doc
