"""Any request body to the editor's API: an answer or a 4xx with a JSON error, never a 500, and
nothing written to the workspace unless the body held a valid scenario."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

pytest.importorskip("fastapi", reason="the editor extra is not installed (pip install -e '.[editor]')")
pytest.importorskip("httpx", reason="the editor extra is not installed (pip install -e '.[editor]')")
from fastapi.testclient import TestClient  # noqa: E402

from fuzzing import FUZZ, binary, mutate, values  # noqa: E402
from longtail.editor.app import create_app  # noqa: E402
from longtail.editor.worker import RenderPool  # noqa: E402

GOOD = {"name": "fuzzed", "description": "d", "camera": {"width": 64, "height": 48},
        "events": [{"asset": "pedestrian", "region": "ego_lane", "distance_m_range": [8, 20]}]}
DEEP = b'{"scenario": ' + b"[" * 3000 + b"]" * 3000 + b"}"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    pool = RenderPool(workers=1, queue=4, timeout_s=60, mode="thread")
    with TestClient(create_app(tmp_path_factory.mktemp("ws"), pool), raise_server_exceptions=False) as c:
        yield c
    pool.close()


def _body(data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["bytes", "value", "scenario", "scenario", "fields"]))
    if kind == "bytes":
        return data.draw(binary | st.just(DEEP) | st.just(b'{"scenario": NaN}'))
    if kind == "value":
        return json.dumps(data.draw(values)).encode()
    body = {"scenario": mutate(GOOD, data)}
    if kind == "fields":
        body.update(seed=data.draw(values), index=data.draw(values), count=data.draw(values))
    return json.dumps(body).encode()


@FUZZ
@given(st.data(), st.sampled_from(["/api/validate", "/api/map", "/api/files/fuzz.yaml"]))
def test_request_bodies(client, data, route):
    body = _body(data)
    method = client.put if route.startswith("/api/files") else client.post
    r = method(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code < 500, (r.status_code, r.text[:300])
    answer = r.json()
    if r.status_code >= 400:
        assert isinstance(answer.get("error"), str) and "\n" not in answer["error"]


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_render_request_bodies(client, data):
    r = client.post("/api/render", content=_body(data), headers={"content-type": "application/json"})
    assert r.status_code < 500, (r.status_code, r.text[:300])
