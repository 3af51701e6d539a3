"""The editor's web API through FastAPI's test client (renders on one in-process thread)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the editor extra is not installed (pip install -e '.[editor]')")
pytest.importorskip("httpx", reason="the editor extra is not installed (pip install -e '.[editor]')")
from fastapi.testclient import TestClient  # noqa: E402

from longtail.cli import main as cli_main  # noqa: E402
from longtail.dataset import frame_files  # noqa: E402
from longtail.editor import worker  # noqa: E402
from longtail.editor.app import MAX_BODY_BYTES, create_app  # noqa: E402
from longtail.editor.worker import Busy, JobTimeout, RenderPool  # noqa: E402
from longtail.worlds.assets import list_assets  # noqa: E402
from longtail.worlds.scenario import load_scenario  # noqa: E402

SMALL = {"width": 160, "height": 96}


def scenario(**extra) -> dict:
    sc = {"name": "editor_test", "description": "a pedestrian placed by hand", "event": "jaywalker",
          "layout": {"kind": "urban_street", "lanes_choices": [2]}, "camera": dict(SMALL),
          "events": [{"asset": "pedestrian", "at": {"x_m": 14.0, "y_m": -1.0, "yaw_deg": 90.0}}],
          "traffic": [{"asset": "car", "count_range": [0, 2], "region": "oncoming"}]}
    sc.update(extra)
    return sc


@pytest.fixture(scope="module")
def pool():
    p = RenderPool(workers=1, queue=4, timeout_s=60, mode="thread")
    yield p
    p.close()


@pytest.fixture()
def client(tmp_path, pool):
    with TestClient(create_app(tmp_path / "ws", pool)) as c:
        yield c


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_page_and_static_files_served_and_ask_no_other_host(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/app.js">' in page.text
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and len(r.text) > 500
    static = Path(worker.__file__).parent / "static"
    for f in static.iterdir():
        for url in re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[a-z]{2,}[^\s\"'`)]*", f.read_text()):
            assert url.startswith("http://www.w3.org/2000/svg"), f"{f.name} refers to an outside host: {url}"


def test_schema_offers_every_asset_and_placement(client):
    schema = client.get("/api/schema").json()
    actor = schema["$defs"]["ActorSpec"]["properties"]
    assert set(list_assets()) <= set(actor["asset"]["enum"])
    assert "at" in actor and "Placement" in schema["$defs"]
    assert "jaywalker" in schema["properties"]["event"]["examples"]
    assets = client.get("/api/assets").json()["assets"]
    assert {a["name"] for a in assets} == set(list_assets())


def test_catalog_and_blank_start(client):
    names = [s["name"] for s in client.get("/api/catalog").json()["scenarios"]]
    assert "deer_on_dark_road" in names
    sc = client.get("/api/catalog/deer_on_dark_road").json()["scenario"]
    assert sc == load_scenario("deer_on_dark_road").model_dump(mode="json")
    blank = client.get("/api/catalog/blank").json()["scenario"]
    assert blank["events"] == [] and blank["layout"]["kind"] == "urban_street"
    r = client.get("/api/catalog/nope")
    assert r.status_code == 404 and "nope" in r.json()["error"]


def test_validate_names_the_field(client):
    assert client.post("/api/validate", json={"scenario": scenario()}).json()["ok"] is True
    bad = scenario(events=[{"asset": "pedestrian"}, {"asset": "unicorn"}], time={"hour_range": [30, 31]})
    res = client.post("/api/validate", json={"scenario": bad}).json()
    assert res["ok"] is False
    locs = {e["loc"]: e["msg"] for e in res["errors"]}
    assert "unicorn" in locs["events.1.asset"] and "unknown asset" in locs["events.1.asset"]
    assert "0..24" in locs["time.hour_range"]


def test_map_shows_road_actors_and_frustum(client):
    res = client.post("/api/map", json={"scenario": scenario(), "seed": 3}).json()
    assert res["ok"] and len(res["shapes"]) > 50
    ped = [a for a in res["actors"] if a["asset"] == "pedestrian"]
    assert len(ped) == 1 and (ped[0]["x"], ped[0]["y"]) == (14.0, -1.0) and len(ped[0]["poly"]) == 4
    assert abs(ped[0]["yaw"] - 1.571) < 1e-3
    assert res["camera"]["half_fov"] > 0 and res["ego"] is not None


def test_render_preview_is_the_cli_frame(client, tmp_path):
    """The saved file rendered by `longtail render` gives the bytes the preview showed."""
    sc = scenario()
    previews = [client.post("/api/render", json={"scenario": sc, "seed": 11, "index": i}).json() for i in (0, 1)]
    for p in previews:
        assert p["ok"] and (p["width"], p["height"]) == (160, 96)
        assert p["rgb"].startswith("data:image/png;base64,") and p["depth"].startswith("data:image/png;base64,")
        assert any(o["asset"] == "pedestrian" and o["bbox"] for o in p["objects"])
    assert previews[0]["rgb_sha256"] != previews[1]["rgb_sha256"]
    saved = client.put("/api/files/hand_placed.yaml", json={"scenario": sc})
    assert saved.status_code == 200, saved.text
    path = tmp_path / "ws" / "hand_placed.yaml"
    out = tmp_path / "out"
    assert cli_main(["render", "--scenario", str(path), "--frames", "2", "--seed", "11", "--out", str(out),
                     "--quiet"]) == 0
    for p in previews:
        rgb = (out / frame_files(p["index"])["rgb"]).read_bytes()
        assert hashlib.sha256(rgb).hexdigest() == p["rgb_sha256"]


def test_thumbnails_show_several_samples(client):
    res = client.post("/api/thumbnails", json={"scenario": scenario(), "seed": 2, "count": 3}).json()
    thumbs = res["thumbnails"]
    assert [t["index"] for t in thumbs] == [0, 1, 2] and all(t["image"].startswith("data:image/png") for t in thumbs)
    assert len({t["image"] for t in thumbs}) == 3


def test_render_error_reaches_the_page_as_a_message(client):
    # two events on the same spot: the second can never be placed
    clash = scenario(max_tries=2, events=[{"asset": "pedestrian", "at": {"x_m": 14.0, "y_m": -1.0}},
                                          {"asset": "pedestrian", "at": {"x_m": 14.0, "y_m": -1.0}}])
    t0 = time.perf_counter()
    r = client.post("/api/render", json={"scenario": clash, "seed": 0})
    assert r.status_code == 422 and "events[1]" in r.json()["error"] and "overlaps" in r.json()["error"]
    assert time.perf_counter() - t0 < 30


def test_save_and_load_round_trip(client, tmp_path):
    sc = scenario()
    r = client.put("/api/files/mine", json={"scenario": sc})
    assert r.status_code == 200 and r.json()["name"] == "mine.yaml"
    assert client.get("/api/files").json()["files"] == ["mine.yaml"]
    back = client.get("/api/files/mine.yaml").json()["scenario"]
    assert load_scenario(str(tmp_path / "ws" / "mine.yaml")).digest() == load_scenario_dict(back).digest()
    assert back["events"][0]["at"] == {"x_m": 14.0, "y_m": -1.0, "yaw_deg": 90.0}


def load_scenario_dict(data: dict):
    from longtail.worlds.scenario import parse_scenario

    return parse_scenario(data, "test")


@pytest.mark.parametrize("name", ["../evil.yaml", "..%2Fevil.yaml", "a/b.yaml", "%2Fetc%2Fpasswd", ".hidden.yaml",
                                  "x.txt", "..", "a" * 80, "con%00.yaml"])
def test_file_names_stay_inside_the_workspace(client, tmp_path, name):
    before = files_under(tmp_path)
    r = client.put(f"/api/files/{name}", json={"scenario": scenario()})
    assert 400 <= r.status_code < 500 and r.json()["error"], r.text
    assert client.get(f"/api/files/{name}").status_code in (400, 404)
    assert files_under(tmp_path) == before


def test_symlink_out_of_the_workspace_is_refused(client, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("name: x\ndescription: y\n")
    (tmp_path / "ws" / "link.yaml").symlink_to(outside)
    r = client.get("/api/files/link.yaml")
    assert r.status_code == 400 and "outside the workspace" in r.json()["error"]
    assert client.put("/api/files/link.yaml", json={"scenario": scenario()}).status_code == 400
    assert outside.read_text() == "name: x\ndescription: y\n"
    assert "link.yaml" not in client.get("/api/files").json()["files"]


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"scenario": scenario(events=[{"asset": "unicorn"}])}).encode(), 422, "events.0.asset"),
    (json.dumps({"scenario": scenario(camera={"width": 99999, "height": 96})}).encode(), 422, "camera.width"),
    (json.dumps({"scenario": scenario(events=[{"asset": "pedestrian", "at": {"x_m": 1e6, "y_m": 0}}])}).encode(), 422,
     "events.0.at.x_m"),
    (json.dumps({"scenario": "hello"}).encode(), 422, "expected an object"),
    (json.dumps({"scenario": scenario(extra_field=1)}).encode(), 422, "unknown field"),
])
@pytest.mark.parametrize("method, url", [("POST", "/api/render"), ("PUT", "/api/files/bad.yaml")])
def test_bad_input_is_a_clear_4xx_and_writes_nothing(client, tmp_path, method, url, body, status, words):
    before = files_under(tmp_path)
    r = client.request(method, url, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("extra, words", [({"seed": -1}, "seed"), ({"index": "x"}, "index")])
def test_a_bad_seed_or_index_is_refused_by_render(client, tmp_path, extra, words):
    before = files_under(tmp_path)
    r = client.post("/api/render", content=json.dumps({"scenario": scenario(), **extra}).encode(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert words in r.json()["error"]
    assert files_under(tmp_path) == before


def test_oversized_body_is_refused(client, tmp_path):
    before = files_under(tmp_path)
    big = json.dumps({"scenario": scenario(description="x" * (MAX_BODY_BYTES + 10))})
    r = client.put("/api/files/big.yaml", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        for k in range(0, len(big), 4096):
            yield big[k:k + 4096].encode()
    r = client.put("/api/files/big.yaml", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert files_under(tmp_path) == before


def test_pool_bounds_jobs_and_stops_slow_ones(monkeypatch):
    monkeypatch.setitem(worker.JOBS, "sleep", lambda s: (time.sleep(s), {"ok": True})[1])
    monkeypatch.setitem(worker.JOBS, "boom", lambda: 1 / 0)

    async def scenario_run():
        pool = RenderPool(workers=1, queue=0, timeout_s=0.5, mode="thread")
        try:
            first = asyncio.create_task(pool.run("sleep", 0.3))
            await asyncio.sleep(0.05)
            with pytest.raises(Busy):
                await pool.run("sleep", 0.0)
            assert (await first)["ok"]
            with pytest.raises(JobTimeout):
                await pool.run("sleep", 2.0)
            res = await pool.run("boom")
            assert res["ok"] is False and res["status"] == 500 and "ZeroDivisionError" in res["error"]
        finally:
            pool.close()

    asyncio.run(scenario_run())


def test_editor_command_is_registered():
    from longtail.cli import build_parser

    args = build_parser().parse_args(["editor", "--workspace", "w", "--port", "9000"])
    assert (args.command, str(args.workspace), args.port, args.host) == ("editor", "w", 9000, "127.0.0.1")


def test_editor_without_the_extra_says_how_to_install(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the editor extra were not installed
    assert cli_main(["editor", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "editor" in err and "uvicorn" in err and "pip install 'longtail[editor]'" in err
