"""The weather stage: every transform and preset through the same albumentations checks, the
physics (monotone in its parameters, Koschmieder's threshold at the visibility distance), the
per-object visibility, and bad parameters failing loudly."""

import math

import albumentations as A
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longtail.pipeline import render_scene
from longtail.render.camera import ray_distance as render_ray_distance
from longtail.render.sky import sky_colors
from longtail.render.weather.fog import (depth_fog, estimate_airlight, fog, height_fog_optical_depth,
                                         koschmieder_beta, optical_depth)
from longtail.render.weather.geometry import (camera_for_image, camera_from_matrices, clean_depth, default_camera,
                                              ray_up, upward_facing)
from longtail.render.weather.particles import particle_alpha
from longtail.render.weather.presets import get_preset, list_presets
from longtail.render.weather.rain import rain_extinction_beta, sample_rain
from longtail.conditions import WEATHER_KINDS
from longtail.render.weather.scene_weather import (SCENE_WEATHER, apply_scene_weather, draw_scene_weather,
                                                  get_scene_weather)
from longtail.seeding import WEATHER
from longtail.render.weather.snow import sample_snow, snow
from longtail.render.weather.transforms import (TRANSFORMS, FrameCamera, DayToNight, DepthFog, DepthRain, DepthSnow,
                                                SunGlare)
from longtail.render.weather.visibility import fog_visibility, is_visible, object_visibility, pixels_by_id
from longtail.worlds.scene import Actor, Camera, Layout, Scene, Sun, Weather

pytestmark = pytest.mark.filterwarnings("ignore:Got processor for:UserWarning")  # image-only pipelines

H, W = 96, 160
CAR = (70, 40, 90, 52)  # x0, y0, x1, y1 of the "car" in the synthetic frame
CAR_DEPTH_M = 20.0
REQUIRED_PRESETS = {"light_fog", "dense_fog", "night_rain", "heavy_rain", "heavy_snow", "low_sun", "dusk"}


def synthetic_frame(depth_scale: float = 1.0):
    """A road under a sky seen by the default camera, with one dark box standing on the road:
    (rgb uint8, depth float32 metres with inf sky, instance uint16)."""
    cam = default_camera(W, H)
    rng = np.random.default_rng(0)
    y = ((np.arange(H) + 0.5 - cam.cy) / cam.fy)[:, None] * np.ones((1, W))
    depth = np.where(y > 1e-3, cam.position[2] / np.maximum(y, 1e-3), np.inf).astype(np.float32) * depth_scale
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = (150, 185, 230)  # sky
    road = np.isfinite(depth)
    rgb[road] = np.clip(rng.normal(95, 12, (int(road.sum()), 3)), 0, 255).astype(np.uint8)
    x0, y0, x1, y1 = CAR
    rgb[y0:y1, x0:x1] = (40, 20, 20)
    depth[y0:y1, x0:x1] = CAR_DEPTH_M
    instance = np.zeros((H, W), np.uint16)
    instance[y0:y1, x0:x1] = 1
    return rgb, depth, instance


@pytest.fixture(scope="module")
def frame():
    return synthetic_frame()


def _transforms():
    """One instance of every transform, always applied."""
    return [T(p=1.0) for T in TRANSFORMS]


def _pipelines():
    """(id, factory of a list of transforms) for every transform and preset."""
    out = [(T.__name__, (lambda T=T: [T(p=1.0)])) for T in TRANSFORMS]
    out += [(f"preset:{name}", (lambda name=name: list(get_preset(name)(0.7)))) for name in list_presets()]
    return out


PIPELINES = _pipelines()


def _compose(make, seed, **kw):
    return A.Compose(make(), additional_targets={"depth": "mask"}, seed=seed,
                     bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
                     keypoint_params=A.KeypointParams(format="xy", label_fields=["kp_labels"]), **kw)


def _call(compose, frame, image=None):
    rgb, depth, instance = frame
    return compose(image=rgb if image is None else image, depth=depth, mask=instance,
                   bboxes=np.array([CAR], np.float32), labels=[1],
                   keypoints=np.array([[80.0, 45.0], [10.0, 90.0]], np.float32), kp_labels=[0, 1])


def test_required_presets_exist():
    assert REQUIRED_PRESETS <= set(list_presets())


@pytest.mark.parametrize("name,make", PIPELINES, ids=[p[0] for p in PIPELINES])
def test_shapes_dtypes_and_targets_pass_through(frame, name, make):
    rgb, depth, instance = frame
    out = _call(_compose(make, 1), frame)
    assert out["image"].shape == rgb.shape and out["image"].dtype == np.uint8
    assert not np.array_equal(out["image"], rgb), "the weather changed the image"
    assert np.array_equal(out["mask"], instance)
    assert np.array_equal(out["depth"], depth)
    np.testing.assert_allclose(np.asarray(out["bboxes"]), [CAR], atol=1e-4)
    assert list(out["labels"]) == [1]
    np.testing.assert_allclose(np.asarray(out["keypoints"])[:, :2], [[80.0, 45.0], [10.0, 90.0]], atol=1e-4)
    flt = _call(_compose(make, 1), frame, image=rgb.astype(np.float32) / 255.0)["image"]
    assert flt.dtype == np.float32 and flt.shape == rgb.shape and 0.0 <= flt.min() and flt.max() <= 1.0
    # float and uint8 paths draw the same weather
    assert np.abs(flt * 255.0 - out["image"].astype(np.float32)).mean() < 3.0


@pytest.mark.parametrize("name,make", PIPELINES, ids=[p[0] for p in PIPELINES])
def test_deterministic_under_compose_seed(frame, name, make):
    a = _call(_compose(make, 11), frame)["image"]
    b = _call(_compose(make, 11), frame)["image"]
    c = _call(_compose(make, 12), frame)["image"]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c), "another seed draws other weather"


@pytest.mark.parametrize("name,make", PIPELINES, ids=[p[0] for p in PIPELINES])
def test_inside_a_user_pipeline(frame, name, make):
    """Weather composes with geometric and photometric albumentations transforms; boxes and the
    depth map follow the flip exactly as without the weather."""
    rgb, depth, instance = frame
    user = lambda: [A.HorizontalFlip(p=1.0), *make(), A.RandomBrightnessContrast(p=1.0)]  # noqa: E731
    plain = lambda: [A.HorizontalFlip(p=1.0), A.RandomBrightnessContrast(p=1.0)]  # noqa: E731
    out, ref = _call(_compose(user, 3), frame), _call(_compose(plain, 3), frame)
    assert out["image"].shape == rgb.shape and out["image"].dtype == np.uint8
    assert np.array_equal(out["depth"], depth[:, ::-1]) and np.array_equal(out["mask"], instance[:, ::-1])
    np.testing.assert_allclose(np.asarray(out["bboxes"]), np.asarray(ref["bboxes"]), atol=1e-4)


def test_transform_without_depth_says_how_to_pass_it(frame):
    rgb, _, _ = frame
    with pytest.raises(ValueError, match="additional_targets"):
        A.Compose([DepthFog(p=1.0)], seed=0)(image=rgb)
    assert A.Compose([SunGlare(p=1.0)], seed=0)(image=rgb)["image"].shape == rgb.shape  # depth optional


def test_depth_with_zero_as_sky_equals_inf(frame):
    rgb, depth, _ = frame
    zero = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
    for T in TRANSFORMS:
        a = A.Compose([T(p=1.0)], additional_targets={"depth": "mask"}, seed=5)(image=rgb, depth=depth)["image"]
        b = A.Compose([T(p=1.0)], additional_targets={"depth": "mask"}, seed=5)(image=rgb, depth=zero)["image"]
        assert np.array_equal(a, b), T.__name__


@pytest.mark.parametrize("make,field", [
    (lambda: DepthFog(visibility_m_range=(-5.0, 30.0)), "visibility_m_range"),
    (lambda: DepthFog(visibility_m_range=(300.0, 30.0)), "visibility_m_range"),
    (lambda: DepthFog(airlight=(1.5, 0.5, 0.5)), "airlight"),
    (lambda: DepthRain(rain_rate_mm_h_range=(-1.0, 5.0)), "rain_rate_mm_h_range"),
    (lambda: DepthRain(wetness_range=(0.5, 2.0)), "wetness_range"),
    (lambda: DepthSnow(intensity_range=(0.5, 1.5)), "intensity_range"),
    (lambda: DayToNight(sky="noon"), "sky"),
    (lambda: SunGlare(strength_range=(-0.1, 0.5)), "strength_range"),
    (lambda: DepthFog(camera={"hfov_deg": -3}), "hfov_deg"),
    (lambda: DepthFog(camera={"fov": 80}), "fov"),
])
def test_bad_parameters_raise_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_bad_physics_arguments_and_preset_names_raise():
    with pytest.raises(ValueError, match="visibility_m"):
        koschmieder_beta(-10.0)
    with pytest.raises(ValueError, match="rain_rate_mm_h"):
        rain_extinction_beta(-1.0)
    with pytest.raises(ValueError, match="strength"):
        get_preset("dense_fog")(1.5)
    with pytest.raises(KeyError, match="choices: .*dense_fog"):
        get_preset("pea_soup")


# --- physics -------------------------------------------------------------------------------------

def test_depth_fog_is_the_renderers_koschmieder_fog(frame):
    rgb, depth, _ = frame
    cam = default_camera(W, H)
    img = rgb.astype(np.float32) / 255.0
    airlight = (0.7, 0.72, 0.75)
    ref = fog(img, render_ray_distance(depth, cam), koschmieder_beta(60.0), np.asarray(airlight))
    assert np.array_equal(depth_fog(img, depth, cam, 60.0, airlight), ref), "float frames render as before"
    sky = ~np.isfinite(depth)
    np.testing.assert_allclose(depth_fog(img, depth, cam, 60.0, airlight)[sky],
                               np.broadcast_to(airlight, (sky.sum(), 3)), atol=1e-6)


def test_height_fog_integrates_beta_along_the_ray():
    """Closed form against a numerical integral of beta0 exp(-z / H) along a few rays."""
    cam_z, beta0, Hs = 1.65, 0.05, 6.0
    dist = np.array([[10.0, 80.0, 300.0, np.inf]], np.float32)
    up = np.array([[-0.1, 0.02, 0.0, 0.05]], np.float32)
    tau = height_fog_optical_depth(dist, up, cam_z, beta0, Hs)
    for d, u, t in zip(dist[0], up[0], tau[0]):
        s = np.linspace(0.0, min(d, 5000.0), 200001)
        num = np.trapezoid(beta0 * np.exp(-(cam_z + s * u) / Hs), s)
        assert t == pytest.approx(num, rel=1e-3)
    # a very tall fog layer is homogeneous fog
    cam = default_camera(W, H)
    depth = synthetic_frame()[1]
    homo = optical_depth(depth, cam, 100.0)
    tall = optical_depth(depth, cam, 100.0, scale_height_m=1e6)
    finite = np.isfinite(depth)
    np.testing.assert_allclose(tall[finite], homo[finite], rtol=1e-3)
    # ground fog leaves the sky above it partly clear
    low = optical_depth(depth, cam, 100.0, scale_height_m=5.0)
    assert np.all(np.isfinite(low[~finite] [ray_up(cam)[~finite] > 0.01]))


def test_more_fog_never_raises_a_far_objects_contrast(frame):
    rgb, depth, instance = frame
    cam = default_camera(W, H)
    vis = [object_visibility(rgb, depth_fog(rgb, depth, cam, v, (0.75, 0.77, 0.8)), instance, [1])[1]
           for v in (2000.0, 500.0, 200.0, 80.0, 40.0, 15.0)]
    assert all(a >= b for a, b in zip(vis, vis[1:])), vis
    assert vis[0] > 0.9 and vis[-1] < 0.05


def test_fog_visibility_is_koschmieder_transmission():
    assert fog_visibility(0.0, 100.0) == 1.0
    assert fog_visibility(100.0, 100.0) == pytest.approx(0.05)
    assert is_visible(fog_visibility(90.0, 100.0)) and not is_visible(fog_visibility(110.0, 100.0))
    assert is_visible(fog_visibility(70.0, 100.0), 0.3) is False  # a low-contrast object fades sooner


def test_rain_streak_density_grows_with_intensity():
    cam = default_camera(W, H)
    depth = synthetic_frame()[1]
    rates = (1.0, 5.0, 20.0, 80.0)
    density = [np.mean([particle_alpha(depth, sample_rain(cam, r, np.random.default_rng(s)).layers, 0.0).mean()
                        for s in range(6)]) for r in rates]
    assert all(a < b for a, b in zip(density, density[1:])), density
    counts = [sum(layer.x.size for layer in sample_rain(cam, r, np.random.default_rng(0)).layers) for r in rates]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    assert rain_extinction_beta(50.0) == pytest.approx(0.312 * 50**0.67 / 1000)


def test_streaks_only_in_front_of_surfaces():
    """A wall 1.2 m away hides every drop behind it: only the nearest slab's streaks remain."""
    cam = default_camera(W, H)
    sample = sample_rain(cam, 50.0, np.random.default_rng(1))
    open_road = particle_alpha(np.full((H, W), np.inf, np.float32), sample.layers, 0.0).mean()
    wall = particle_alpha(np.full((H, W), 1.2, np.float32), sample.layers, 0.0).mean()
    assert wall < 0.5 * open_road


def test_snow_cover_grows_with_intensity(frame):
    rgb, depth, _ = frame
    cam = default_camera(W, H)
    road = (upward_facing(depth, cam) > 0.9) & (np.arange(H)[:, None] > 70)
    sample = sample_snow(cam, 0.5, np.random.default_rng(2))
    level = [snow(rgb, depth, cam, sample, cover=c, visibility_m=1e5)[road].mean() for c in (0.0, 0.3, 0.6, 1.0)]
    assert all(a < b for a, b in zip(level, level[1:])), level


def test_night_darkens_and_headlights_light_the_road(frame):
    rgb, depth, _ = frame
    out = A.Compose([DayToNight(gain_range=(0.0, 0.0), motion_blur_m_range=(0.0, 0.0), p=1.0)],
                    additional_targets={"depth": "mask"}, seed=0)(image=rgb, depth=depth)["image"]
    dark = A.Compose([DayToNight(headlights=False, gain_range=(0.0, 0.0), motion_blur_m_range=(0.0, 0.0), p=1.0)],
                     additional_targets={"depth": "mask"}, seed=0)(image=rgb, depth=depth)["image"]
    assert out.mean() < 0.5 * rgb.mean()
    assert out[-20:].mean() > dark[-20:].mean() + 10, "the low beams light the road ahead"


def test_glare_brightens_towards_the_sun(frame):
    rgb, depth, _ = frame
    out = A.Compose([SunGlare(sun_uv=(130.0, 20.0), strength_range=(1.0, 1.0), ghosts_range=(0, 0), p=1.0)],
                    additional_targets={"depth": "mask"}, seed=0)(image=rgb, depth=depth)["image"].astype(float)
    gain = out - rgb
    assert gain[10:30, 120:140].mean() > gain[70:90, 10:30].mean() > 0


def test_camera_from_matrices_round_trip():
    cam = Camera(width=320, height=200, fx=250.0, fy=250.0, cx=161.0, cy=99.0, position=(3.0, -1.0, 1.4),
                 yaw=0.3, pitch=0.05, roll=-0.02)
    back = camera_from_matrices(cam.K, cam.world_from_camera(), 320, 200)
    np.testing.assert_allclose(back.world_from_camera(), cam.world_from_camera(), atol=1e-12)
    spec = FrameCamera(K=cam.K.tolist(), world_from_camera=cam.world_from_camera().tolist())
    np.testing.assert_allclose(spec.for_image((200, 320, 3)).world_from_camera(), cam.world_from_camera(), atol=1e-12)
    assert camera_for_image((96, 160)).position == (0.0, 0.0, 1.65)


def test_airlight_estimate_reads_the_sky_near_the_horizon(frame):
    rgb, depth, _ = frame
    a = estimate_airlight(rgb, depth)
    grey = np.dot(np.array([150, 185, 230]) / 255.0, (0.2126, 0.7152, 0.0722))
    assert a[2] > a[0] and abs(np.dot(a, (0.2126, 0.7152, 0.0722)) - grey) < 0.02
    assert max(estimate_airlight(rgb // 10, None)) < 0.2, "a dark frame without sky gets a dark airlight"
    assert np.array_equal(clean_depth(depth), clean_depth(np.where(np.isfinite(depth), depth, 0.0)))


def _weather_scene(kind: str, visibility_m: float | None = None, intensity: float = 0.0, seed: int = 0,
                   sun_deg: float = 50.0) -> Scene:
    return Scene(scenario="hand", seed=seed, index=3, layout=Layout(kind="rural_road", lanes=2, lane_width=3.4,
                 ego_lane=0, length=200.0, seed=1), camera=default_camera(W, H),
                 sun=Sun(hour=12, elevation=math.radians(sun_deg), azimuth=0.0),
                 weather=Weather(kind=kind, visibility_m=visibility_m, intensity=intensity), actors=())


def test_scene_weather_is_a_registry_of_every_kind():
    assert set(SCENE_WEATHER.names()) == set(WEATHER_KINDS)
    with pytest.raises(KeyError, match="unknown weather kind 'hail'; choices: clear, fog, rain, snow"):
        get_scene_weather("hail")


def test_scene_weather_fog_matches_the_renderer(frame):
    rgb, depth, _ = frame
    img = rgb.astype(np.float32) / 255.0
    foggy = _weather_scene("fog", 80.0)
    out = apply_scene_weather(img, depth, foggy, draw_scene_weather(foggy), np.array([0.7, 0.7, 0.7]))
    ref = fog(img, render_ray_distance(depth, foggy.camera), koschmieder_beta(80.0), np.array([0.7, 0.7, 0.7]))
    assert np.array_equal(out, ref)
    for kind in ("rain", "snow"):
        scene = _weather_scene(kind, intensity=0.6, seed=3)
        a, b = draw_scene_weather(scene), draw_scene_weather(scene)
        assert a.record() == b.record() and a.stream == [3, 3, WEATHER]
        x = apply_scene_weather(img, depth, scene, a, np.array([0.7, 0.7, 0.7]))
        y = apply_scene_weather(img, depth, scene, b, np.array([0.7, 0.7, 0.7]))
        assert x.dtype == np.float32 and np.array_equal(x, y) and not np.array_equal(x, img)
        other = draw_scene_weather(_weather_scene(kind, intensity=0.6, seed=4))
        assert other.record() != a.record()  # another frame, other draws
    clear = _weather_scene("clear")
    assert apply_scene_weather(img, depth, clear, draw_scene_weather(clear), np.ones(3)) is img


def test_the_weather_record_holds_the_draws_and_a_low_sun_s_glare():
    rain = draw_scene_weather(_weather_scene("rain", intensity=0.5)).record()
    assert rain["kind"] == "rain" and -10 <= rain["slant_deg"] <= 10 and rain["rate_mm_h"] > 0
    assert sum(rain["streaks_per_layer"]) > 0
    low_sun = draw_scene_weather(_weather_scene("clear", sun_deg=5.0))
    assert low_sun.flare is not None and len(low_sun.record()["glare"]["ghosts"]) == 5
    assert draw_scene_weather(_weather_scene("clear", sun_deg=30.0)).record() == {"kind": "clear", "stream": None}


# --- visibility on rendered frames ---------------------------------------------------------------

def _road_scene(actors, width=400, height=240):
    f = width / (2 * math.tan(math.radians(40)))
    cam = Camera(width=width, height=height, fx=f, fy=f, cx=width / 2, cy=height / 2, position=(0.0, -1.7, 1.65))
    return Scene(scenario="hand", seed=0, index=0, layout=Layout(kind="rural_road", lanes=2, lane_width=3.4,
                 ego_lane=0, length=200.0, seed=1), camera=cam, sun=Sun(hour=12, elevation=0.9, azimuth=0.5),
                 weather=Weather(), actors=tuple(actors))


def test_rendered_car_fades_in_fog_and_vanishes_near_the_visibility(renderer):
    V = 40.0
    distances = (8.0, 15.0, 25.0, 32.0, 40.0, 50.0, 65.0)
    vis = []
    for d in distances:
        car = Actor(id=1, asset="sedan", cls="car", size=(4.5, 1.8, 1.45), position=(d, -1.7, 0.0), yaw=0.0,
                    color=(0.6, 0.1, 0.1))
        scene = _road_scene([car])
        buf = render_scene(scene, renderer)
        horizon, _ = sky_colors(scene)
        fogged = depth_fog(buf.rgb, buf.depth, scene.camera, V, horizon)
        vis.append(object_visibility(buf.rgb, fogged, buf.instance, [1])[1])
    assert all(a > b for a, b in zip(vis, vis[1:])), vis
    first_gone = next(d for d, v in zip(distances, vis) if not is_visible(v))
    assert 0.6 * V <= first_gone <= 1.3 * V, (first_gone, vis)
    # and it follows Koschmieder's transmission to the car's rear
    for d, v in zip(distances, vis):
        assert v == pytest.approx(fog_visibility(d - 2.25, V), abs=0.15)


def test_object_visibility_edge_cases(frame):
    rgb, depth, instance = frame
    assert object_visibility(rgb, rgb, instance, [1, 7]) == {1: 1.0, 7: 0.0}
    flat = np.full_like(rgb, 128)
    assert object_visibility(rgb, flat, instance, [1])[1] == 0.0


# --- the fast paths keep the physics --------------------------------------------------------------

def test_every_kth_is_a_strided_copy():
    from longtail.render.weather.geometry import every_kth
    rng = np.random.default_rng(0)
    for shape in ((384, 640, 3), (375, 1242, 3), (97, 161), (3, 5, 3)):
        a = rng.integers(0, 255, shape, dtype=np.uint8)
        for k in (2, 4):
            assert np.array_equal(every_kth(a, k), a[::k, ::k])


def test_particle_boxes_conserve_light_and_lean_with_the_wind():
    """Streaks drawn as prefix sums of box corners carry each visible particle's light, and the
    wind shears them sideways."""
    cam = default_camera(W, H)
    sample = sample_rain(cam, 40.0, np.random.default_rng(4))
    sky = np.full((H, W), np.inf, np.float32)
    straight = particle_alpha(sky, sample.layers, 0.0)
    leaning = particle_alpha(sky, sample.layers, math.radians(20.0))
    assert straight.min() >= 0.0 and straight.max() <= 0.9 + 1e-6
    inside = [(lay.x >= 0) & (lay.x < W) & (lay.y >= 0) & (lay.y < H) for lay in sample.layers]
    light = sum(float(lay.value[m].sum()) for lay, m in zip(sample.layers, inside))
    assert straight.sum() == pytest.approx(light, rel=0.1)  # streaks cross the borders both ways
    assert not np.allclose(straight, leaning)


def test_camera_for_image_is_memoised_and_takes_lists():
    spec = FrameCamera(K=((300.0, 0.0, 160.0), (0.0, 300.0, 96.0), (0.0, 0.0, 1.0)))
    assert spec.for_image((192, 320, 3)) is spec.for_image((192, 320, 3))
    as_lists = camera_for_image((192, 320), K=[[300.0, 0.0, 160.0], [0.0, 300.0, 96.0], [0.0, 0.0, 1.0]])
    assert as_lists == spec.for_image((192, 320, 3))


def test_rain_and_snow_in_threads_match_serial(frame):
    """The effects' work buffers are per thread: concurrent calls draw what serial ones do."""
    from concurrent.futures import ThreadPoolExecutor
    rgb, depth, _ = frame
    make = [lambda T=T, s=s: A.Compose([T(p=1.0)], additional_targets={"depth": "mask"}, seed=s)
            for T in (DepthRain, DepthSnow) for s in (1, 2)]
    serial = [m()(image=rgb, depth=depth)["image"] for m in make]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda m: m()(image=rgb, depth=depth)["image"], make * 3))
    for i, out in enumerate(threaded):
        assert np.array_equal(out, serial[i % len(make)])


def test_airlight_estimate_fast_path_matches_the_strided_reference(frame):
    """The sky mask read through ``every_kth`` picks what ``depth[::4, ::4]`` does, whatever marks
    the sky (inf, 0, negative, nan) and whatever the depth's dtype."""
    rgb, depth, _ = frame

    def reference(image, depth, overcast=False):
        img = image[::4, ::4]
        sky = ~(depth[::4, ::4] > 0) | ~np.isfinite(depth[::4, ::4])
        rows = np.flatnonzero(sky.any(axis=1))
        low = rows[int(0.9 * (rows.size - 1)):]
        color = img[low[0]:low[-1] + 1][sky[low[0]:low[-1] + 1]].reshape(-1, 3).mean(axis=0) / 255.0
        grey = float(np.dot(color, (0.2126, 0.7152, 0.0722)))
        mix = 1.0 if overcast else 0.5
        return tuple(float(np.clip(c + mix * (grey - c), 0.0, 1.0)) for c in color)

    odd = depth.copy()
    odd[:5, :7] = np.nan
    odd[5:9] = -1.0
    odd[9:12] = 0.0
    for d in (depth, odd, odd.astype(np.float64), odd[:-3, :-5], np.ascontiguousarray(odd[:, 1:])):
        img = rgb[:d.shape[0], -d.shape[1]:] if d.shape[1] != W else rgb[:d.shape[0], :d.shape[1]]
        for overcast in (False, True):
            assert estimate_airlight(img, d, overcast) == reference(img, d, overcast)


def test_snow_points_and_blurred_flakes_conserve_light():
    """Far flakes splat as points (by flat index), near ones through a Gaussian: each visible
    flake's light lands on the canvas."""
    cam = default_camera(W, H)
    sample = sample_snow(cam, 0.8, np.random.default_rng(5))
    assert any(layer.length_px <= 3 for layer in sample.layers) and any(lay.sigma_px >= 0.7 for lay in sample.layers)
    sky = np.full((H, W), np.inf, np.float32)
    from longtail.render.weather.particles import _half_res_alpha
    canvas = _half_res_alpha(sky, sample.layers, 0.0)
    inside = [(lay.x >= 0) & (lay.x < W) & (lay.y >= 0) & (lay.y < H) for lay in sample.layers]
    light = sum(float(lay.value[m].sum()) for lay, m in zip(sample.layers, inside))
    assert 4.0 * float(canvas.sum()) == pytest.approx(light, rel=0.1)  # a half-res pixel covers four


def test_snow_cover_at_half_resolution_keeps_the_look(frame):
    """The white of lying snow is folded into the half-resolution layer (2 x 2 means of the
    luminance): on a frame without pixel-sized texture (the synthetic road is white noise) it
    differs from the white laid at full resolution by about a grey level on average."""
    import cv2
    from longtail.render.weather.particles import composite
    from longtail.render.weather.snow import _surface, cover_weights, snow_cover
    rgb, depth, _ = frame
    rgb = cv2.GaussianBlur(rgb, (0, 0), 2.0)
    cam = default_camera(W, H)
    patches = np.random.default_rng(3).random((32, 32), dtype=np.float32)
    fast = snow_cover(rgb, depth, cam, 0.8, patches, 0.8)
    r0, m = cover_weights(clean_depth(depth), cam, 0.8, patches, 4)
    T = np.ones((H // 2, W // 2), np.float32)
    surface = _surface(rgb, T, r0, m, 0.8, 4)
    from longtail.render.weather.snow import snow_level
    surface["white"] = snow_level(rgb[2 * surface["r0"]:], 0.8)  # the full-resolution white
    full = composite(rgb, T, np.zeros((1, 1, 3), np.uint8), **surface)
    assert not np.array_equal(fast, rgb)
    assert np.abs(fast.astype(int) - full).mean() < 1.5


def test_uint8_fog_clamps_before_exp_and_keeps_the_sky(frame):
    rgb, depth, _ = frame
    cam = default_camera(W, H)
    out = depth_fog(rgb, depth, cam, 30.0, (0.8, 0.8, 0.8))
    sky = ~np.isfinite(depth)
    assert np.all(np.abs(out[sky].astype(int) - 204) <= 1)
    ref = (rgb.astype(np.float32) / 255.0)
    t = np.exp(-koschmieder_beta(30.0) * render_ray_distance(depth, cam))[..., None]
    expect = (ref * t + 0.8 * (1 - t)) * 255.0
    assert np.abs(out.astype(np.float32) - expect).max() <= 1.5


def without_compiled_loops(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` through the OpenCV/numpy paths the compiled loops replace (as on a
    machine without numba)."""
    from longtail.render.weather import fused
    fused.ENABLED = False
    try:
        return fn(*args, **kwargs)
    finally:
        fused.ENABLED = True


@pytest.mark.parametrize("shape", [(96, 160), (75, 124), (7, 10)])
def test_fused_blend_is_the_bilinear_composite(shape):
    """The compiled last step of the composite (``image T + low``, both upsampled from half
    resolution) equals OpenCV's bilinear upsampling and the product in float64, rounded and
    saturated, within one 8-bit level: at even and odd heights and at the borders."""
    import cv2
    from longtail.render.weather.fused import blend_upsampled
    Hs, Ws = shape
    h, w = -(-Hs // 2), Ws // 2
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (Hs, Ws, 3), dtype=np.uint8)
    low = rng.integers(0, 200, (h, w, 3), dtype=np.uint8)
    T = rng.random((h, w), dtype=np.float32)
    out = blend_upsampled(image, low, T)
    assert out is not None and out.dtype == np.uint8 and out.shape == image.shape
    up = lambda a: cv2.resize(a.astype(np.float64), (Ws, Hs), interpolation=cv2.INTER_LINEAR)  # noqa: E731
    expect = np.minimum(np.floor(image * up(T)[..., None] + up(low) + 0.5), 255)
    assert np.abs(out.astype(int) - expect).max() <= 1
    assert np.abs(out.astype(int) - expect).mean() < 0.01
    assert not np.shares_memory(out, image)


def test_fused_blend_leaves_other_frames_to_opencv():
    """Odd widths, float frames and non-contiguous views are not the fused pass's (None): the
    composite then takes OpenCV's passes, which agree with it within two 8-bit levels."""
    from longtail.render.weather import fused
    from longtail.render.weather.particles import composite
    rng = np.random.default_rng(6)
    T = rng.random((48, 80), dtype=np.float32)
    low = rng.integers(0, 200, (48, 80, 3), dtype=np.uint8)
    image = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
    assert fused.blend_upsampled(image[:, :159], low, T) is None  # odd width: not exactly 2x
    assert fused.blend_upsampled(image.astype(np.float32) / 255, low, T) is None
    assert fused.blend_upsampled(image[:, ::-1], low, T) is None
    ambient = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    fast = composite(image, T.copy(), ambient)
    slow = without_compiled_loops(composite, image, T.copy(), ambient)
    assert np.abs(fast.astype(int) - slow).max() <= 2
    assert not np.array_equal(fast, image)


@pytest.mark.parametrize("slant_deg", [-25.0, 0.0, 12.0])
def test_compiled_particles_are_the_opencv_drawing(slant_deg):
    """Rain streaks drawn by the compiled loop (depth test, boxes, the wind's lean) equal the
    array-and-OpenCV drawing (prefix sum of box corners, affine warp): on a frame with a road
    and a box in front, where the depth test hides some of them; and so does the transmission
    they are folded into (haze times one minus their capped opacity)."""
    from longtail.render.weather.particles import particle_alpha, transmission
    _, depth, _ = synthetic_frame()
    depth = clean_depth(depth)
    cam = default_camera(W, H)
    sample = sample_rain(cam, 40.0, np.random.default_rng(2), slant_deg)
    slant = math.radians(slant_deg)
    fast = particle_alpha(depth, sample.layers, slant)
    slow = without_compiled_loops(particle_alpha, depth, sample.layers, slant)
    open_sky = particle_alpha(np.full((H, W), np.inf, np.float32), sample.layers, slant)
    assert fast.max() > 0.05 and open_sky.sum() > fast.sum() * 1.05  # the depth test hid some
    assert np.abs(fast - slow).max() <= 1e-3 * fast.max()
    beta = rain_extinction_beta(40.0)
    t_fast = transmission(depth, cam, beta, sample.layers, slant).copy()  # a work buffer: copied
    t_slow = without_compiled_loops(transmission, depth, cam, beta, sample.layers, slant)
    assert t_fast.min() < 0.9 * t_fast.max()  # streaks took their share
    assert np.abs(t_fast - t_slow).max() <= 1e-5


def test_compiled_normals_are_the_numpy_ones():
    """The surface normals' world-z component, compiled, equals the numpy arithmetic it replaces
    (same operations in the same order): on the synthetic road with its box and sky, and on it
    roughened, with holes of sky, for a pitched camera."""
    from longtail.render.weather.geometry import upward_normal
    _, depth, _ = synthetic_frame()
    rng = np.random.default_rng(8)
    rough = clean_depth(depth) * (1.0 + 0.02 * rng.random((H, W))).astype(np.float32)
    rough[rng.random((H, W)) < 0.05] = np.inf
    cases = [(clean_depth(depth), default_camera(W, H)), (rough, default_camera(W, H, pitch_deg=3.0))]
    for d, cam in cases:
        fast = upward_normal(d, cam, 4)
        slow = without_compiled_loops(upward_normal, d, cam, 4)
        assert fast.max() > 0.5
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-6)


@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1), st.integers(1, 6))
@settings(max_examples=60, deadline=None)
def test_pixels_by_id_is_flatnonzero_of_each_id(H, W, seed, ids):
    """One pass gives each id's pixels as a whole-image mask per id would (row-major order)."""
    rng = np.random.default_rng(seed)
    instance = (rng.integers(0, ids + 1, (H, W)) * (rng.random((H, W)) < rng.random())).astype(np.uint16)
    got = pixels_by_id(instance)
    want = {int(i): np.flatnonzero(instance == i) for i in np.unique(instance) if i}
    assert got.keys() == want.keys()
    assert all(np.array_equal(got[i], want[i]) for i in want)
