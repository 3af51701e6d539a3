"""Real plates: frames, the median background, camera fits (file, correspondences, horizon),
ground depth, airlight and the plate directory. PETS 2009 S2L1 gives real footage with metric
foot positions; the rest is synthetic and small."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from longtail.depth import DEPTH_SCALE
from longtail.errors import DatasetError, InputError
from longtail.render.camera import world_xyz
from longtail.worlds.plates.camera import (
    Horizon, camera_from_horizon, euler_from_world_from_camera, fit_camera_from_correspondences,
    read_camera_file, read_correspondences, reprojection_errors,
)
from longtail.worlds.plates import (
    correspondences_from_mot, estimate_airlight, fit_plate, ground_depth, load_frames, load_plate,
    median_background, plate_depth, sky_region,
)
from longtail.worlds.scene import Camera

PETS_SIZE = (768, 576)


# ----------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def pets_points(pets):
    return correspondences_from_mot(pets, max_points=1000)


@pytest.fixture(scope="session")
def pets_plate(pets, pets_points, tmp_path_factory):
    return fit_plate(pets, tmp_path_factory.mktemp("plates") / "pets", correspondences=pets_points, max_frames=60)


def _cam(**kw) -> Camera:
    base = dict(width=320, height=240, fx=300.0, fy=300.0, cx=160.0, cy=120.0, position=(0.0, 0.0, 5.0), pitch=0.3)
    return Camera(**{**base, **kw})


def _ground_points_in_view(cam: Camera, rng: np.random.Generator, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """n ground points (z = 0) that project inside the image, and their pixels."""
    depth = ground_depth(cam)
    vs, us = np.nonzero(np.isfinite(depth) & (depth < 80))
    pick = rng.choice(len(vs), n, replace=False)
    x, y, _ = world_xyz(depth, cam)
    xy = np.c_[x[vs[pick], us[pick]], y[vs[pick], us[pick]]].astype(np.float64)
    uv, _ = cam.project(np.c_[xy, np.zeros(n)])
    return uv, xy


def _write_frames(folder: Path, frames) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    return folder


def _moving_square_frames(rng: np.random.Generator, n=9, size=(64, 48)) -> tuple[np.ndarray, list[np.ndarray]]:
    """A fixed random background and n frames of it with a black square passing through."""
    w, h = size
    background = rng.integers(60, 200, (h, w, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        f = background.copy()
        x0 = 2 + i * (w - 12) // n
        f[10:20, x0:x0 + 10] = 0
        frames.append(f)
    return background, frames


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


# ----------------------------------------------------------------------------------------------
# camera from correspondences


@pytest.mark.parametrize("kw", [
    dict(position=(2.0, -3.0, 6.0), yaw=0.4, pitch=0.35, roll=0.03, fx=420.0, fy=420.0),  # elevated, turned
    dict(position=(0.0, 0.0, 12.0), yaw=-1.2, pitch=0.7, roll=-0.05, fx=250.0, fy=250.0),  # steep, wide angle
    dict(position=(5.0, 1.0, 1.6), yaw=0.1, pitch=0.06, roll=0.0, fx=300.0, fy=300.0),  # car-mounted, near level
])
def test_correspondence_fit_recovers_a_known_camera(kw):
    truth = _cam(**kw)
    uv, xy = _ground_points_in_view(truth, np.random.default_rng(1))
    cam, report = fit_camera_from_correspondences(uv, xy, truth.width, truth.height)
    assert cam.fx == pytest.approx(truth.fx, rel=1e-6) and cam.fy == cam.fx
    assert np.allclose(cam.position, truth.position, atol=1e-6)
    for angle in ("yaw", "pitch", "roll"):
        assert getattr(cam, angle) == pytest.approx(getattr(truth, angle), abs=1e-7)
    assert report.method == "correspondences" and report.n_points == len(uv) and report.max_px < 1e-5


def test_correspondence_fit_with_pixel_noise_stays_close():
    truth = _cam(position=(2.0, -3.0, 6.0), yaw=0.4, pitch=0.35, fx=420.0, fy=420.0)
    rng = np.random.default_rng(2)
    uv, xy = _ground_points_in_view(truth, rng, n=100)
    cam, report = fit_camera_from_correspondences(uv + rng.normal(0.0, 0.5, uv.shape), xy, truth.width, truth.height)
    assert cam.fx == pytest.approx(truth.fx, rel=0.03)
    assert cam.position[2] == pytest.approx(truth.position[2], rel=0.03)
    assert cam.pitch == pytest.approx(truth.pitch, abs=math.radians(0.5))
    assert 0.3 < report.rms_px < 1.0  # the noise is 0.5 px per axis: ~0.7 px per point


def test_correspondence_fit_with_known_focal_keeps_it():
    truth = _cam(position=(0.0, 0.0, 8.0), yaw=0.3, pitch=0.5)
    uv, xy = _ground_points_in_view(truth, np.random.default_rng(3), n=12)
    cam, _ = fit_camera_from_correspondences(uv, xy, truth.width, truth.height, focal_px=310.0)
    assert cam.fx == 310.0 and cam.position[2] > 0


def test_pets_camera_fit_is_accurate_and_plausible(pets_points):
    uv, xy = pets_points
    fit_half, held_out = slice(0, None, 2), slice(1, None, 2)
    cam, report = fit_camera_from_correspondences(uv[fit_half], xy[fit_half], *PETS_SIZE)
    print(f"PETS fit: f {cam.fx:.1f} px, height {cam.position[2]:.2f} m, pitch {math.degrees(cam.pitch):.2f} deg, "
          f"roll {math.degrees(cam.roll):.2f} deg, reprojection rms {report.rms_px:.2f} median {report.median_px:.2f} "
          f"max {report.max_px:.2f} px over {report.n_points} points")
    assert report.n_points >= 400 and report.median_px < 3.0 and report.rms_px < 5.0
    assert 3.0 < cam.position[2] < 15.0 and 0.05 < cam.pitch < 1.4  # an elevated camera looking down
    assert 400 < cam.fx < 4000
    held = reprojection_errors(cam, uv[held_out], xy[held_out])  # points the fit never saw
    assert np.median(held) < 3.0


def test_correspondences_from_mot_reads_foot_points(pets, pets_points):
    uv, xy = pets_points
    assert uv.shape == xy.shape == (1000, 2)
    assert (uv[:, 0] > 0).all() and (uv[:, 0] < PETS_SIZE[0]).all() and (uv[:, 1] < PETS_SIZE[1]).all()
    first = np.loadtxt(pets / "gt" / "gt.txt", delimiter=",", max_rows=1)  # frame 1, left 499, top 158, ...
    assert np.allclose(uv[0], [first[2] - 1 + first[4] / 2, first[3] - 1 + first[5]])
    assert np.allclose(xy[0], first[7:9])


@pytest.mark.parametrize("uv,xy,expect", [
    ([[0, 0], [10, 0], [0, 10]], [[0, 0], [1, 0], [0, 1]], "at least 4"),
    ([[0, 0], [10, 10], [20, 20], [30, 30], [40, 40]], [[0, 0], [1, 0], [0, 1], [1, 1], [2, 3]], "collinear"),
    ([[0, 0], [10, 0], [0, 10], [10, 10]], [[0, 0], [1, 0], [2, 0], [3, 0]], "collinear"),
    ([[0, 0], [10, 0], [20, 0], [0, 10]], [[0, 0], [1, 0], [2, 0], [0, 1]], "degenerate"),  # 3 of 4 on a line
    ([[0, 0], [10, 0], [0, 10], [0, 0]], [[0, 0], [1, 0], [0, 1], [0, 0]], "at least 4"),  # a repeated point
])
def test_bad_correspondences_raise_one_line(uv, xy, expect):
    with pytest.raises(InputError) as err:
        fit_camera_from_correspondences(np.asarray(uv, float), np.asarray(xy, float), 320, 240)
    assert expect in _one_line(err)


def test_read_correspondences_csv(tmp_path):
    path = tmp_path / "pts.csv"
    path.write_text("u,v,x,y\n1,2,3,4\n5.5, 6, -7, 8\n")
    uv, xy = read_correspondences(path)
    assert np.array_equal(uv, [[1, 2], [5.5, 6]]) and np.array_equal(xy, [[3, 4], [-7, 8]])
    path.write_text("u,v,x,y\n1,2,3\n")
    with pytest.raises(InputError) as err:
        read_correspondences(path)
    assert "line 2" in _one_line(err)


# ----------------------------------------------------------------------------------------------
# camera from a file or the horizon


def test_horizon_camera_puts_the_horizon_on_its_row():
    cam = camera_from_horizon(320, 240, Horizon(row=70.0, height_m=1.5, focal_px=250.0))
    assert cam.pitch == pytest.approx(math.atan(50.0 / 250.0)) and cam.roll == 0.0
    assert cam.position == (0.0, 0.0, 1.5)
    far_ahead, _ = cam.project(np.array([[1e6, 0.0, 0.0], [1e6, 3e5, 0.0]]))  # ground points near infinity
    assert np.allclose(far_ahead[:, 1], 70.0, atol=0.01)
    depth = ground_depth(cam)
    assert np.isinf(depth[:70]).all() and np.isfinite(depth[71:]).all()


def test_camera_file_height_and_angles(tmp_path):
    path = tmp_path / "camera.yaml"
    path.write_text("fx: 400\ncx: 150\nheight_m: 6.5\npitch_deg: 20\nyaw_deg: -10\n")
    cam = read_camera_file(path, 320, 240)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (400.0, 400.0, 150.0, 120.0)
    assert cam.position == (0.0, 0.0, 6.5)
    assert cam.pitch == pytest.approx(math.radians(20)) and cam.yaw == pytest.approx(math.radians(-10))


def test_camera_file_world_from_camera_round_trips(tmp_path):
    truth = _cam(position=(3.0, -2.0, 7.0), yaw=2.5, pitch=0.4, roll=-0.1)
    T = truth.world_from_camera()
    assert np.allclose(euler_from_world_from_camera(T[:3, :3]), (truth.yaw, truth.pitch, truth.roll))
    rows = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in T)
    path = tmp_path / "camera.yaml"
    path.write_text(f"width: 320\nheight: 240\nhfov_deg: 90\nworld_from_camera: [{rows}]\n")
    cam = read_camera_file(path, 320, 240)
    assert np.allclose(cam.world_from_camera(), T) and cam.fx == pytest.approx(160.0)


@pytest.mark.parametrize("text,expect", [
    ("fx: 400\nheight_m: 5\nfocus: 3\n", "focus: unknown field"),
    ("fx: 400\npitch_deg: 10\n", "exactly one of height_m"),
    ("fx: 400\nhfov_deg: 60\nheight_m: 5\n", "exactly one of fx"),
    ("width: 640\nfx: 400\nheight_m: 5\n", "width: 640 does not match"),
    ("fx: 400\nworld_from_camera: [[2,0,0,0],[0,1,0,0],[0,0,1,5],[0,0,0,1]]\n", "not a rotation"),
    ("fx: [400\n", "not valid YAML"),
])
def test_bad_camera_file_raises_one_line(tmp_path, text, expect):
    path = tmp_path / "camera.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_camera_file(path, 320, 240)
    msg = _one_line(err)
    assert msg.startswith(str(path)) and expect in msg


# ----------------------------------------------------------------------------------------------
# frames and the median background


def test_median_removes_a_moving_object(tmp_path):
    background, frames = _moving_square_frames(np.random.default_rng(4))
    loaded = load_frames(_write_frames(tmp_path / "frames", frames))
    assert len(loaded) == len(frames) and loaded[0].dtype == np.uint8 and loaded[0].shape == (48, 64, 3)
    assert np.array_equal(median_background(loaded, rows_per_block=7), background)


def test_load_frames_samples_evenly(tmp_path):
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(10)]
    folder = _write_frames(tmp_path / "frames", frames)
    assert [f[0, 0, 0] for f in load_frames(folder, max_frames=4)] == [0, 3, 6, 9]
    assert [f[0, 0, 0] for f in load_frames(folder, max_frames=3, stride=2)] == [0, 2, 4]
    assert len(load_frames(folder / "0005.png")) == 1


def test_bad_frames_raise_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as err:
        load_frames(tmp_path / "empty")
    assert "no frames found" in _one_line(err)
    with pytest.raises(InputError) as err:
        load_frames(tmp_path / "absent")
    assert "no such file" in _one_line(err)
    mixed = _write_frames(tmp_path / "mixed", [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)])
    with pytest.raises(InputError) as err:
        load_frames(mixed)
    assert "0001.png" in _one_line(err) and "9x8 differs" in str(err.value)
    (mixed / "0001.png").write_bytes(b"not a png")
    with pytest.raises(InputError) as err:
        load_frames(mixed)
    assert "not a readable image" in _one_line(err)


def test_pets_median_plate_has_no_pedestrians(pets, pets_plate):
    """In a frame, the pixels inside the pedestrians' boxes differ from the plate far more than
    the background does: the plate shows the ground behind them."""
    gt = np.loadtxt(pets / "gt" / "gt.txt", delimiter=",")
    plate = pets_plate.image.astype(np.float32)
    ratios = []
    for frame_no in (50, 200, 350, 500):
        frame = np.asarray(Image.open(pets / "img1" / f"{frame_no:06d}.jpg").convert("RGB"), np.float32)
        diff = np.abs(frame - plate).mean(-1)
        people = np.zeros(diff.shape, bool)
        for _, _, left, top, w, h, *_ in gt[gt[:, 0] == frame_no]:
            people[max(int(top), 0):int(top + h), max(int(left), 0):int(left + w)] = True
        assert people.any()
        assert diff[~people].mean() < 6.0  # the plate is the static scene (up to JPEG noise and light)
        ratios.append(diff[people].mean() / diff[~people].mean())
    assert min(ratios) > 10.0, ratios  # measured ~25-35


# ----------------------------------------------------------------------------------------------
# depth and sky


def test_ground_depth_back_projects_to_the_ground():
    cam = _cam(position=(1.0, 2.0, 6.0), yaw=0.7, pitch=0.25, roll=0.05)
    depth = plate_depth(cam, far_m=200.0)
    ground = depth < 200.0
    assert ground.mean() > 0.5 and (depth[~ground] == 200.0).all()
    _, _, z = world_xyz(depth, cam)
    assert np.abs(z[ground]).max() < 1e-3


def test_pets_plate_depth_lands_on_the_people_feet(pets_plate, pets_points):
    """Each foot pixel's stored depth back-projects to the ground (z ~ 0) at the labelled foot
    position (metres); the depth PNG holds 1/256 m steps."""
    cam, depth = pets_plate.camera, pets_plate.depth
    uv, xy = pets_points
    us, vs = uv[:, 0].astype(int), uv[:, 1].astype(int)
    x, y, z = world_xyz(depth, cam)
    assert np.abs(z[vs, us]).max() < 0.02
    assert np.median(np.hypot(x[vs, us] - xy[:, 0], y[vs, us] - xy[:, 1])) < 0.1  # measured 0.02 m
    assert np.isfinite(depth).all() and depth.max() <= 250.0


def test_occluder_takes_the_ground_depth_at_its_foot():
    cam = _cam(pitch=0.2)
    mask = np.zeros((cam.height, cam.width), bool)
    mask[100:180, 40:60] = True  # a post standing on the ground at row 180
    mask[200:, 250:260] = True  # reaches the image bottom
    depth, ground = plate_depth(cam, mask), plate_depth(cam)
    assert np.array_equal(depth[100:180, 40:60], np.broadcast_to(ground[180, 40:60], (80, 20)))
    assert np.array_equal(depth[200:, 250:260], np.broadcast_to(ground[-1, 250:260], (40, 10)))
    assert np.array_equal(depth[~mask], ground[~mask])


def test_airlight_comes_from_the_sky_above_the_horizon():
    cam = camera_from_horizon(160, 120, Horizon(row=40.0, height_m=1.5, focal_px=120.0))
    region, name = sky_region(cam)
    assert name == "above_horizon" and region[:40].all() and not region[40:].any()
    image = np.zeros((120, 160, 3), np.uint8)
    image[:40] = (205, 215, 228)  # grey-blue sky
    image[:40, :30] = (40, 120, 30)  # a tree against it
    image[:40, 150:] = 255  # a clipped sun patch: its colour is unknown
    image[40:] = (90, 90, 90)
    assert np.allclose(estimate_airlight(image, region), np.array([205, 215, 228]) / 255.0)
    down, name = sky_region(_cam(pitch=1.2))
    assert name == "top_rows" and down[:24].all() and not down[24:].any()


# ----------------------------------------------------------------------------------------------
# the plate directory


def _synthetic_plate_inputs(tmp_path: Path):
    background, frames = _moving_square_frames(np.random.default_rng(5))
    folder = _write_frames(tmp_path / "frames", frames)
    occ = np.zeros((48, 64), np.uint8)
    occ[5:30, 20:25] = 200
    Image.fromarray(occ).save(tmp_path / "occ.png")
    camera_yaml = tmp_path / "camera.yaml"
    camera_yaml.write_text("fx: 60\nheight_m: 4\npitch_deg: 15\n")
    return background, folder, tmp_path / "occ.png", camera_yaml


def test_load_plate_round_trips_fit_plate(tmp_path):
    background, folder, occ, camera_yaml = _synthetic_plate_inputs(tmp_path)
    out = tmp_path / "plate"
    plate = fit_plate(folder, out, camera_yaml=camera_yaml, occluders=occ)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["camera.json", "depth.png", "occluders.png", "plate.png", "sky.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
    loaded = load_plate(out)
    assert np.array_equal(loaded.image, background) and np.array_equal(plate.image, background)
    assert np.array_equal(loaded.depth, plate.depth) and loaded.depth.dtype == np.float32
    assert loaded.camera == plate.camera and loaded.fit == plate.fit and loaded.fit.method == "yaml"
    assert loaded.airlight == plate.airlight and all(0 <= c <= 1 for c in loaded.airlight)
    assert np.array_equal(loaded.occluders, occ_mask := np.asarray(Image.open(occ)) > 0) and occ_mask.sum() == 125
    assert np.abs(plate.depth - plate_depth(plate.camera, occ_mask)).max() <= 0.5 / DEPTH_SCALE


def test_fit_plate_refuses_bad_requests(tmp_path):
    _, folder, _, camera_yaml = _synthetic_plate_inputs(tmp_path)
    with pytest.raises(InputError) as err:
        fit_plate(folder, tmp_path / "p1")
    assert "exactly one of" in _one_line(err)
    with pytest.raises(InputError) as err:
        fit_plate(folder, tmp_path / "p2", camera_yaml=camera_yaml, horizon=Horizon(10.0, 2.0, 50.0))
    assert "exactly one of" in _one_line(err)
    with pytest.raises(DatasetError) as err:
        fit_plate(folder, folder, camera_yaml=camera_yaml)
    assert "not an empty directory" in _one_line(err)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small_occ.png")
    with pytest.raises(InputError) as err:
        fit_plate(folder, tmp_path / "p3", camera_yaml=camera_yaml, occluders=tmp_path / "small_occ.png")
    assert "10x10 differs" in _one_line(err)
    assert not (tmp_path / "p1").exists() and not (tmp_path / "p3").exists()


@pytest.mark.parametrize("damage,expect", [
    (lambda d: (d / "depth.png").unlink(), "depth.png: missing"),
    (lambda d: (d / "sky.json").write_text('{"airlight": [1, 2]}'), "sky.json: airlight"),
    (lambda d: (d / "camera.json").write_text("{"), "camera.json: not valid JSON"),
    (lambda d: (d / "plate.png").write_bytes(b"x"), "plate.png: not a readable image"),
    (lambda d: Image.fromarray(np.zeros((4, 4), np.uint16)).save(d / "depth.png"), "depth.png: expected 16-bit 64x48"),
])
def test_load_plate_names_the_bad_file(tmp_path, damage, expect):
    _, folder, _, camera_yaml = _synthetic_plate_inputs(tmp_path)
    out = tmp_path / "plate"
    fit_plate(folder, out, camera_yaml=camera_yaml)
    damage(out)
    with pytest.raises(DatasetError) as err:
        load_plate(out)
    assert expect in _one_line(err)


def test_pets_plate_directory(pets_plate):
    assert pets_plate.image.shape == (576, 768, 3) and pets_plate.fit.method == "correspondences"
    assert pets_plate.fit.median_px < 3.0 and pets_plate.occluders is None
    assert all(0.5 < c <= 1.0 for c in pets_plate.airlight)  # overcast: bright grey


def test_ground_pixels_are_kept_per_distance_range_and_match_the_ground(pets_plate):
    """Placement asks a plate for the ground pixels of a distance range on every try: computed
    once per range (read-only), the pixels whose ground point lies in it, regions allowing."""
    near = pets_plate.ground_pixels((6, 20))
    assert pets_plate.ground_pixels((6.0, 20.0)) is near and not near.flags.writeable
    c = pets_plate.camera.position
    xy = pets_plate.ground_xy.reshape(-1, 2)
    d = np.hypot(xy[:, 0] - c[0], xy[:, 1] - c[1])
    assert near.size > 1000 and np.all((d[near] >= 6) & (d[near] <= 20))
    ok = (d >= 6) & (d <= 20)
    for allowed in (None if pets_plate.occluders is None else ~pets_plate.occluders, pets_plate.regions):
        ok &= True if allowed is None else allowed.ravel()
    np.testing.assert_array_equal(near, np.flatnonzero(ok))
    far = pets_plate.ground_pixels((20, 45))
    assert far is not near and np.intersect1d(far, near).size <= pets_plate.camera.width  # the 20 m ring only


def test_plate_fit_cli_one_line_errors(tmp_path, capsys):
    from longtail.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plate", "fit", str(empty), "--out", str(tmp_path / "p"), "--horizon-row", "100",
                 "--camera-height", "5", "--focal", "500"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(empty) in err
    assert not (tmp_path / "p").exists()
    assert main(["plate", "fit", str(empty), "--out", str(tmp_path / "p"), "--horizon-row", "100"]) == 2
    assert "--camera-height" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# inserting rendered actors into a plate


@pytest.fixture(scope="session")
def pets_plate_dir(pets, pets_points, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plates") / "pets_insert"
    fit_plate(pets, out, correspondences=pets_points, max_frames=60)
    return out


def _plate_scenario(plate_dir: Path, extra: str = "", hour=(11, 13), distance=(6, 45)):
    from longtail.worlds.scenario import parse_scenario
    import yaml

    text = (f"name: pets_rare\ndescription: d\nlayout: {{kind: plate}}\nplate: {plate_dir}\n"
            f"time: {{hour_range: [{hour[0]}, {hour[1]}]}}\n"
            "events:\n  - {asset: pedestrian, count_range: [6, 6], region: ground,"
            f" distance_m_range: {list(distance)},"
            " heading_deg_range: [-180, 180]}\n" + extra)
    return parse_scenario(yaml.safe_load(text), "pets_rare.yaml")


def test_inserted_pedestrians_have_the_real_pedestrians_scale(pets, pets_plate_dir):
    from longtail.pipeline import compute_frame, engines

    gt = np.loadtxt(pets / "gt" / "gt.txt", delimiter=",")
    bottoms, heights = gt[:, 3] - 1 + gt[:, 5], gt[:, 5]
    sc = _plate_scenario(pets_plate_dir)
    checked = 0
    with engines() as eng:
        for i in range(6):
            rec = compute_frame(sc, 11, i, eng).record
            size = {a["id"]: a["size"] for a in rec["scene"]["actors"]}
            for o in rec["objects"]:
                h_m = size[o["id"]][2]
                if o["area"] == 0 or o["occlusion"] > 0.05 or o["truncation"] > 0 or not 1.65 <= h_m <= 1.85:
                    continue
                row, h_px = o["bbox"][3], o["bbox"][3] - o["bbox"][1]
                near = np.abs(bottoms - row) < 12
                if near.sum() < 5:
                    continue  # no real pedestrian walked at this row
                real = float(np.median(heights[near]))
                assert 0.8 * real <= h_px <= 1.2 * real, f"row {row}: inserted {h_px} px, real {real:.1f} px"
                checked += 1
    assert checked >= 5


def test_composites_keep_the_plate_and_label_exactly(pets_plate_dir, tmp_path):
    from longtail.pipeline import compute_frame, engines
    from longtail.worlds.plates import load_plate

    plate = load_plate(pets_plate_dir)
    sc = _plate_scenario(pets_plate_dir)
    with engines() as eng:
        fr = compute_frame(sc, 3, 0, eng)
    rgb, inst = fr.images["rgb"], fr.images["instance"]
    assert rgb.shape == plate.image.shape
    far = inst == 0
    far &= np.pad(far, 2, constant_values=True)[4:, 2:-2] & np.pad(far, 2, constant_values=True)[:-4, 2:-2]
    diff = np.abs(rgb.astype(int) - plate.image.astype(int)).max(-1)
    assert np.median(diff[far]) <= 2, "away from the actors the composite is the plate"
    for o in fr.record["objects"]:
        if o["area"]:
            ys, xs = np.nonzero(inst == o["id"])
            assert o["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert set(np.unique(fr.images["semantic"])) <= {0, 24}


def test_plate_occluders_stay_in_front_and_count_as_occlusion(pets_plate_dir, tmp_path):

    from longtail.pipeline import compute_frame, engines

    masked = tmp_path / "plate_with_poles"
    shutil.copytree(pets_plate_dir, masked)
    mask = np.zeros((576, 768), np.uint8)
    for x in range(40, 768, 60):  # poles standing at the bottom row (~12 m away): in front of
        mask[:, x:x + 8] = 255  # every actor placed 20 m or more from the camera
    Image.fromarray(mask).save(masked / "occluders.png")
    crossing = 0
    with engines() as eng:
        for i in range(3):
            fr = compute_frame(_plate_scenario(masked, distance=(20, 45)), 5, i, eng)
            inst = fr.images["instance"]
            assert not np.any((inst > 0) & (mask > 0)), "no inserted pixel on a pole"
            for o in fr.record["objects"]:
                x0, x1 = int(o["bbox"][0]) if o["bbox"] else 0, int(o["bbox"][2]) if o["bbox"] else 0
                if o["area"] and (mask[:, x0:x1] > 0).any():
                    assert o["occlusion"] > 0.0  # the poles' pixels count as occluded
                    crossing += 1
    assert crossing > 0


def test_plate_contact_sheet_artifact(pets, pets_plate_dir):
    """real | composite | composite in fog | composite at night, saved for people to judge."""
    from longtail.pipeline import compute_frame, engines

    sc = _plate_scenario(pets_plate_dir, "traffic:\n  - {asset: dog, count_range: [1, 1], region: ground,"
                                         " distance_m_range: [8, 25], heading_deg_range: [-180, 180]}\n")
    fog = sc.model_copy(update={"weather": sc.weather.model_copy(update={"kind": "fog",
                                                                         "visibility_m_range": (70.0, 70.0)})})
    night = _plate_scenario(pets_plate_dir, hour=(23, 23))
    with engines() as eng:
        tiles = [np.asarray(Image.open(sorted((pets / "img1").iterdir())[100]).convert("RGB"))]
        tiles += [compute_frame(s, 2, 0, eng).images["rgb"] for s in (sc, fog, night)]
    sheet = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    assert sheet.shape == (2 * 576, 2 * 768, 3)
    assert tiles[3].mean() < 0.5 * tiles[1].mean() and tiles[2].std() < tiles[1].std()
    out = Path(__file__).resolve().parents[1] / "test-artifacts" / "plates_contact_sheet.png"
    out.parent.mkdir(exist_ok=True)
    Image.fromarray(sheet).resize((1152, 864)).save(out)


# ----------------------------------------------------------------------------------------------
# compositing only where the actors are: the same frames as compositing the whole image


def _reference_contact_shadows(background, ground_xy, actors, camera):
    """render.plate.contact_shadows as it was written first, over the whole frame."""
    out = background.copy()
    H, W = ground_xy.shape[:2]
    for a in actors:
        l, w, _ = a.size
        reach = 1.8 * (0.5 * max(l, w) + 0.25)
        ring = np.array([[a.position[0] + dx, a.position[1] + dy, 0.0]
                         for dx in (-reach, reach) for dy in (-reach, reach)])
        uv, z = camera.project(ring)
        if np.any(z <= camera.near):
            u0, v0, u1, v1 = 0, 0, W, H
        else:
            u0, v0 = max(int(uv[:, 0].min()), 0), max(int(uv[:, 1].min()), 0)
            u1, v1 = min(int(uv[:, 0].max()) + 2, W), min(int(uv[:, 1].max()) + 2, H)
        if u1 <= u0 or v1 <= v0:
            continue
        g = ground_xy[v0:v1, u0:u1]
        c, s = np.cos(a.yaw), np.sin(a.yaw)
        dx, dy = g[..., 0] - a.position[0], g[..., 1] - a.position[1]
        along, across = c * dx + s * dy, -s * dx + c * dy
        r2 = (along / (0.5 * l + 0.25)) ** 2 + (across / (0.5 * w + 0.25)) ** 2
        shade = np.nan_to_num(np.exp(-r2), nan=0.0).astype(np.float32)
        out[v0:v1, u0:u1] *= (1.0 - 0.45 * shade)[..., None]
    return out


def _reference_composite(plate, img, depth, instance, semantic, actors, cam):
    """The whole-frame composite (depth test, contact shadows, light matching, anti-aliasing)."""
    from longtail.render.look import to_uint8
    from longtail.render.look import edge_antialias
    from longtail.render.plate import match_to_plate

    actor = (instance > 0) & (depth < plate.depth) & (depth < plate.occluder_depth)
    instance = np.where(actor, instance, 0).astype(np.uint16)
    semantic = np.where(actor, semantic, 0).astype(np.uint8)
    depth = np.where(actor, depth, plate.depth).astype(np.float32)
    background = _reference_contact_shadows(plate.image_f, plate.ground_xy, actors, cam)
    img = np.where(actor[..., None], match_to_plate(img, instance, plate.image_f), background)
    return img, to_uint8(edge_antialias(img, instance, semantic, depth)), instance, semantic, depth


def test_windowed_composites_match_the_whole_frame(pets_plate_dir, tmp_path, monkeypatch):
    from longtail.render import capture
    from longtail.pipeline import engines
    from longtail.render.plate import composite, contact_shadows
    from longtail.worlds.sampler import sample

    poles = tmp_path / "plate_with_poles"
    shutil.copytree(pets_plate_dir, poles)
    mask = np.zeros((576, 768), np.uint8)
    mask[:, 300:308] = 255
    Image.fromarray(mask).save(poles / "occluders.png")
    calls = []
    monkeypatch.setattr(capture, "composite", lambda *a, **kw: calls.append(a) or composite(*a, **kw))
    with engines() as eng:
        for plate_dir, distance in ((pets_plate_dir, (6, 45)), (pets_plate_dir, (6, 20)), (poles, (8, 45))):
            sc = _plate_scenario(plate_dir, distance=distance)
            for i in range(3):
                eng.renderer.capture(sample(sc, 4, i, eng.physics))
    assert len(calls) == 9
    for plate, img, depth, instance, semantic, actors, cam in calls:
        ref_img, ref_rgb, ref_inst, ref_sem, ref_depth = _reference_composite(plate, img, depth, instance, semantic,
                                                                              actors, cam)
        np.testing.assert_array_equal(contact_shadows(plate.image_f, plate.ground_xy, actors, cam),
                                      _reference_contact_shadows(plate.image_f, plate.ground_xy, actors, cam))
        exact = composite(plate, img, depth, instance, semantic, actors, cam, whole=True)
        fast = composite(plate, img, depth, instance, semantic, actors, cam, whole=False)
        for c in (exact, fast):  # labels: exactly the whole frame's
            np.testing.assert_array_equal(c.instance, ref_inst)
            np.testing.assert_array_equal(c.semantic, ref_sem)
            np.testing.assert_array_equal(c.depth, ref_depth)
            assert c.instance.dtype == np.uint16 and c.semantic.dtype == np.uint8 and c.depth.dtype == np.float32
        np.testing.assert_array_equal(exact.image, ref_img)  # night and weather start from this
        np.testing.assert_array_equal(exact.finish(plate), ref_rgb)  # windowed anti-aliasing: exact
        diff = np.abs(fast.finish(plate).astype(int) - ref_rgb.astype(int))
        # summed-area means: float32 rounding apart, one level on at most 0.05 % of the values
        assert diff.max() <= 1 and np.count_nonzero(diff) <= 0.0005 * diff.size
        assert (ref_inst > 0).sum() > 500  # actors were there
    # a plate with edges of its own (depth steps every few rows): anti-aliased where shadows fall too
    import dataclasses

    plate, img, depth, instance, semantic, actors, cam = calls[0]
    stepped = plate.depth.copy()
    stepped[::7] *= 0.8
    plate = dataclasses.replace(plate, depth=stepped)
    ref_img, ref_rgb = _reference_composite(plate, img, depth, instance, semantic, actors, cam)[:2]
    exact = composite(plate, img, depth, instance, semantic, actors, cam, whole=True)
    np.testing.assert_array_equal(exact.image, ref_img)
    np.testing.assert_array_equal(exact.finish(plate), ref_rgb)
    diff = np.abs(composite(plate, img, depth, instance, semantic, actors, cam, whole=False).finish(plate).astype(int)
                  - ref_rgb.astype(int))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= 0.0005 * diff.size


def test_plate_frames_are_deterministic(pets_plate_dir):
    from longtail.pipeline import compute_frame, engines

    sc = _plate_scenario(pets_plate_dir)
    frames = []
    for _ in range(2):
        with engines() as eng:
            frames.append(compute_frame(sc, 9, 1, eng))
    for key in ("rgb", "instance", "semantic"):
        assert frames[0].images[key].tobytes() == frames[1].images[key].tobytes()
    assert frames[0].record["objects"] == frames[1].record["objects"]


def test_frames_left_to_the_plate_are_those_night_and_weather_leave_alone(pets_plate_dir):
    """changes_frame picks the plate's windowed finish: it must agree with what the weather stage does."""
    from longtail.pipeline import engines
    from longtail.render.weather.scene_weather import apply_scene_weather, changes_frame, draw_scene_weather
    from longtail.worlds.sampler import sample

    img = np.zeros((576, 768, 3), np.float32)
    depth = np.full((576, 768), 10.0, np.float32)
    seen = set()
    with engines() as eng:
        for hour in (7, 12, 17, 19, 23):
            sc = _plate_scenario(pets_plate_dir, hour=(hour, hour + 1))
            fog = sc.model_copy(update={"weather": sc.weather.model_copy(update={"kind": "fog",
                                                                                 "visibility_m_range": (70.0, 70.0)})})
            for s in (sample(sc, 1, 0, eng.physics), sample(fog, 1, 0, eng.physics)):
                untouched = not s.is_night and apply_scene_weather(img, depth, s, draw_scene_weather(s),
                                                                   np.ones(3)) is img
                assert (not s.is_night and not changes_frame(s)) == untouched
                seen.add(untouched)
    assert seen == {True, False}


def test_the_readme_plate_example_renders_people_on_the_plate(pets_plate_dir, tmp_path, monkeypatch):
    """examples/pets_people.yaml (the real+plates arm of the README's comparison), run from a
    folder holding its plate as `pets_plate`."""
    from longtail.pipeline import render_dataset
    from longtail.worlds.scenario import load_scenario_file

    shutil.copytree(pets_plate_dir, tmp_path / "pets_plate")
    monkeypatch.chdir(tmp_path)
    example = Path(__file__).resolve().parents[1] / "examples" / "pets_people.yaml"
    sc = load_scenario_file(example)
    summary = render_dataset(sc.with_resolution(384, 288), tmp_path / "out", frames=2, seed=1)
    assert summary.frames == 2 and summary.objects >= 6
    rec = __import__("json").loads((tmp_path / "out" / "labels" / "000000.json").read_text())
    assert {o["class"] for o in rec["objects"]} == {"person"}


def test_an_exact_spot_on_a_plate_stands_on_its_ground(tmp_path):
    """`at:` placement looks up the ground height, which on a plate is its support plane (this
    crashed: the lookup unpacked the plate's ground box as a (class, part) pair)."""
    import yaml

    from longtail.worlds.sampler import sample
    from longtail.worlds.scenario import parse_scenario

    _, folder, _, camera_yaml = _synthetic_plate_inputs(tmp_path)
    fit_plate(folder, tmp_path / "plate", camera_yaml=camera_yaml)
    doc = {"name": "spot", "description": "d", "layout": {"kind": "plate"}, "plate": str(tmp_path / "plate"),
           "events": [{"asset": "pedestrian", "region": "ground", "distance_m_range": [6, 30],
                       "at": {"x_m": 12.0, "y_m": 0.5, "yaw_deg": 0.0}}]}
    scene = sample(parse_scenario(yaml.safe_load(yaml.safe_dump(doc)), "spot.yaml"), 0, 0)
    (actor,) = scene.actors
    assert actor.position[:2] == (12.0, 0.5) and abs(actor.position[2]) < 0.02


def test_fog_rolls_in_over_a_plate_sequence(pets_plate_dir, tmp_path):
    """A ramp on a plate: the real background and the same inserted people under thickening fog."""
    import json

    from longtail.pipeline import render_dataset

    sc = _plate_scenario(pets_plate_dir, "weather: {kind: fog}\n"
                         "ramp: {visibility_m: {from: 1500, to: 30, curve: log}}\n").with_resolution(192, 144)
    out = tmp_path / "fog"
    render_dataset(sc, out, 4, 2, sequence=4)
    recs = [json.loads((out / "labels" / f"{i:06d}.json").read_text()) for i in range(4)]
    vis = [r["attributes"]["visibility_m"] for r in recs]
    assert vis[0] == 1500.0 and vis[-1] == 30.0 and all(b < a for a, b in zip(vis, vis[1:]))
    ids = [sorted(a["id"] for a in r["scene"]["actors"]) for r in recs]
    assert all(i == ids[0] for i in ids) and ids[0]
    seen = [np.mean([o["visibility"] for o in r["objects"] if o["area"]]) for r in recs]
    assert all(b < a for a, b in zip(seen, seen[1:])) and seen[-1] < 0.3  # the people fade into the fog
    rgb = [np.asarray(Image.open(out / "rgb" / f"{i:06d}.png"), float) for i in range(4)]
    contrast = [x.std() for x in rgb]
    assert all(b < a for a, b in zip(contrast, contrast[1:]))  # the background fades too
