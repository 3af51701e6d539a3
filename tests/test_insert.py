"""Actors inserted into real frames (train/insert.py): exact boxes, real labels kept right, true
scale on the ground plane (a camera prior on a rendered driving frame whose depth is known, and
real PETS pedestrians), determinism, and the training-time wiring."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from longtail.train.entries import make_entry
from longtail.train.insert import ActorBank, Inserter
from longtail.train.weather import GroundPrior
from longtail.worlds.scenario import parse_scenario

W, H = 320, 240


def _scenario(asset: str = "pedestrian", count=(1, 1), distance=(8, 25), heading=(-180, 180)):
    doc = {"name": "insert_test", "description": "d",
           "events": [{"asset": asset, "count_range": list(count), "region": "roadside",
                       "distance_m_range": list(distance), "heading_deg_range": list(heading)}]}
    return parse_scenario(yaml.safe_load(yaml.safe_dump(doc)), "insert_test.yaml")


@pytest.fixture(scope="module")
def bank():
    sc = _scenario()
    return sc, ActorBank(sc, looks=2, sprite_px=64)


def _frame(boxes=(), colour=(255, 0, 255)):
    image = torch.zeros((3, H, W), dtype=torch.uint8)
    image[:] = torch.tensor(colour, dtype=torch.uint8)[:, None, None]
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    target = {"boxes": torch.from_numpy(b), "labels": torch.full((len(b),), 24, dtype=torch.int64),
              "iscrowd": torch.zeros(len(b), dtype=torch.int64), "area": torch.ones(len(b)),
              "image_id": 1, "conditions": {}}
    entry = make_entry(Path("frame.png"), W, H, 1, b, [24] * len(b))
    return image, target, entry


def _plain(sc, bank_, **kw) -> Inserter:
    """Hard edges, no light matching, no shadows: every changed pixel is an actor's."""
    return Inserter(sc, bank_, GroundPrior(), blends=(0,), shadows=False, match=False, **kw)


def test_bank_sprites_stand_on_their_foot_at_their_scale(bank):
    sc, b = bank
    for look in range(2):
        for e in (0.0, math.radians(17), math.radians(40)):
            s = b.get("pedestrian", look, e, 0.0)
            rows = np.flatnonzero((s.ids > 0).any(1))
            height_px = rows[-1] + 1 - rows[0]
            # seen from above, the top of the head sits nearer the camera than the feet: allow 25 %
            assert 0.75 < height_px / (s.size[2] * s.px_per_m) < 1.3, (look, e, height_px)
            assert abs(s.foot[1] - (rows[-1] + 1)) < 0.12 * height_px  # the foot point is at the soles


def test_inserted_boxes_are_the_actors_pixels_exactly(bank):
    sc, b = bank
    ins = _plain(sc, b)
    found = 0
    for seed in range(6):
        image, target, entry = _frame()
        out, t, depth, n = ins(image, target, entry, np.random.default_rng(seed))
        if n == 0:
            continue
        found += 1
        changed = (out != image).any(0).numpy()
        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        (box,) = t["boxes"].numpy()[t["inserted"].numpy()]
        assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
        assert t["labels"][-1] == 24 and t["area"][-1] == changed.sum() and t["iscrowd"][-1] == 0
        assert depth is not None and np.isfinite(depth[changed]).all()
    assert found >= 4


def test_same_seed_same_composite_and_labels(bank):
    sc, b = bank
    ins = Inserter(sc, b, GroundPrior())
    image, target, entry = _frame()
    a = ins(image, dict(target), entry, np.random.default_rng(7))
    c = ins(image, dict(target), entry, np.random.default_rng(7))
    assert torch.equal(a[0], c[0]) and torch.equal(a[1]["boxes"], c[1]["boxes"]) and np.array_equal(a[2], c[2])


def test_real_objects_covered_by_an_actor_become_ignore_regions(bank):
    sc, b = bank
    ins = _plain(sc, b)
    seed = next(s for s in range(20) if ins(*_frame(), np.random.default_rng(s))[3] == 1)
    _, t, _, _ = ins(*_frame(), np.random.default_rng(seed))
    x0, y0, x1, y1 = t["boxes"].numpy()[-1]
    h = y1 - y0
    # a real object standing just behind the actor (its feet higher in the image), mostly covered,
    # and one beside it, half covered
    behind = (x0, y0 - 0.1 * h, x1, y1 - 0.1 * h)
    half = (x0 + (x1 - x0) / 2, y0, x1 + (x1 - x0) / 2, y1 - 0.05 * h)
    _, t2, _, n = ins(*_frame([behind, half]), np.random.default_rng(seed))
    assert n == 1 and t2["boxes"][-1].tolist() == [x0, y0, x1, y1]  # the same spot: nothing stood nearer
    occ = t2["occlusion"].numpy()
    assert occ[0] > 0.5 and t2["iscrowd"][0] == 1
    assert 0.05 < occ[1] < 0.6 and t2["iscrowd"][1] == (1 if occ[1] > 0.5 else 0)
    # a real object standing nearer (its feet lower) where the actor would go keeps it away
    nearer = (x0 - 2, y0, x1 + 2, y1 + 0.3 * h)
    _, t3, _, n3 = ins(*_frame([nearer]), np.random.default_rng(seed))
    if n3:
        bx = t3["boxes"].numpy()[-1]
        assert bx[2] <= nearer[0] or bx[0] >= nearer[2] or bx[3] <= nearer[1] or bx[1] >= nearer[3]
    assert t3["iscrowd"][0] == 0


def test_a_car_camera_prior_puts_actors_on_a_rendered_road_at_its_depth(tmp_path):
    """A rendered driving frame stands in for footage whose ground truth is known: inserted with
    the level car camera prior (81 deg wide, 1.65 m up, as the scenario's camera), an actor's
    feet land where the frame's own depth has the road at the actor's depth."""
    from longtail.atomic import read_png
    from longtail.dataset import frame_files
    from longtail.depth import read_depth
    from longtail.pipeline import render_dataset
    from longtail.worlds.scenario import load_scenario

    doc = load_scenario("fallen_cargo").model_dump(mode="json")
    doc["camera"] = {"width": W, "height": H, "hfov_deg": 81.0, "height_m": 1.65,  # the prior's camera
                     "pitch_deg_range": [0.0, 0.0]}
    doc["ego_speed_mps_range"] = [0.0, 0.0]
    render_dataset(parse_scenario(doc, "road"), tmp_path / "road", frames=2, seed=3)
    from longtail.train.datasets import open_dataset

    ds = open_dataset(f"longtail:{tmp_path / 'road'}")
    actors = _scenario(distance=(8, 30))
    ins = _plain(actors, ActorBank(actors, looks=1, sprite_px=64))
    checked = 0
    for i in range(2):
        image, target = ds[i]
        road = read_depth(ds.entries[i].depth)
        ground = np.isin(read_png(tmp_path / "road" / frame_files(i)["semantic"]), [7, 8, 22])  # road, walk, verge
        for seed in range(4):
            out, t, depth, n = ins(image, target, ds.entries[i], np.random.default_rng(seed))
            changed = (out != image).any(0).numpy()
            for x0, y0, x1, y1 in t["boxes"].numpy()[t["inserted"].numpy()]:
                feet = np.zeros_like(changed)  # the actor's lowest two rows: its soles
                feet[int(y1) - 2:int(y1), int(x0):int(x1)] = True
                feet &= changed
                if not feet.any() or not ground[feet].all():
                    continue  # a car or a kerb under the feet: not the ground plane
                actor, under = float(np.median(depth[feet])), float(np.median(road[feet]))
                assert abs(actor - under) < 0.08 * under, (actor, under)
                checked += 1
    assert checked >= 3


def test_inserted_people_are_as_tall_as_real_ones_at_the_same_row(pets, pets_plate_for_insertion):
    """PETS: the fitted plate camera puts inserted pedestrians at the real pedestrians' pixel
    heights (within 20 %) at the same image row, as plates do."""
    from longtail.train.datasets import open_dataset
    from longtail.worlds.plates import load_camera

    gt = np.loadtxt(pets / "gt" / "gt.txt", delimiter=",")
    bottoms, heights = gt[:, 3] - 1 + gt[:, 5], gt[:, 5]
    sc = _scenario(count=(4, 4), distance=(8, 40))
    ins = Inserter(sc, ActorBank(sc, looks=4), GroundPrior(camera=load_camera(pets_plate_for_insertion)))
    ds = open_dataset(f"mot:{pets}")
    checked = 0
    for i in range(0, 600, 100):
        image, target = ds[i]
        _, t, _, _ = ins(image, target, ds.entries[i], np.random.default_rng(i))
        for x0, y0, x1, y1 in t["boxes"].numpy()[t["inserted"].numpy()]:
            near = np.abs(bottoms - y1) < 12
            if near.sum() < 5 or x0 <= 0 or x1 >= 768 or y1 >= 576:
                continue
            real = float(np.median(heights[near]))
            # the bank's sizes are the asset's: 1.6-1.9 m people, as PETS's
            assert 0.8 * real <= y1 - y0 <= 1.2 * real, (y1, y1 - y0, real)
            checked += 1
    assert checked >= 5


@pytest.fixture(scope="module")
def pets_plate_for_insertion(pets, tmp_path_factory):
    from longtail.worlds.plates import correspondences_from_mot, fit_plate

    out = tmp_path_factory.mktemp("insert_plate") / "plate"
    fit_plate(pets, out, correspondences=correspondences_from_mot(pets), max_frames=40)
    return out


def test_training_batches_insert_before_the_weather(bank):
    """SampledBatches: the insert step runs first and its depth reaches the weather stage."""
    from longtail.train.batching import MixedSampler
    from longtail.train.engine import SampledBatches
    from longtail.train.entries import DetectionDataset

    sc, b = bank
    image, target, entry = _frame()

    class One(DetectionDataset):
        def image(self, i):
            return image.clone()

    seen = {}

    class Weather:
        def __call__(self, img, e, rng, depth=None):
            seen["depth"] = depth
            return img, "clear"

        def describe(self):
            return {}

    data = SampledBatches({"real": One("one", [entry])}, MixedSampler({"real": 1}, {"real": 1.0}, 3, 1, 0),
                          {"real": Weather()}, {"real": Inserter(sc, b, GroundPrior())})
    (img, t), = data.load([("real", 0)], np.random.default_rng(1))
    assert int(t["conditions"]["inserted"]) == len(t["boxes"]) >= 1
    assert seen["depth"] is not None and seen["depth"].shape == (H, W)
    assert "insert" in data.describe()


def test_a_plate_s_regions_and_occluders_are_honoured(bank):
    """Actors stand only where the plate's regions.png allows, and its occluders (nearer than
    the actors) stay in front of them."""
    from longtail.worlds.plates import FitReport, Plate, plate_depth

    sc, b = bank
    cam = GroundPrior().camera_for_shape(H, W)
    regions = np.zeros((H, W), bool)
    regions[:, : W // 2] = True  # the left half only
    occluders = np.zeros((H, W), bool)
    occluders[40:H - 60, W // 4 - 16:W // 4 + 16] = True  # a pillar in the left half, its foot near
    plate = Plate(image=np.zeros((H, W, 3), np.uint8), depth=plate_depth(cam, occluders), camera=cam,
                  airlight=(0.7, 0.7, 0.7), occluders=occluders, fit=FitReport(method="yaml"), regions=regions)
    ins = _plain(sc, b, plate=plate)
    # the same allowed ground without the post: the same spots are drawn, nothing is hidden
    open_plate = Plate(image=plate.image, depth=plate_depth(cam), camera=cam, airlight=plate.airlight,
                       occluders=None, fit=plate.fit, regions=regions & ~occluders)
    bare = _plain(sc, b, plate=open_plate)
    feet = hidden = 0
    for seed in range(30):
        image, target, entry = _frame()
        out, t, depth, n = ins(image, target, entry, np.random.default_rng(seed))
        drawn = (bare(image, target, entry, np.random.default_rng(seed))[0] != image).any(0).numpy()
        changed = (out != image).any(0).numpy()
        lost = drawn & ~changed
        assert not (lost & ~occluders).any()  # only the post hides anything
        hidden += int(lost.any())
        for x0, y0, x1, y1 in t["boxes"].numpy()[t["inserted"].numpy()]:
            assert (x0 + x1) / 2 < W // 2 + 4  # its feet in the allowed half (a sprite may lean a little)
            assert not occluders[int(y0):int(y1), int(x0):int(x1)][changed[int(y0):int(y1), int(x0):int(x1)]].any()
            feet += 1
    assert feet >= 6 and hidden >= 1


def test_train_inserts_actors_from_the_command_line(tmp_path):
    """`longtail train --insert` on a tiny MOT sequence: trains, and its run records the insertion."""
    import json

    from fuzzing import run_cli
    from PIL import Image

    seq = tmp_path / "seq"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    rng = np.random.default_rng(0)
    for k in range(1, 4):
        Image.fromarray((rng.random((H, W, 3)) * 255).astype(np.uint8)).save(seq / "img1" / f"{k:06d}.jpg")
    (seq / "gt" / "gt.txt").write_text("".join(f"{k},1,40,60,20,50,1,-1,-1,-1\n" for k in range(1, 4)))
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=s\nimDir=img1\nimExt=.jpg\nimWidth={W}\nimHeight={H}\n")
    scenario = tmp_path / "actors.yaml"
    scenario.write_text(yaml.safe_dump(_scenario().model_dump(mode="json")))
    rc, out, err = run_cli(["train", "--data", f"mot:{seq}", "--steps", "2", "--batch", "2", "--model",
                            "ssdlite320_mobilenet_v3_large", "--img-size", "96", "128", "--out", tmp_path / "run",
                            "--insert", scenario, "--insert-p", "1", "--camera-pitch", "2", "--quiet"])
    assert rc == 0, err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["insert"] == str(scenario) and run["insert_p"] == 1.0
    assert run["data"]["insert"]["data"]["scenario"] == "insert_test"  # the inserter's own record
    rc, _, err = run_cli(["train", "--data", f"mot:{seq}", "--steps", "2", "--out", tmp_path / "run2",
                          "--insert", scenario, "--camera-pitch", "80"])
    assert rc == 2 and "--camera-pitch" in err and "Traceback" not in err
