"""The comparison report: ``results.json`` (every number), ``report.md`` and a self-contained
``report.html`` with plots (matplotlib).

Numbers are AP50 and AP (COCO, pycocotools) of each arm's EMA weights on the held-out test sets,
in the clear and under each robustness cell (weather preset @ strength). Across seeds each cell
shows mean and standard deviation. A verdict says that an arm *beats* real-only only when the
paired per-seed differences support it (mean minus two standard errors above zero, at least two
seeds); with one seed the difference is given and called what it is: a single run.
mPC / rPC follow Michaelis et al. (2019): mPC is the mean AP50 over every preset and strength, rPC
= mPC / clean AP50.

Robustness curves (the comparison's ``sweeps``): each arm's AP50 against one physical weather
value (fog visibility in metres, ...), mean ± std over seeds at every value, and its half point
(V50: the visibility at which AP50 falls to half the arm's own clear AP50) per seed, then mean ±
std over the seeds that have one.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from longtail.atomic import write_bytes, write_json

METRIC = "AP50"
PLOTS = "plots"


def box_head_words(norm: str) -> str:
    """How a report names the RoI box head after the model's name: empty for the default."""
    if norm == "none":
        return ""
    return f" with a LayerNorm before each ReLU of its RoI box head (`--box-head-norm {norm}`)"


def _clear_all(cell: dict) -> dict:
    return cell["all"] if "all" in cell else cell


def _value(cell: dict, metric: str = METRIC) -> float | None:
    return _clear_all(cell).get(metric)


def _stats(values: list[float | None]) -> dict:
    v = [x for x in values if x is not None]
    if not v:
        return {"mean": None, "std": None, "n": 0, "values": values}
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "n": len(v),
            "values": values}


def _cond_of(cell: str) -> str:
    """Robustness cell ``preset@strength`` -> condition ``preset`` (clear stays clear)."""
    return cell.split("@", 1)[0]


def summarize(runs: list[dict], cfg) -> dict:
    """Per (test, fraction, arm): every cell's mean/std over seeds, conditions (presets averaged over
    strengths), mPC and rPC; plus paired differences against real-only and verdicts."""
    grouped: dict = defaultdict(list)
    for r in runs:
        grouped[(r["arm"], r["fraction"])].append(r)
    fractions = sorted({f for f in (r["fraction"] for r in runs) if f is not None})
    if runs and not fractions:  # only arms without real frames (synthetic alone): one table, "0"
        fractions = [0.0]
    tests = list(runs[0]["tests"]) if runs else []
    table: dict = {}
    for test in tests:
        table[test] = {}
        for frac in fractions:
            rows = {}
            for arm in cfg.arms:
                group = grouped.get((arm, None if arm == "synthetic" else frac), [])
                if not group:
                    continue
                group = sorted(group, key=lambda r: r["seed"])
                cells = list(group[0]["tests"][test])
                per_seed = {c: [_value(r["tests"][test][c]) for r in group] for c in cells}
                conds: dict = defaultdict(list)
                for c in cells:
                    conds[_cond_of(c)].append(c)
                cond_seed = {k: [_mean_or_none([per_seed[c][i] for c in cs]) for i in range(len(group))]
                             for k, cs in conds.items()}
                weather_cells = [c for c in cells if c != "clear"]
                mpc = [_mean_or_none([per_seed[c][i] for c in weather_cells]) for i in range(len(group))]
                rpc = [None if m is None or not clear else m / clear for m, clear in zip(mpc, per_seed["clear"])]
                rows[arm] = {"seeds": [r["seed"] for r in group], "cells": {c: _stats(v) for c, v in per_seed.items()},
                             "conditions": {k: _stats(v) for k, v in cond_seed.items()},
                             "per_seed_conditions": cond_seed, "mPC": _stats(mpc), "rPC": _stats(rpc),
                             "AP_clear": _stats([_value(r["tests"][test]["clear"], "AP") for r in group]),
                             "real_images": group[0].get("real_images"),
                             "convergence": [r.get("convergence") for r in group],
                             "step": group[0].get("step")}
            table[test][f"{frac:g}"] = rows
    return {"tests": table, "fractions": fractions, "verdicts": verdicts(table),
            "sweeps": summarize_sweeps(runs, cfg, fractions)}


def summarize_sweeps(runs: list[dict], cfg, fractions: list) -> dict:
    """Per sweep, test set, fraction and arm: AP50 mean/std over seeds at every value, the clear
    AP50, the half point (V50, ...) per seed and over seeds, and why seeds have none."""
    from longtail.train.weather import get_knob

    grouped: dict = defaultdict(list)
    for r in runs:
        grouped[(r["arm"], r["fraction"])].append(r)
    out: dict = {}
    for text in getattr(cfg, "sweeps", ()):
        by_test: dict = {}
        for r in runs:
            for test in r.get("sweeps", {}).get(text, {}):
                by_test.setdefault(test, {})
        for test in by_test:
            for frac in fractions:
                rows = {}
                for arm in cfg.arms:
                    group = [r for r in sorted(grouped.get((arm, None if arm == "synthetic" else frac), []),
                                               key=lambda r: r["seed"]) if test in r.get("sweeps", {}).get(text, {})]
                    if not group:
                        continue
                    curves = [r["sweeps"][text][test] for r in group]
                    first = curves[0]
                    name = first["summary"]
                    values = [p["value"] for p in first["curve"]]
                    rows[arm] = {"seeds": [r["seed"] for r in group],
                                 "values": values,
                                 "AP50": [_stats([c["curve"][k]["AP50"] for c in curves]) for k in range(len(values))],
                                 "clear": _stats([c["clear"]["AP50"] for c in curves]),
                                 "half": _stats([c[name] for c in curves]),
                                 "half_bounds": [_half_bound(c) for c in curves if c[name] is None]}
                if rows:
                    knob = get_knob(first["knob"])
                    by_test[test][f"{frac:g}"] = {"knob": knob.name, "unit": knob.unit, "summary": first["summary"],
                                                  "log": knob.log, "arms": rows}
        out[text] = by_test
    return out

def _half_bound(curve: dict) -> str:
    """What a curve without a half point says about it: beyond the sweep's harshest value (it
    never fell to half), before its mildest (below half from the start), or why not at all."""
    from longtail.train.weather import get_knob

    knob = get_knob(curve["knob"])
    values = [p["value"] for p in curve["curve"]]
    mildest, harshest = (max(values), min(values)) if knob.milder > 0 else (min(values), max(values))
    reason = curve[f"{curve['summary']}_reason"] or ""
    if reason.startswith("above half"):  # never fell to half: the half point lies beyond the sweep
        return f"{'<' if knob.milder > 0 else '>'} {harshest:.3g} {knob.unit}"
    if reason.startswith("below half"):
        return f"{'>' if knob.milder > 0 else '<'} {mildest:.3g} {knob.unit}"
    return "n/a"


def _mean_or_none(values) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def _paired(a: list, b: list) -> list[float]:
    return [x - y for x, y in zip(a, b) if x is not None and y is not None]


def verdicts(table: dict) -> list[dict]:
    """Plain-language findings: every arm against real-only, per test set, real fraction and
    condition (AP50 points, paired by seed)."""
    out = []
    for test, by_frac in table.items():
        for frac, rows in by_frac.items():
            base = rows.get("real")
            if base is None:
                continue
            for arm, row in rows.items():
                if arm == "real":
                    continue
                for cond, seeds in row["per_seed_conditions"].items():
                    if arm == "synthetic":  # no real frame: a fraction of real-only, not a difference
                        continue
                    d = _paired(seeds, base["per_seed_conditions"].get(cond, []))
                    if not d:
                        continue
                    out.append(_verdict(test, frac, arm, cond, d))
            syn = rows.get("synthetic")
            if syn is not None:
                for cond, seeds in syn["per_seed_conditions"].items():
                    real_mean = _mean_or_none(base["per_seed_conditions"].get(cond, []))
                    syn_mean = _mean_or_none(seeds)
                    if real_mean is None or syn_mean is None:
                        continue
                    ratio = syn_mean / real_mean if real_mean > 0 else None
                    real_text = f"real-only ({100 * real_mean:.1f}, trained on {frac} of the real frames)"
                    if real_mean < 0.01:  # a share of next to nothing says nothing
                        tail = f"; {real_text} finds next to nothing there"
                    elif syn_mean > real_mean:
                        tail = f", more than {real_text}"
                    else:
                        assert ratio is not None  # real_mean >= 0.01 here
                        tail = f", {100 * ratio:.0f}% of {real_text}"
                    text = f"synthetic-only reaches {100 * syn_mean:.1f} AP50 on {cond}{tail}"
                    out.append({"test": test, "fraction": frac, "arm": "synthetic", "condition": cond,
                                "ratio_to_real": ratio, "supported": None, "text": text})
    return out


def _verdict(test: str, frac: str, arm: str, cond: str, diffs: list[float]) -> dict:
    n = len(diffs)
    mean = float(np.mean(diffs))
    pts = 100 * mean
    if n < 2:
        text = (f"{arm} vs real-only on {cond}: {pts:+.1f} AP50 from a single seed: not enough runs to call it")
        supported = None
    else:
        se = float(np.std(diffs, ddof=1)) / math.sqrt(n)
        if mean - 2 * se > 0:
            text, supported = f"{arm} beats real-only on {cond} by {pts:+.1f} AP50 (±{100 * se:.1f}, {n} seeds)", True
        elif mean + 2 * se < 0:
            text, supported = (f"{arm} is worse than real-only on {cond} by {pts:+.1f} AP50 "
                               f"(±{100 * se:.1f}, {n} seeds)"), True
        else:
            text, supported = (f"{arm} vs real-only on {cond}: {pts:+.1f} AP50 (±{100 * se:.1f}, {n} seeds): "
                               "within the noise of the seeds"), False
    return {"test": test, "fraction": frac, "arm": arm, "condition": cond, "diff": mean, "n": n,
            "supported": supported, "text": f"[{test}, {frac} of real frames] {text}"}


# --- plots ------------------------------------------------------------------------------------

def _plots(summary: dict, metrics: dict, cfg) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pngs: dict[str, bytes] = {}

    def save(fig, name: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        pngs[name] = buf.getvalue()

    colours = dict(zip(("real", "synthetic", "mixed", "pretrain-finetune", "real+weather", "real+plates",
                        "real+inserted", "pretrained+real", "pretrained+inserted"),
                       ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c",
                        "#17becf")))
    for t_idx, (test, by_frac) in enumerate(summary["tests"].items()):
        for frac, rows in by_frac.items():
            arms = list(rows)
            conds = list(next(iter(rows.values()))["conditions"]) if rows else []
            fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(conds), 3.6))
            width = 0.8 / max(1, len(arms))
            x = np.arange(len(conds))
            for k, arm in enumerate(arms):
                st = [rows[arm]["conditions"][c] for c in conds]
                means = [100 * (s["mean"] or 0) for s in st]
                stds = [100 * (s["std"] or 0) for s in st]
                ax.bar(x + (k - (len(arms) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
                       label=arm, color=colours.get(arm))
            ax.set_xticks(x, conds)
            ax.set_ylabel("AP50 ×100")
            n_seeds = max((len(r["seeds"]) for r in rows.values()), default=1)
            ax.set_title(f"{test}: AP50 by condition, {frac} of real frames "
                         f"({'mean ± std over ' + str(n_seeds) + ' seeds' if n_seeds > 1 else '1 seed'})",
                         fontsize=9)
            ax.legend(fontsize=7, ncol=3)
            ax.grid(axis="y", alpha=0.3)
            save(fig, f"ap_by_condition_t{t_idx}_f{frac}.png")
        if len(by_frac) > 1:
            fig, ax = plt.subplots(figsize=(5.5, 3.6))
            fracs = [float(f) for f in by_frac]
            for arm in cfg.arms:
                for cond, style in (("clear", "-o"), ("weather", "--s")):
                    ys = []
                    for f in by_frac:
                        row = by_frac[f].get(arm)
                        if row is None:
                            ys.append(np.nan)
                        elif cond == "clear":
                            ys.append(100 * (row["conditions"]["clear"]["mean"] or 0))
                        else:
                            ys.append(100 * (row["mPC"]["mean"] or 0))
                    ax.plot(fracs, ys, style, color=colours.get(arm), label=f"{arm} ({cond})")
            ax.set_xscale("log")
            ax.set_xlabel("fraction of real training frames")
            ax.set_ylabel("AP50 (clear / mean under weather)")
            ax.set_title(f"{test}: AP50 vs real data", fontsize=9)
            ax.legend(fontsize=6, ncol=2)
            ax.grid(alpha=0.3)
            save(fig, f"ap_vs_fraction_t{t_idx}.png")
    for s_idx, by_test in enumerate(summary.get("sweeps", {}).values()):
        for t_idx, (test, by_frac) in enumerate(by_test.items()):
            for frac, sw in by_frac.items():
                save(_sweep_figure(plt, test, frac, sw, colours), f"sweep{s_idx}_t{t_idx}_f{frac}.png")
    first = _first_seed_runs(metrics)
    if first:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for run, (seed, lines) in sorted(first.items()):
            arm = run.split("/")[1]
            loss = np.array([m["loss"] for m in lines], float)
            k = max(1, len(loss) // 20)
            smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(len(smooth)) + k, smooth, label=f"{run.removeprefix('runs/')} seed {seed}",
                    color=colours.get(arm))
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (moving mean)")
        ax.set_title("loss curves (each run's first seed)", fontsize=9)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
        save(fig, "loss_curves.png")
    return pngs


def _sweep_figure(plt, test: str, frac: str, sw: dict, colours: dict):
    """AP50 against the swept value, one line per arm (mean, band ± std over seeds), each arm's
    half point and, on a fog axis, Foggy Cityscapes' densities."""
    from longtail.train.weather import foggy_cityscapes_marks

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    values = None
    for arm, r in sw["arms"].items():
        values = np.array(r["values"], float)
        mean = np.array([np.nan if s["mean"] is None else 100 * s["mean"] for s in r["AP50"]])
        std = np.array([0.0 if s["std"] is None else 100 * s["std"] for s in r["AP50"]])
        colour = colours.get(arm)
        ax.plot(values, mean, "o-", ms=3, color=colour, label=arm)
        if len(r["seeds"]) > 1:
            ax.fill_between(values, mean - std, mean + std, color=colour, alpha=0.15, lw=0)
        half, clear = r["half"]["mean"], r["clear"]["mean"]
        if half is not None and clear is not None:
            ax.plot([half], [50 * clear], "D", ms=6, color=colour, mec="k", mew=0.6)
    if values is not None:
        if sw["log"]:
            ax.set_xscale("log")
        ax.set_xlim(values[0], values[-1])  # mildest on the left, as the sweep runs
        lo, hi = sorted((values[0], values[-1]))
        for k, (x, label) in enumerate(foggy_cityscapes_marks(sw["knob"])):
            if lo <= x <= hi:
                ax.axvline(x, color="0.5", lw=0.8, ls=("--", "-.", ":")[k], label=label)
    ax.set_xlabel(f"{sw['knob']} ({sw['unit']})")
    ax.set_ylabel("AP50 ×100")
    n = max(len(r["seeds"]) for r in sw["arms"].values())
    ax.set_title(f"{test}: AP50 against {sw['knob']}, {frac} of real frames "
                 f"({'mean ± std over ' + str(n) + ' seeds' if n > 1 else '1 seed'}; ◆ = {sw['summary']})", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return fig


# --- text -------------------------------------------------------------------------------------

def _fmt(s: dict | None, scale: float = 100) -> str:
    if not s or s.get("mean") is None:
        return "n/a"
    if s["n"] > 1:
        return f"{scale * s['mean']:.1f} ± {scale * s['std']:.1f}"
    return f"{scale * s['mean']:.1f}"


def _tables(summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table of the report."""
    out = []
    for test, by_frac in summary["tests"].items():
        for frac, rows in by_frac.items():
            if not rows:
                continue
            conds = list(next(iter(rows.values()))["conditions"])
            cells = list(next(iter(rows.values()))["cells"])
            header = ["arm", "real images", *[f"AP50 {c}" for c in conds], "AP clear", "mPC", "rPC"]
            body = [[arm, str(r["real_images"]), *[_fmt(r["conditions"][c]) for c in conds], _fmt(r["AP_clear"]),
                     _fmt(r["mPC"]), _fmt(r["rPC"], 1)] for arm, r in rows.items()]
            out.append((f"{test}: {frac} of the real frames (AP50 ×100 by condition; mPC = mean AP50 ×100 under "
                        "weather, rPC = mPC / clear)", header, body))
            if len(cells) > len(conds):
                header = ["arm", *cells]
                body = [[arm, *[_fmt(r["cells"][c]) for c in cells]] for arm, r in rows.items()]
                out.append((f"{test}: {frac} of the real frames, robustness cells (AP50 ×100, preset@strength)",
                            header, body))
    for text, by_test in summary.get("sweeps", {}).items():
        for test, by_frac in by_test.items():
            for frac, sw in by_frac.items():
                arms = sw["arms"]
                values = next(iter(arms.values()))["values"]
                header = ["arm", "clear", *[f"{v:.4g} {sw['unit']}" for v in values], sw["summary"]]
                body = [[arm, _fmt(r["clear"]), *[_fmt(s) for s in r["AP50"]], _half(r, sw["unit"])]
                        for arm, r in arms.items()]
                out.append((f"{test}: {frac} of the real frames, AP50 ×100 against {sw['knob']} ({text}; "
                            f"{sw['summary']} = where AP50 falls to half the arm's clear AP50)", header, body))
    return out


def _half(row: dict, unit: str) -> str:
    """A half point over seeds: mean ± std, and how many seeds have one."""
    s, n_seeds = row["half"], len(row["seeds"])
    parts = []
    if s["mean"] is not None:
        text = f"{s['mean']:.3g} ± {s['std']:.2g} {unit}" if s["n"] > 1 else f"{s['mean']:.3g} {unit}"
        parts.append(text + (f" ({s['n']} of {n_seeds} seeds)" if s["n"] < n_seeds else ""))
    bounds = row.get("half_bounds", [])
    for bound in sorted(set(bounds)):
        k = bounds.count(bound)
        parts.append(bound + (f" ({k} of {n_seeds} seeds)" if k < n_seeds else ""))
    return "; ".join(parts) or "n/a"


def _convergence_rows(summary: dict) -> list[list[str]]:
    rows, seen = [], set()
    for test, by_frac in summary["tests"].items():
        for frac, arms in by_frac.items():
            for arm, r in arms.items():
                for seed, c in zip(r["seeds"], r["convergence"]):
                    key = (arm, None if arm == "synthetic" else frac, seed)
                    if c and key not in seen:
                        seen.add(key)
                        trend = "n/a" if c.get("trend") is None else f"{100 * c['trend']:+.0f}%"
                        rows.append([arm, "none" if arm == "synthetic" else frac, str(seed), str(c["steps"]), trend,
                                     c["verdict"]])
        break  # training does not depend on the test set
    return rows


def _first_seed_runs(metrics: dict) -> dict:
    """``runs/ARM/FRACTION`` -> (its lowest seed, that seed's metric lines), for runs with lines."""
    first: dict = {}
    for path, lines in metrics.items():
        run, _, seed = path.rpartition("/seed")
        if lines and (run not in first or int(seed) < first[run][0]):
            first[run] = (int(seed), lines)
    return first


def _seeds_text(cfg) -> str:
    seeds = cfg.run_seeds
    if len(seeds) == cfg.seeds:
        return f"{cfg.seeds} seed(s)"
    return f"seed(s) {', '.join(map(str, seeds))} of the comparison's {cfg.seeds} (--only-seeds)"


def _markdown(record: dict, summary: dict, cfg, plot_names: list[str], versions: dict) -> str:
    lines = ["# longtail comparison: what synthetic, real and mixed data are worth", ""]
    lines += [f"Model `{cfg.model}`{box_head_words(cfg.box_head_norm)} at {cfg.img_size[0]}x{cfg.img_size[1]}, "
              f"{cfg.steps} steps of {cfg.batch} images per arm, {_seeds_text(cfg)}, evaluated on "
              f"{', '.join(summary['tests'])}; classes: "
              f"{', '.join(record['classes'])}. Preset: {record.get('preset') or 'custom'}.", ""]
    if record.get("split"):
        lines += [f"**Split:** no test set was given, so the real data was split by {record['split']} "
                  "(random frames of one video would leak into each other).", ""]
    lines += ["Test conditions: `clear` is the test images as they are; every other condition is the same images "
              "with the weather stage applied (a Foggy-Cityscapes-style copy; real images get a ground-plane depth "
              "prior from the camera). The `real+weather` arm trains with that weather stage on the fly, so it is "
              "the honest baseline that rendered frames must beat.", ""]
    base = record.get("pretrain_base")
    if base:
        clear = _clear_all(next(iter(base["tests"].values()))["clear"]).get(METRIC)
        pretrained = [f"`{a}`" for a in cfg.arms if a.startswith("pretrained+")]
        lines += [f"**Budgets:** every arm trains {cfg.steps} steps; {' and '.join(pretrained)} "
                  f"start{'s' if len(pretrained) == 1 else ''} from one base detector "
                  f"trained once for {cfg.pretrain_steps} steps on the synthetic data alone (seed "
                  f"{base['seed']}, `{base['path']}`, clear {METRIC} {'n/a' if clear is None else f'{100 * clear:.1f}'}"
                  f" on {next(iter(base['tests']))}) and reused by every seed and real fraction, so it has seen "
                  f"{cfg.pretrain_steps} + {cfg.steps} steps"
                  + (f"; `pretrain-finetune` splits the same {cfg.steps} steps between synthetic and real (equal "
                     "total budget)" if "pretrain-finetune" in cfg.arms else "") + "."
                  + (f" {' and '.join(pretrained)} take{'s' if len(pretrained) == 1 else ''} only the base model's "
                     "backbone and FPN; the detection heads start fresh." if cfg.pretrain_parts == "backbone" else ""),
                  ""]
    lines += ["## Verdicts", ""]
    verdict_list = summary["verdicts"] or [{"text": "no arm to compare with real-only"}]
    lines += [f"- {v['text']}" for v in verdict_list] + [""]
    for title, header, body in _tables(summary):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body] + [""]
    lines += ["## How far from converged", "",
              "Relative change of the mean training loss from the third to the last quarter of the steps "
              "(Faster R-CNN's total loss can rise while it learns: read AP first).", "",
              "| arm | real fraction | seed | steps | loss trend | verdict |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in _convergence_rows(summary)] + [""]
    lines += ["## Plots", ""] + [f"![{n}]({PLOTS}/{n})" for n in plot_names] + [""]
    lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    lines += ["## Data", ""] + [f"- {name}: {s.get('images')} images, {s.get('objects')} objects, sha256 "
                                f"`{s.get('sha256', '')[:16]}…` ({s.get('path')})"
                                for name, s in record["sources"].items()] + [""]
    return "\n".join(lines)


def _html(markdown_text: str, pngs: dict[str, bytes], record: dict, summary: dict, cfg, versions: dict) -> str:
    """A self-contained page: the same content, tables as HTML, plots inlined as data URIs."""
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>longtail comparison</title><style>"
             "body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}"
             "img{max-width:100%}.yes{color:#1a7f37}.no{color:#a40e26}</style></head><body>"]
    head = markdown_text.split("## Verdicts")[0]
    for para in head.split("\n\n"):
        if para.startswith("# "):
            parts.append(f"<h1>{esc(para[2:])}</h1>")
        elif para.strip():
            parts.append(f"<p>{esc(para).replace('**', '')}</p>")
    parts.append("<h2>Verdicts</h2><ul>")
    for v in summary["verdicts"]:
        cls = "" if v.get("supported") is None else (" class='yes'" if v["supported"] else " class='no'")
        parts.append(f"<li{cls}>{esc(v['text'])}</li>")
    parts.append("</ul>")
    for title, header, body in _tables(summary):
        parts.append(f"<h3>{esc(title)}</h3><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</table>")
    parts.append("<h2>How far from converged</h2><table><tr><th>arm</th><th>real fraction</th><th>seed</th>"
                 "<th>steps</th><th>loss trend</th><th>verdict</th></tr>")
    parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in _convergence_rows(summary)]
    parts.append("</table><h2>Plots</h2>")
    for name, png in pngs.items():
        parts.append(f"<p><img alt='{esc(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'></p>")
    parts.append("<h2>Versions and data</h2><p>" + esc(", ".join(f"{k} {v}" for k, v in versions.items())) + "</p><ul>")
    parts += [f"<li>{esc(name)}: {s.get('images')} images, {s.get('objects')} objects, sha256 "
              f"<code>{esc(s.get('sha256', ''))}</code></li>" for name, s in record["sources"].items()]
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def write_report(out: Path, record: dict, runs: list[dict], cfg, metrics: dict, versions: dict,
                 base: dict | None = None) -> dict:
    """Write results.json, report.md, report.html and plots/ into ``out``; return the results.
    ``base``: the pretrained arms' base model run (its evaluation), when such an arm ran."""
    out = Path(out)
    if base is not None:
        record = {**record, "pretrain_base": base}
    summary = summarize(runs, cfg)
    pngs = _plots(summary, metrics, cfg)
    for name, png in pngs.items():
        write_bytes(out / PLOTS / name, png)
    results = {**record, "versions": versions, "runs": runs, "summary": summary}
    write_json(out / "results.json", results)
    md = _markdown(record, summary, cfg, list(pngs), versions)
    write_bytes(out / "report.md", md.encode())
    write_bytes(out / "report.html", _html(md, pngs, record, summary, cfg, versions).encode())
    return results
