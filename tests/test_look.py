"""render/: the look (sky, textures, night lights, anti-aliasing) changes RGB only, where it should."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from longtail.pipeline import render_scene
from longtail.classes import get_class
from longtail.render.lighting import upsample_by_depth
from longtail.render.look import to_uint8
from longtail.render.look import bloom, edge_antialias, emission, texture_gain
from longtail.render.sky import sky_image
from longtail.worlds.sampler import sample
from longtail.worlds.scenario import load_scenario, parse_scenario


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` whose 8 neighbours are in it too (away from anti-aliased edges)."""
    m = np.pad(mask, 1)
    out = mask.copy()
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            out &= m[1 + dr:m.shape[0] - 1 + dr, 1 + dc:m.shape[1] - 1 + dc]
    return out


def test_sky_is_composited_exactly_where_nothing_was_rendered(renderer):
    scene = sample(load_scenario("animal_herd").with_resolution(320, 192), 0, 0)
    buf = render_scene(scene, renderer)
    sky = ~np.isfinite(buf.depth)
    assert sky.any() and (~sky).any()
    assert np.array_equal(sky, buf.semantic == get_class("sky").id)
    assert np.all(buf.instance[sky] == 0)
    inner = _interior(sky)
    expected = to_uint8(sky_image(scene, sky))
    got = buf.rgb[sky]
    keep = inner[sky]
    assert np.array_equal(got[keep], expected[keep])


def test_sun_disk_shows_where_the_sun_is():
    sc = parse_scenario({"name": "sun", "description": "d", "time": {"hour_range": [17.0, 17.0],
                         "sun_azimuth_deg_range": [0, 0]}, "camera": {"width": 320, "height": 192,
                         "pitch_deg_range": [0, 0]}}, "sun")
    scene = sample(sc, 0, 0)
    e = scene.sun.elevation
    assert 0 < e < math.radians(20)
    sky = sky_image(scene)
    v_sun = scene.camera.cy - scene.camera.fy * math.tan(e)  # straight ahead, e above the horizon
    rows, cols = np.nonzero(sky.min(-1) >= 0.999)  # the white disk (and the glow saturating around it)
    assert rows.size
    assert abs(cols.mean() + 0.5 - scene.camera.cx) <= 1.5 and abs(rows.mean() + 0.5 - v_sun) <= 3


def test_night_is_darker_than_day_except_where_lit(renderer):
    base = sample(load_scenario("night_jaywalker").with_resolution(320, 192), 4, 0)
    day = base.model_copy(update={"sun": base.sun.model_copy(update={"hour": 12.0, "elevation": math.radians(50)})})
    night = base.model_copy(update={"sun": base.sun.model_copy(update={"hour": 23.0, "elevation": math.radians(-40)})})
    a, b = render_scene(day, renderer), render_scene(night, renderer)
    assert np.array_equal(a.instance, b.instance) and np.array_equal(a.depth, b.depth)
    lum = lambda x: x.astype(float).mean(-1)  # noqa: E731
    day_l, night_l = lum(a.rgb), lum(b.rgb)
    assert night_l.mean() < 0.7 * day_l.mean()
    upper = slice(None, 192 // 2)  # above the horizon the low beams do not reach: dark
    assert np.median(night_l[upper]) < 0.35 * np.median(day_l[upper])
    lower = slice(int(0.75 * 192), None)  # the road just ahead, in the low beams
    assert night_l[lower].mean() > 3 * np.median(night_l[upper])


def test_emissive_parts_glow_at_night():
    albedo = np.zeros((40, 60, 3), np.uint8)
    albedo[10:14, 20:26] = [191, 10, 7]  # tail light colour, unlit
    albedo[30:32, 5:8] = [31, 116, 201]  # some paint
    em = emission(albedo)
    assert em[12, 22, 0] > 1.0 and em[31, 6].sum() == 0
    glow = bloom(em)
    assert glow[16, 23, 0] > 0 and glow[39, 59].sum() == 0


def test_antialiasing_touches_only_edges():
    img = np.zeros((20, 30, 3), np.float32)
    img[5:15, 10:20] = 1.0
    inst = np.zeros((20, 30), np.uint16)
    inst[5:15, 10:20] = 1
    sem = inst.astype(np.uint8)
    depth = np.full((20, 30), 10.0, np.float32)
    out = edge_antialias(img, inst, sem, depth)
    changed = np.any(out != img, axis=-1)
    assert changed.any()
    edge = np.zeros_like(changed)
    edge[4:16, 9:21] = True
    edge[6:14, 11:19] = False
    assert not np.any(changed & ~edge), "only pixels next to the silhouette change"
    assert np.all((out >= 0) & (out <= 1))


def test_textures_are_fixed_functions_of_world_position():
    sem = np.full((4, 5), get_class("road").id, np.uint8)
    x = np.linspace(0, 3, 20, dtype=np.float32).reshape(4, 5)
    y = np.zeros_like(x)
    z = np.zeros_like(x)
    d = np.full_like(x, 5.0)
    g1 = texture_gain(sem, x, y, z, d)
    g2 = texture_gain(sem, x, y, z, d)
    assert np.array_equal(g1, g2) and g1.std() > 0 and np.all((g1 >= 0.5) & (g1 <= 1.5))
    far = texture_gain(sem, x, y, z, np.full_like(x, 100.0))  # the fine grain fades with distance
    step = lambda g: np.abs(np.diff(g.ravel())).mean()  # noqa: E731 - change between neighbouring samples
    assert step(far) < 0.5 * step(g1)


def test_kitti_preset_camera():
    sc = parse_scenario({"name": "k", "description": "d", "camera": {"preset": "kitti"}}, "k")
    cam = sample(sc, 0, 0).camera
    assert (cam.width, cam.height) == (1242, 375)
    assert cam.fx == pytest.approx(721.5377) and cam.cx == pytest.approx(609.5593)
    assert cam.position[2] == pytest.approx(1.65)


def test_preview_gallery(tmp_path):
    from longtail.cli import main

    out = tmp_path / "d"
    assert main(["render", "--scenario", "fallen_cargo", "--frames", "2", "--out", str(out), "--seed", "1",
                 "--width", "160", "--height", "96", "--quiet", "--preview", str(tmp_path / "g.png")]) == 0
    with Image.open(tmp_path / "g.png") as im:
        assert im.size == (4 * 320, 2 * 192)
        arr = np.asarray(im)
    assert arr[:, 320:640].std() > 0 and arr[:, 960:].std() > 0  # semantic and depth panels drawn


def test_cast_shadows_fall_away_from_the_sun():
    from longtail.render.look import cast_shadows

    # a 2 m cube at the origin, sun 45 deg up in the +x direction: shadow on x in [-3, -1]
    boxes = np.array([[[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (0, 2)]], float)
    sun = np.array([math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4)])
    xs = np.linspace(-5, 5, 101, dtype=np.float32)
    x = np.tile(xs, (3, 1))
    y = np.zeros_like(x)
    sem = np.full(x.shape, get_class("road").id, np.uint8)
    out = cast_shadows(np.ones((*x.shape, 3), np.float32), sem, x, y, boxes, sun)[1, :, 0]
    assert np.all(out[(xs > -2.8) & (xs < -1.2)] < 0.6) and np.all(out[(xs > 1.2) | (xs < -3.2)] == 1.0)
    sky = np.full(x.shape, get_class("sky").id, np.uint8)  # only the ground receives shadows
    assert np.all(cast_shadows(np.ones((*x.shape, 3), np.float32), sky, x, y, boxes, sun) == 1.0)


def _upsample_reference(low, low_depth, depth):
    """upsample_by_depth pixel by pixel: the nearest in depth of the four low-resolution
    neighbours (same row and column, next column, next row, both), the first on a tie."""
    H, W = depth.shape
    h, w = low_depth.shape
    big = np.float32(1e6)
    d = np.where(np.isfinite(depth), depth, big)
    ld = np.where(np.isfinite(low_depth), low_depth, big)
    out = np.empty((H, W, low.shape[2]), low.dtype)
    for r in range(H):
        for c in range(W):
            cands = [(r // 2, c // 2), (r // 2, min((c + 1) // 2, w - 1)),
                     (min((r + 1) // 2, h - 1), c // 2), (min((r + 1) // 2, h - 1), min((c + 1) // 2, w - 1))]
            errs = [abs(ld[a, b] - d[r, c]) for a, b in cands]
            out[r, c] = low[cands[errs.index(min(errs))]]
    return out


@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=60, deadline=None)
def test_upsample_by_depth_matches_a_pixel_by_pixel_reference(H, W, seed, ties):
    """The parity-by-parity upsampling picks exactly the neighbour the plain rule picks, ties
    (a few depth values) and sky (inf) included, on odd and even sizes."""
    rng = np.random.default_rng(seed)
    if ties:
        depth = rng.choice(np.array([1.0, 2.0, 3.0, np.inf], np.float32), size=(H, W))
    else:
        depth = (rng.random((H, W)) * 50).astype(np.float32)
        depth[rng.random((H, W)) < 0.2] = np.inf
    low_depth = depth[::2, ::2]
    low = rng.random((*low_depth.shape, 3)).astype(np.float32)
    assert np.array_equal(upsample_by_depth(low, low_depth, depth), _upsample_reference(low, low_depth, depth))
