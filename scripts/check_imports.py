"""The import graph of longtail, read from the source (every import statement, function-level and
``if TYPE_CHECKING`` ones included), checked against docs/architecture.md's rules.

Fails (exit 1) on:
- a circle between modules;
- an arrow between parts that the design forbids (``NEVER``);
- a base-layer module of ``longtail/`` (shared vocabulary: errors, readers, records, classes,
  depth, dataset, seeding, ...) importing any part: the base layer is imported by all and imports
  none. The top of ``longtail/`` (``TOP``: the CLI, the per-frame pipeline, augment, previews) is
  the one place that wires the parts together.

Usage: python scripts/check_imports.py [ROOT] [--quiet]   (prints the parts' arrows with counts unless --quiet)
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import Counter
from pathlib import Path

# part -> folder (longest prefix wins); "Core" is the base layer, "Top" the CLI and the pipeline
PARTS = {"Core": "longtail", "Worlds": "worlds", "Render": "render", "Weather": "render/weather",
         "Labelers": "labelers", "Train": "train", "Editor": "editor"}
TOP = {"longtail.cli", "longtail.cli_train", "longtail.cli_editor", "longtail.__main__", "longtail.pipeline",
       "longtail.augment", "longtail.augment_ramp", "longtail.preview", "longtail.cluster",
       "longtail.shard_render", "longtail.loop", "longtail.cli_loop"}
NEVER = {  # (from, to): why
    ("Worlds", "Render"): "a scene knows no renderer",
    ("Worlds", "Labelers"): "labels come after capture",
    ("Worlds", "Train"): "generation knows no training",
    ("Worlds", "Weather"): "a scene knows no renderer",
    ("Render", "Labelers"): "labels come after the render",
    ("Render", "Train"): "rendering knows no training",
    ("Weather", "Labelers"): "the weather stage comes before labels are written, not after",
    ("Labelers", "Train"): "labels know no training",
    ("Weather", "Train"): "transforms know no training",
    ("Weather", "Editor"): "no UI in transforms",
    ("Train", "Editor"): "no UI in training",
    ("Render", "Editor"): "no UI in rendering",
    ("Labelers", "Editor"): "no UI in labels",
    ("Worlds", "Editor"): "no UI in worlds",
}


def modules(root: Path) -> dict[str, Path]:
    """Module name -> file, through pyproject's package-dir mapping."""
    cfg = tomllib.loads((root / "pyproject.toml").read_text())
    pkgdir = cfg["tool"]["setuptools"]["package-dir"]
    out = {}
    for mod, folder in pkgdir.items():
        for f in (root / folder).rglob("*.py"):
            parts = [mod, *f.relative_to(root / folder).with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def part_of(root: Path, f: Path, mod: str) -> str:
    if mod in TOP:
        return "Top"
    rel = f.relative_to(root).as_posix()
    best = max((folder for folder in PARTS.values() if rel.startswith(folder + "/")), key=len)
    return next(p for p, folder in PARTS.items() if folder == best)


def imports(mod: str, f: Path, known: dict[str, Path]) -> set[str]:
    """The longtail modules ``mod`` imports (``from a import b`` counts a.b when b is a module)."""
    pkg = mod if f.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(f.read_text(), str(f))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != mod:
                out.add(name)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(root: Path) -> tuple[list[str], Counter]:
    known = modules(root)
    graph = {m: imports(m, f, known) for m, f in known.items()}
    parts = {m: part_of(root, f, m) for m, f in known.items()}
    problems = [f"circle: {' <-> '.join(c)}" for c in cycles(graph)]
    arrows: Counter = Counter()
    for m, targets in sorted(graph.items()):
        for t in sorted(targets):
            a, b = parts[m], parts[t]
            if a == b:
                continue
            arrows[(a, b)] += 1
            if (a, b) in NEVER:
                problems.append(f"{m} imports {t}: {a} must not import {b} ({NEVER[a, b]})")
            if a == "Core" and b != "Core":
                problems.append(f"{m} imports {t}: the base layer imports no part")
    return problems, arrows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quiet = "--quiet" in argv
    args = [a for a in argv if a != "--quiet"]
    root = Path(args[0] if args else Path(__file__).resolve().parents[1])
    problems, arrows = check(root)
    for (a, b), n in sorted(arrows.items()):
        if not quiet:
            print(f"{a} -> {b}: {n}")
    for p in problems:
        print(p)
    print(f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
