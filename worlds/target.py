"""From failure slices to a scenario: ``longtail target EVAL_JSON --scenario BASE``.

``evaluate --slices`` ranks where a detector fails (the weakest slice first). ``target`` turns the
weakest slices that a scenario knob can aim at into a copy of the base scenario whose every frame
aims at them (the targeted share is 100 % of the frames of the targeted scenario; a loop mixes
targeted and base frames as it chooses). The mapping, slice -> knob:

=====================  ==========================================================================
slice                  knob of the targeted scenario
=====================  ==========================================================================
visibility_band=B      ``weather``: fog with ``visibility_m_range`` = the band (an open band is
                       closed at half its upper / twice its lower edge); clear fog coverage
weather=fog|rain|snow  ``weather.kind`` (fog 40-250 m; rain and snow at intensity 0.5-1); the
                       records' tags (foggy, rainy, snowy) name the same
time_of_day=T          ``time.hour_range`` of the condition (``scenario.CONDITIONS``: night
                       21:30-23:30, dusk 17:24-18:18, day 09:00-16:00; the records' daytime and
                       dawn/dusk name day and dusk); clear time coverage
distance_band=[a, b)   ``distance_m_range`` = [a, b) of every actor spec of a detected class
height_band=[a, b) px  ``distance_m_range`` of every actor spec of a detected class, from the
                       camera's focal length f (pixels) and the asset's height H (metres): an
                       object of H m stands h = f H / d pixels tall at d metres, so
                       d in (f H / b, f H / a]
occlusion_band=[a, b)  more actors: every actor spec's ``count_range`` doubled (capped at 40) so
                       that they hide each other more often (a > 0 only)
class=C                ``count_range`` of the specs of class C doubled (capped at 40)
=====================  ==========================================================================

Slices no knob reaches (``truncated``, ``scenario``, ``event``, a condition's ``unknown`` cell, a
``clear`` or ``day`` cell when the base already is) are skipped with a reason, and the next ranked
slice is taken; so is a slice whose knob gives a scenario that cannot be placed (its first frames
fail to sample: a distance band that puts a pedestrian inside the event's bus). Knobs of two
targeted slices compose (fog at 50-100 m *and* people at 30-50 m); a second slice of the same
key is skipped.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from longtail.conditions import WEATHER_TAGS
from longtail.errors import InputError, SamplingError
from longtail.readers import load_json, validation_message
from longtail.worlds.assets import get_asset, resolve_asset_names
from longtail.worlds.physics import Physics
from longtail.worlds.sampler import sample
from longtail.worlds.scenario import CONDITIONS, ActorSpec, Scenario

MAX_COUNT = 40  # actors of one spec, at most, after a count is doubled
WEATHER_KNOBS: dict[str, dict[str, Any]] = {
    "fog": {"kind": "fog", "visibility_m_range": (40.0, 250.0)},
    "rain": {"kind": "rain", "intensity_range": (0.5, 1.0)},
    "snow": {"kind": "snow", "intensity_range": (0.5, 1.0)},
}
_NUM = r"[0-9]{1,6}(?:\.[0-9]{1,6})?"
_BAND = re.compile(rf"^(?:<(?P<hi>{_NUM})|>=(?P<lo>{_NUM})|(?P<a>{_NUM})-(?P<b>{_NUM}))\s*m?$")


class SliceRecord(BaseModel):
    """One slice of ``evaluate --slices``' output (``train.slices.compute_slices``)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    key: str
    value: str
    kind: str
    range: tuple[Annotated[float, Field(ge=0, le=1e6)] | None, Annotated[float, Field(ge=0, le=1e6)] | None] | None \
        = None
    rank: int | None = Field(default=None, ge=1)
    support_images: int = 0
    support_objects: int = 0
    gap: float | None = None

    @field_validator("range")
    @classmethod
    def _band(cls, v: tuple[float | None, float | None] | None) -> tuple[float | None, float | None] | None:
        if v is not None and (v == (None, None) or (v[0] is not None and v[1] is not None and not v[0] < v[1])):
            raise ValueError("expected a band [lo, hi) with lo < hi (None: open)")
        return v


class SliceFile(BaseModel):
    model_config = ConfigDict(extra="allow")
    slices: list[SliceRecord]


def load_slices(path: Path) -> tuple[list[SliceRecord], list[str] | None]:
    """The ranked slices (weakest first) of an ``evaluate --slices --out`` JSON file (its
    ``slices`` block, or a file that is that block itself), and the classes it was scored on
    when the file names them (``classes``)."""
    data = load_json(Path(path), "evaluation JSON")
    classes = None
    if isinstance(data, dict):  # compare's and loop's files name them; evaluate's model spec does
        spec = data.get("spec")
        classes = data.get("classes") or (spec.get("classes") if isinstance(spec, dict) else None)
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        classes = None
    block = data.get("slices") if isinstance(data, dict) else None
    if isinstance(block, dict):
        data = block
    if not isinstance(data, dict) or "slices" not in data:
        raise InputError(str(path), "slices", "missing: expected the JSON `longtail evaluate --slices --out` writes")
    try:
        parsed = SliceFile.model_validate(data)
    except ValidationError as e:
        raise validation_message(str(path), e) from None
    return sorted((s for s in parsed.slices if s.rank is not None), key=lambda s: s.rank or 0), classes


def _band(s: SliceRecord) -> tuple[float | None, float | None] | None:
    if s.range is not None:
        return s.range
    m = _BAND.match(s.value.strip())
    if not m:
        return None
    if m["hi"]:
        return (None, float(m["hi"])) if float(m["hi"]) > 0 else None
    if m["lo"]:
        return float(m["lo"]), None
    lo, hi = float(m["a"]), float(m["b"])
    return (lo, hi) if lo < hi else None


def _closed(lo: float | None, hi: float | None) -> tuple[float, float]:
    """An open band closed at half its upper or twice its lower edge."""
    if lo is None and hi is not None:
        return hi / 2, hi
    if hi is None and lo is not None:
        return lo, lo * 2
    assert lo is not None and hi is not None
    return lo, hi


def _classes(spec: ActorSpec) -> set[str]:
    return {get_asset(n).cls for n in resolve_asset_names(spec.asset)}


def _height_m(spec: ActorSpec) -> float:
    """The mean height (metres) of a spec's assets."""
    hs = [sum(get_asset(n).size_range[2]) / 2 for n in resolve_asset_names(spec.asset)]
    return sum(hs) / len(hs)


def focal_px(scenario: Scenario) -> float:
    """The camera's vertical focal length in pixels (the plate's camera for a plate scenario)."""
    if scenario.plate is not None:
        from longtail.worlds.plates.directory import load_plate

        return float(load_plate(Path(scenario.plate)).camera.fy)
    cam = scenario.camera
    if cam.fy is not None:
        return float(cam.fy)
    if cam.fx is not None:
        return float(cam.fx)
    return cam.width / 2 / math.tan(math.radians(cam.hfov_deg) / 2)


def _specs(data: dict, detected: set[str], cls: str | None = None) -> list[dict]:
    """The actor specs (as dicts, to edit) of detected classes (or of class ``cls``)."""
    out = []
    for group in ("events", "traffic"):
        for spec in data.get(group, []):
            classes = _classes(ActorSpec.model_validate(spec))
            if (cls is not None and cls in classes) or (cls is None and classes & detected):
                out.append(spec)
    return out


def _aim(s: SliceRecord, data: dict, base: Scenario, detected: set[str]) -> str:
    """Edit ``data`` (the scenario as a dict) to aim at slice ``s``; return what was done, or raise
    LookupError with why the slice cannot be aimed at."""
    key, value = s.key, s.value
    if value == "unknown":
        raise LookupError("images without this condition")
    if key == "visibility_band":
        band = _band(s)
        if band is None or band[0] is not None and band[0] >= 1000:
            raise LookupError("clear air: the base's own frames")
        lo, hi = _closed(*band)
        data["weather"] = {**data.get("weather", {}), "kind": "fog", "visibility_m_range": [lo, hi]}
        data["coverage"] = {k: v for k, v in data.get("coverage", {}).items() if CONDITIONS[k][0] != "weather"}
        return f"weather: fog, visibility {lo:g}-{hi:g} m"
    if key == "weather":
        value = {tag: kind for kind, tag in WEATHER_TAGS.items()}.get(value, value)  # "foggy" -> "fog"
        if value not in WEATHER_KNOBS:
            raise LookupError(f"weather {value!r}: the base's own frames" if value == "clear" else
                              f"no knob for weather {value!r}")
        data["weather"] = {**WEATHER_KNOBS[value]}
        data["coverage"] = {k: v for k, v in data.get("coverage", {}).items() if CONDITIONS[k][0] != "weather"}
        return f"weather: {value}"
    if key == "time_of_day":
        name = {"daytime": "day", "dawn/dusk": "dusk", "nighttime": "night"}.get(value, value)
        if name not in CONDITIONS or CONDITIONS[name][0] != "time":
            raise LookupError(f"no knob for time of day {value!r}")
        hours = CONDITIONS[name][1]["hour_range"]
        data["time"] = {**data.get("time", {}), "hour_range": list(hours)}
        data["coverage"] = {k: v for k, v in data.get("coverage", {}).items() if CONDITIONS[k][0] != "time"}
        return f"time: {name}, hours {hours[0]:g}-{hours[1]:g}"
    if key in ("distance_band", "height_band"):
        band = _band(s)
        specs = _specs(data, detected)
        if band is None or not specs:
            raise LookupError("no actor spec of a detected class" if band is not None else "not a band")
        done = []
        for spec in specs:
            if key == "distance_band":
                lo, hi = _closed(*band)
            else:  # h = f H / d  ->  d = f H / h
                f, h_m = focal_px(base), _height_m(ActorSpec.model_validate(spec))
                h_lo, h_hi = _closed(*band)
                lo, hi = f * h_m / max(h_hi, 1.0), f * h_m / max(h_lo, 1.0)
            lo, hi = max(lo, 1.0), min(max(hi, lo + 1.0), 1000.0)
            spec["distance_m_range"] = [round(lo, 2), round(hi, 2)]
            done.append(f"{spec['asset']} {lo:.1f}-{hi:.1f} m")
        return "distance: " + ", ".join(done)
    if key in ("occlusion_band", "class"):
        band = _band(s) if key == "occlusion_band" else None
        if key == "occlusion_band" and (band is None or not band[0]):
            raise LookupError("unoccluded objects: the base's own frames")
        specs = _specs(data, detected) if key == "occlusion_band" else _specs(data, detected, value)
        if not specs:
            raise LookupError(f"no actor spec of class {value!r}" if key == "class" else "no actor spec")
        targets = [sp for g in ("events", "traffic") for sp in data.get(g, [])] if key == "occlusion_band" else specs
        for spec in targets:
            lo, hi = spec.get("count_range", [1, 1])
            spec["count_range"] = [min(MAX_COUNT, max(1, 2 * lo)), min(MAX_COUNT, max(1, 2 * hi))]
        return f"more actors: count ranges doubled ({len(targets)} specs)"
    raise LookupError(f"no knob for {key}")


def target_scenario(slices: list[SliceRecord], base: Scenario, top: int = 1,
                    detected: set[str] | None = None) -> tuple[Scenario, list[dict]]:
    """The base scenario aimed at its ``top`` weakest reachable slices (ranked order), and one
    entry per slice looked at: ``{"slice": "key=value", "rank", "gap", "knob"}`` for the targeted
    ones, ``{"slice", "rank", "skipped": why}`` for the others before them. ``detected``: the
    classes the detector was scored on (default: person and car)."""
    detected = detected if detected is not None else {"person", "car"}
    with Physics() as physics:
        return _target(slices, base, top, detected, physics)


def _target(slices: list[SliceRecord], base: Scenario, top: int, detected: set[str],
            physics: Physics) -> tuple[Scenario, list[dict]]:
    data = base.model_dump(mode="json", by_alias=True)
    plan: list[dict] = []
    keys: set[str] = set()
    for s in slices:
        if sum("knob" in p for p in plan) >= top:
            break
        band = _band(s) if s.key.endswith("_band") else None
        entry = {"slice": f"{s.key}={s.value}", "rank": s.rank, "gap": s.gap,
                 "range": list(band) if band is not None else None}
        group = "weather" if s.key in ("weather", "visibility_band") else s.key
        if group in keys:
            plan.append({**entry, "skipped": f"a {group} slice is targeted already"})
            continue
        trial = _copy(data)
        try:
            what = _aim(s, trial, base, detected)
            _placeable(Scenario.model_validate(trial), physics)
        except LookupError as e:
            plan.append({**entry, "skipped": str(e)})
            continue
        except ValidationError as e:
            plan.append({**entry, "skipped": f"outside the scenario's ranges ({e.errors()[0]['msg']})"})
            continue
        except SamplingError as e:
            plan.append({**entry, "skipped": f"its frames cannot be placed ({e.problem})"})
            continue
        data = trial
        keys.add(group)
        plan.append({**entry, "knob": what})
    if not any("knob" in p for p in plan):
        raise InputError("slices", None, "no ranked slice can be aimed at by a scenario knob ("
                         + "; ".join(f"{p['slice']}: {p['skipped']}" for p in plan) + ")" if plan else
                         "no ranked slice: evaluate on more images or lower --min-support")
    data["name"] = f"{base.name}_targeted"[:64]
    aims = "; ".join(f"{p['slice']} ({p['knob']})" for p in plan if "knob" in p)
    data["description"] = f"{base.description} Targeted at {aims}."
    return Scenario.model_validate(data), plan


PROBE_FRAMES = 3  # frames of a targeted scenario sampled to show it can be placed


def _placeable(scenario: Scenario, physics: Physics) -> None:
    """Sample the first frames of ``scenario``; SamplingError if its world cannot hold them (a
    distance band that puts a pedestrian inside the bus of the event, say)."""
    for i in range(PROBE_FRAMES):
        sample(scenario, 0, i, physics)


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def scenario_yaml(scenario: Scenario, plan: list[dict], source: str) -> str:
    """The targeted scenario as YAML, with a header saying which slices it aims at and how."""
    import yaml

    lines = [f"# Targeted by `longtail target` from {source}: every frame aims at the slices below", "#"]
    for p in plan:
        gap = "" if p.get("gap") is None else f", gap {100 * p['gap']:+.1f} points"
        lines.append(f"#   rank {p['rank']}: {p['slice']}{gap} -> "
                     + (p["knob"] if "knob" in p else f"skipped ({p['skipped']})"))
    body = yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True, exclude_defaults=True), sort_keys=False,
                          default_flow_style=None)
    return "\n".join(lines) + "\n" + body
