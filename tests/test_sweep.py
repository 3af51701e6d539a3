"""``longtail evaluate --sweep KNOB=FROM..TO:N``: robustness as a curve in physical units (fog
visibility, night skylight), its half point (V50) and the weather of an exact physical value."""

import json
import math
import sys
from pathlib import Path

sys.modules.setdefault("triton", None)  # torch's triton and PyBullet's EGL plugin crash one process

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from longtail.cli import main  # noqa: E402
from longtail.errors import ParameterError  # noqa: E402
from longtail.train.entries import make_entry  # noqa: E402
from longtail.train.weather import (  # noqa: E402
    GroundPrior, apply_knob, foggy_cityscapes_marks, get_knob, half_point, parse_sweep, sweep_values, v50,
)

# --- parsing ------------------------------------------------------------------------------------


def test_visibility_sweep_is_log_spaced_with_exact_endpoints():
    knob, values = parse_sweep("fog.visibility_m=2000..30:10")
    assert knob.name == "fog.visibility_m" and len(values) == 10
    assert values[0] == 2000.0 and values[-1] == 30.0
    assert all(a > b for a, b in zip(values, values[1:]))
    ratios = [a / b for a, b in zip(values, values[1:])]
    assert np.allclose(ratios, (2000 / 30) ** (1 / 9))  # evenly spaced in log
    assert parse_sweep(" fog.beta_per_m=0.001..0.05:4 ")[1][-1] == 0.05


def test_night_sweep_is_linear_in_stops():
    knob, values = parse_sweep("night.skylight_ev=0..-4:5")
    assert knob.summary == "EV50" and not knob.log
    assert values == (0.0, -1.0, -2.0, -3.0, -4.0)
    assert sweep_values("night.skylight_ev", -6, -2, 3) == (-6.0, -4.0, -2.0)


@pytest.mark.parametrize("text, expect", [
    ("fog.density=2000..30:10", "unknown knob 'fog.density'"),
    ("fog.visibility_m=2000..30:1", "expected 2 to 100 values"),
    ("fog.visibility_m=2000..30:ten", "expected a whole number N >= 2"),
    ("fog.visibility_m=2000..thirty:10", "expected numbers FROM and TO"),
    ("fog.visibility_m=2000-30:10", "expected KNOB=FROM..TO:N"),
    ("fog.visibility_m=2000..30", "expected KNOB=FROM..TO:N"),
    ("fog.visibility_m=0..30:5", "must lie in [1, 100000] m"),
    ("fog.visibility_m=30..30:5", "expected FROM != TO"),
    ("night.skylight_ev=0..2:3", "must lie in [-10, 0] EV"),
    ("fog.visibility_m=nan..30:5", "must lie in"),
])
def test_bad_sweeps_say_what_was_expected(text, expect):
    with pytest.raises(ParameterError) as e:
        parse_sweep(text)
    assert e.value.param == "sweep" and expect in str(e.value) and "\n" not in str(e.value)


def test_bad_sweep_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    for bad in ("fog.visibility_m=2000..30:1", "smog.visibility_m=2000..30:10", "fog.visibility_m=a..b:3"):
        code = main(["evaluate", str(tmp_path / "none.pt"), "--data", str(tmp_path), "--sweep", bad])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1 and err.startswith("longtail: error: --sweep: "), err
    assert main(["evaluate", str(tmp_path / "none.pt"), "--data", str(tmp_path), "--sweep",
                 "fog.visibility_m=100..50:2", "--sweep", "fog.visibility_m=30..20:2"]) == 2
    assert "each knob once" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "none.pt"), "--data", str(tmp_path), "--plot", "p.png"]) == 2
    assert "--plot: needs one or more --sweep" in capsys.readouterr().err


# --- the half point -----------------------------------------------------------------------------

def _curve(pairs):
    return [{"value": v, "AP50": a, "AP": None, "images": 4} for v, a in pairs]


def test_v50_interpolates_on_the_log_axis_between_the_bracketing_points():
    curve = _curve([(2000, 0.80), (800, 0.70), (200, 0.50), (50, 0.10)])
    # clear 0.8 -> half 0.4: between 200 m (0.5) and 50 m (0.1), a quarter of the way in log
    assert v50(curve, 0.8) == pytest.approx(math.exp(math.log(200) + 0.25 * (math.log(50) - math.log(200))))
    assert v50(curve, 0.8) == pytest.approx(200 / 4 ** 0.25)  # ~141 m, not the linear 162.5 m
    # the order the sweep ran in does not matter: the curve is read from mild to harsh
    assert v50(list(reversed(curve)), 0.8) == pytest.approx(200 / 4 ** 0.25)
    # the first crossing from the mild side, a point exactly at half is the crossing
    assert v50(_curve([(1000, 0.9), (300, 0.5), (100, 0.2)]), 1.0) == pytest.approx(300)
    assert v50(_curve([(1000, 0.9), (300, None), (100, 0.3)]), 1.0) == pytest.approx(
        math.exp(math.log(1000) + 0.4 / 0.6 * (math.log(100) - math.log(1000))))


def test_v50_is_none_with_a_reason_when_there_is_no_crossing():
    never = _curve([(2000, 0.8), (300, 0.7), (30, 0.45)])
    assert v50(never, 0.8) is None
    assert "above half the clear AP50 (0.400) at every value down to 30 m" in half_point(never, 0.8)[1]
    below = _curve([(2000, 0.3), (300, 0.2), (30, 0.1)])
    assert v50(below, 0.8) is None and "below half" in half_point(below, 0.8)[1]
    assert v50(below, 0.0) is None and "no clear AP50" in half_point(below, 0.0)[1]
    assert v50(below, None) is None


def test_ev50_is_linear_in_stops_and_beta50_reads_beta_upwards():
    night = _curve([(0, 0.6), (-2, 0.5), (-4, 0.1)])
    assert half_point(night, 0.6, "night.skylight_ev")[0] == pytest.approx(-2 - 2 * 0.2 / 0.4)
    beta = _curve([(0.001, 0.8), (0.01, 0.6), (0.1, 0.2)])  # larger beta = thicker fog
    assert half_point(beta, 0.8, "fog.beta_per_m")[0] == pytest.approx(10 ** (-2 + 0.5))


def test_foggy_cityscapes_densities_on_the_visibility_axis():
    # the fog stage's visibility is the meteorological optical range (5 % contrast): V = -ln(0.05) / beta
    marks = [v for v, _ in foggy_cityscapes_marks("fog.visibility_m")]
    assert marks == pytest.approx([599.15, 299.57, 149.79], rel=1e-4)
    assert [v for v, _ in foggy_cityscapes_marks("fog.beta_per_m")] == [0.005, 0.01, 0.02]


# --- the weather of one physical value ----------------------------------------------------------

def _ground(j: int, size: int = 64, d: float = 50.0) -> tuple[torch.Tensor, np.ndarray]:
    """A frame of sky (top quarter, grey-blue, depth inf) over a flat grey ``j`` at z-depth ``d``."""
    img = np.full((size, size, 3), j, np.uint8)
    img[: size // 4] = (170, 190, 215)
    depth = np.full((size, size), d, np.float32)
    depth[: size // 4] = np.inf
    return torch.from_numpy(img).permute(2, 0, 1).contiguous(), depth


@pytest.mark.parametrize("visibility", [2000.0, 200.0, 60.0])
def test_fog_of_a_visibility_keeps_exp_minus_beta_d_of_the_radiance(visibility):
    entry = make_entry(Path("frame.png"), 64, 64, 1, [], [])
    d = 50.0
    knob = get_knob("fog.visibility_m")
    (black, depth), (white, _) = _ground(0, d=d), _ground(255, d=d)
    # same sky -> same airlight: the difference of the two fogged frames is 255 t
    out0 = apply_knob(black, entry, GroundPrior(), knob, visibility, seed=1, depth=depth).float()
    out1 = apply_knob(white, entry, GroundPrior(), knob, visibility, seed=1, depth=depth).float()
    t = (out1 - out0)[:, 32, 32].mean().item() / 255  # the principal point: ray distance = z-depth
    beta = -math.log(0.05) / visibility  # 2.996 / V: the stage's meteorological visibility
    assert t == pytest.approx(math.exp(-beta * d), abs=0.01)
    # the same through the extinction knob
    beta_knob = get_knob("fog.beta_per_m")
    t_beta = (apply_knob(white, entry, GroundPrior(), beta_knob, beta, 1, depth).float()
              - apply_knob(black, entry, GroundPrior(), beta_knob, beta, 1, depth).float())[:, 32, 32].mean() / 255
    assert t_beta.item() == pytest.approx(t, abs=0.005)


def test_night_skylight_darkens_stop_by_stop():
    entry = make_entry(Path("frame.png"), 64, 64, 1, [], [])
    image, depth = _ground(200, d=200.0)  # beyond the low beams' 90 m: only skylight lights it
    knob = get_knob("night.skylight_ev")
    ground = [apply_knob(image, entry, GroundPrior(), knob, ev, 3, depth)[:, 16:].float().mean().item()
              for ev in (0.0, -2.0, -4.0, -6.0)]
    assert all(a > b for a, b in zip(ground, ground[1:])), ground
    # the shading albedo x ambient through the exposure curve: 1 - exp(-1.6 x 0.78 x 2^EV)
    expect = [255 * (1 - math.exp(-1.6 * 200 / 255 * 2.0 ** ev)) for ev in (0.0, -2.0, -4.0, -6.0)]
    assert ground == pytest.approx(expect, abs=4.0)


# --- end to end ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from longtail.pipeline import render_dataset
    from longtail.worlds.scenario import load_scenario

    out = tmp_path_factory.mktemp("sweep") / "campus"
    render_dataset(load_scenario("campus_crossing").with_resolution(192, 144), out, frames=4, seed=3)
    return out


def test_evaluate_sweep_writes_the_curve_v50_and_the_plot(synthetic, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(synthetic), "--steps", "2", "--out", str(run), "--model",
                 "ssdlite320_mobilenet_v3_large", "--img-size", "96", "96", "--batch", "2", "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "m.json"
    assert main(["evaluate", str(run / "checkpoint.pt"), "--data", str(synthetic), "--out", str(out),
                 "--sweep", "fog.visibility_m=2000..30:3", "--sweep", "night.skylight_ev=0..-6:2"]) == 0
    printed = capsys.readouterr().out
    print(printed)  # the table, for the record (pytest -s)
    assert "sweep fog.visibility_m:" in printed and "fog.visibility_m (m)" in printed and "V50" in printed
    assert "EV50" in printed and "sweep plot:" in printed
    sweeps = json.loads(out.read_text())["sweeps"]
    fog = sweeps["fog.visibility_m"]
    assert [p["value"] for p in fog["curve"]] == pytest.approx([2000.0, (2000 * 30) ** 0.5, 30.0])
    assert all(p["images"] == 4 and set(p) == {"value", "AP50", "AP", "images"} for p in fog["curve"])
    assert fog["summary"] == "V50" and "V50" in fog and "V50_reason" in fog
    assert (fog["V50"] is None) == (fog["V50_reason"] is not None)
    assert fog["clear"]["images"] == 4 and fog["spacing"] == "log"
    assert sweeps["night.skylight_ev"]["summary"] == "EV50"
    assert [p["value"] for p in sweeps["night.skylight_ev"]["curve"]] == [0.0, -6.0]
    png = tmp_path / "m_sweep.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
