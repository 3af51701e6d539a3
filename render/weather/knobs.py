"""Weather knobs: one physical parameter of the weather stage set exactly (no preset, no random
band), for robustness curves (``longtail evaluate --sweep``, ``train.weather``) and condition ramps
over saved footage (``longtail augment --ramp``).

A ``Knob`` names the parameter (``group.parameter_unit``), its unit, its valid range and whether
it is spaced in log; ``knob_transform`` builds the weather stage's transform (albumentations, p = 1)
that sets it; ``parse_sweep`` reads ``KNOB=FROM..TO:N`` (a sweep: N separate values) and
``parse_ramp`` reads ``KNOB=FROM..TO[:log|linear]`` (a ``Ramp``: one value per step of a sequence,
``ramp_value``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from longtail.errors import ParameterError
from longtail.render.weather.fog import koschmieder_beta
from longtail.render.weather.transforms import DayToNight, DepthFog, FrameCamera

NIGHT_GAIN_AT_FULL_LIGHT = 0.3  # the night preset's camera: gain x skylight = 0.3 at both ends (6 x 5 %, 20 x 1.5 %)
DUSK_ABOVE = 0.1  # skylight (fraction of daylight) above which the redrawn sky is dusk's, below it night's
# Foggy Cityscapes (Sakaridis et al., 2018): homogeneous fog of these extinction coefficients, 1/m
FOGGY_CITYSCAPES_BETA = (0.005, 0.01, 0.02)
MAX_SWEEP_POINTS = 100
RAMP_CURVES = ("log", "linear")


@dataclass(frozen=True)
class Knob:
    """A physical weather parameter a sweep sets exactly (no preset, no random band).

    Attributes:
        name: ``group.parameter_unit`` as written after ``--sweep``.
        unit: printed after values ("m", "1/m", "EV").
        log: values are spaced evenly in log (visibility, extinction) or linearly (EV).
        low, high: the range the weather stage accepts.
        milder: +1 when a larger value is milder weather (visibility, EV), -1 when harsher (beta).
        summary: name of the value where AP50 falls to half its clear value ("V50").
        meaning: what the value physically is (for the JSON and the docs).
    """

    name: str
    unit: str
    log: bool
    low: float
    high: float
    milder: int
    summary: str
    meaning: str

    def fmt(self, value: float) -> str:
        return f"{value:.4g} {self.unit}"


KNOBS: dict[str, Knob] = {k.name: k for k in (
    Knob("fog.visibility_m", "m", True, 1.0, 1e5, +1, "V50",
         "homogeneous fog of this meteorological visibility V (the weather stage's DepthFog: 5 % contrast "
         "threshold, beta = -ln(0.05) / V = 2.996 / V per metre; each pixel keeps exp(-beta d) of its radiance "
         "at ray distance d, the rest is airlight); no scattering blur"),
    Knob("fog.beta_per_m", "1/m", True, 1e-5, 3.0, -1, "beta50",
         "homogeneous fog of this extinction coefficient beta (per metre; Foggy Cityscapes uses 0.005, 0.01, "
         "0.02), i.e. visibility 2.996 / beta; otherwise as fog.visibility_m"),
    Knob("night.skylight_ev", "EV", False, -10.0, 0.0, +1, "EV50",
         "the daylight left on the scene, in stops below daylight: the weather stage's DayToNight with "
         "ambient = 2^EV of daylight (the night preset spans -4.3 EV (5 %) to -6.1 EV (1.5 %), dusk -1.2 to "
         "-3.1 EV), lit by the car's low beams, a dusk sky above 10 % and a night sky below, sensor noise of "
         "the preset's auto-gain (gain = 0.3 / ambient), no motion blur"),
)}


def get_knob(name: str) -> Knob:
    """The sweep knob ``name``; an unknown name raises ParameterError (``sweep``) listing them."""
    if name not in KNOBS:
        raise ParameterError("sweep", f"unknown knob {name!r}; expected KNOB=FROM..TO:N with KNOB one of "
                             f"{', '.join(KNOBS)}")
    return KNOBS[name]


def sweep_values(knob: Knob | str, start: float, stop: float, n: int) -> tuple[float, ...]:
    """``n`` values from ``start`` to ``stop`` (both exactly), evenly in log for log knobs."""
    knob = get_knob(knob) if isinstance(knob, str) else knob
    if n < 2 or n > MAX_SWEEP_POINTS:
        raise ParameterError("sweep", f"expected 2 to {MAX_SWEEP_POINTS} values (the N of {knob.name}=FROM..TO:N), "
                             f"got {n}")
    for v in (start, stop):
        if not (math.isfinite(v) and knob.low <= v <= knob.high):
            raise ParameterError("sweep", f"{knob.name} must lie in [{knob.low:g}, {knob.high:g}] {knob.unit}, "
                                 f"got {v:g}")
    if start == stop:
        raise ParameterError("sweep", f"expected FROM != TO in {knob.name}=FROM..TO:N, got {start:g} twice")
    if knob.log:
        values = np.exp(np.linspace(math.log(start), math.log(stop), n))
    else:
        values = np.linspace(start, stop, n)
    out = [float(v) for v in values]
    out[0], out[-1] = float(start), float(stop)
    return tuple(out)


def parse_sweep(text: str) -> tuple[Knob, tuple[float, ...]]:
    """``KNOB=FROM..TO:N`` -> (the knob, its N values); ParameterError (``sweep``) says what was
    expected. E.g. ``fog.visibility_m=2000..30:10``, ``night.skylight_ev=0..-8:5``."""
    syntax = f"expected KNOB=FROM..TO:N (e.g. fog.visibility_m=2000..30:10; KNOB one of {', '.join(KNOBS)})"
    name, eq, rest = text.strip().partition("=")
    span, colon, count = rest.rpartition(":")
    ends = span.split("..")
    if not (eq and colon and len(ends) == 2):
        raise ParameterError("sweep", f"{syntax}, got {text!r}")
    knob = get_knob(name.strip())
    try:
        start, stop = float(ends[0]), float(ends[1])
    except ValueError:
        raise ParameterError("sweep", f"expected numbers FROM and TO in {knob.name}=FROM..TO:N, got {span!r}") from None
    try:
        n = int(count)
    except ValueError:
        raise ParameterError("sweep", f"expected a whole number N >= 2 in {knob.name}=FROM..TO:N, got {count!r}") \
            from None
    return knob, sweep_values(knob, start, stop, n)


@dataclass(frozen=True)
class Ramp:
    """One knob changing continuously over a sequence (``longtail augment --ramp``): step k of n
    takes the value at u = k / (n - 1) between ``start`` and ``stop``, geometrically for the
    ``log`` curve and arithmetically for ``linear``, as a scenario's ``ramp:`` block does
    (``worlds.scenario.RampSpec``). Checked on construction (ParameterError ``ramp``).

    Attributes:
        knob: the knob it sets.
        start, stop: the values at the first and the last step (both exact), in the knob's unit.
        curve: ``log`` or ``linear``.
    """

    knob: Knob
    start: float
    stop: float
    curve: str

    def __post_init__(self):
        k = self.knob
        for v in (self.start, self.stop):
            if not (math.isfinite(v) and k.low <= v <= k.high):
                raise ParameterError("ramp", f"{k.name} must lie in [{k.low:g}, {k.high:g}] {k.unit}, got {v:g}")
        if self.start == self.stop:
            raise ParameterError("ramp", f"expected FROM != TO in {k.name}=FROM..TO, got {self.start:g} twice")
        if self.curve not in RAMP_CURVES:
            raise ParameterError("ramp", f"unknown curve {self.curve!r}; expected {' or '.join(RAMP_CURVES)}")
        if self.curve == "log" and min(self.start, self.stop) <= 0:
            raise ParameterError("ramp", f"the log curve interpolates geometrically and needs FROM and TO > 0, got "
                                 f"{self.start:g}..{self.stop:g}; use :linear")

    def at(self, step: int, steps: int) -> float:
        """The value at step ``step`` of ``steps`` (``ramp_value``)."""
        return ramp_value(self, step, steps)

    def describe(self) -> dict:
        """{knob, unit, from, to, curve}: what a record or a sidecar says the ramp was."""
        return {"knob": self.knob.name, "unit": self.knob.unit, "from": self.start, "to": self.stop,
                "curve": self.curve}

    def __str__(self) -> str:
        return f"{self.knob.name}={self.start:g}..{self.stop:g}:{self.curve}"


def ramp_value(ramp: Ramp, step: int, steps: int) -> float:
    """The value of ``ramp`` at step ``step`` (0-based) of ``steps``: u = step / (steps - 1),
    exactly ``start`` at u = 0 (and for ``steps`` = 1) and exactly ``stop`` at u = 1."""
    if not 0 <= step < steps:
        raise ParameterError("ramp", f"expected a step in 0..{steps - 1}, got {step}")
    u = step / (steps - 1) if steps > 1 else 0.0
    if u <= 0.0:
        return float(ramp.start)
    if u >= 1.0:
        return float(ramp.stop)
    if ramp.curve == "log":
        return float(math.exp(math.log(ramp.start) + u * (math.log(ramp.stop) - math.log(ramp.start))))
    return float(ramp.start + u * (ramp.stop - ramp.start))


def parse_ramp(text: str) -> Ramp:
    """``KNOB=FROM..TO[:log|linear]`` -> a Ramp; without a curve the knob's natural spacing (log
    for fog, linear for EV). ParameterError (``ramp``) says what was expected. E.g.
    ``fog.visibility_m=1500..30``, ``night.skylight_ev=0..-8:linear``."""
    syntax = f"expected KNOB=FROM..TO[:log|linear] (e.g. fog.visibility_m=1500..30; KNOB one of {', '.join(KNOBS)})"
    name, eq, rest = str(text).strip().partition("=")
    span, colon, curve = rest.partition(":")
    ends = span.split("..")
    if not (eq and len(ends) == 2):
        raise ParameterError("ramp", f"{syntax}, got {text!r}")
    name, curve = name.strip(), curve.strip()
    if name not in KNOBS:
        raise ParameterError("ramp", f"unknown knob {name!r}; expected KNOB=FROM..TO with KNOB one of "
                             f"{', '.join(KNOBS)}")
    knob = KNOBS[name]
    if colon and curve not in RAMP_CURVES:
        raise ParameterError("ramp", f"unknown curve {curve!r} in {text!r}; expected :log or :linear (or none: "
                             f"{knob.name} is spaced {'log' if knob.log else 'linear'} by default)")
    try:
        start, stop = float(ends[0]), float(ends[1])
    except ValueError:
        raise ParameterError("ramp", f"expected numbers FROM and TO in {knob.name}=FROM..TO, got {span!r}") from None
    return Ramp(knob, start, stop, curve or ("log" if knob.log else "linear"))


def knob_transform(knob: Knob, value: float, camera: FrameCamera | None = None):
    """The weather stage's transform (albumentations, p = 1) that sets ``knob`` to ``value``."""
    if knob.name in ("fog.visibility_m", "fog.beta_per_m"):
        v = float(value) if knob.name == "fog.visibility_m" else koschmieder_beta(1.0) / float(value)
        return DepthFog(visibility_m_range=(v, v), camera=camera, p=1.0)
    if knob.name == "night.skylight_ev":
        ambient = 2.0 ** float(value)
        gain = NIGHT_GAIN_AT_FULL_LIGHT / ambient
        return DayToNight(ambient_range=(ambient, ambient), sky="dusk" if ambient >= DUSK_ABOVE else "night",
                          gain_range=(gain, gain), motion_blur_m_range=(0.0, 0.0), camera=camera, p=1.0)
    raise ParameterError("sweep", f"no transform for knob {knob.name!r}")


def foggy_cityscapes_marks(knob: Knob | str) -> list[tuple[float, str]]:
    """Foggy Cityscapes' three fog densities on a fog knob's axis: (value, label)."""
    name = knob if isinstance(knob, str) else knob.name
    if name == "fog.visibility_m":
        return [(koschmieder_beta(1.0) / b, f"Foggy Cityscapes beta {b:g} ({koschmieder_beta(1.0) / b:.0f} m)")
                for b in FOGGY_CITYSCAPES_BETA]
    if name == "fog.beta_per_m":
        return [(b, f"Foggy Cityscapes beta {b:g}") for b in FOGGY_CITYSCAPES_BETA]
    return []
