"""The editor's web app: a FastAPI server over a workspace directory of scenario files.

Everything the page needs comes from here (static files, the schema, the catalog, renders); the
page asks no other host. File names are validated and resolved inside the workspace; writes are
atomic; every bad request gets a 4xx with ``{"error": message, "errors": [{"loc", "msg"}]}`` and
writes nothing. Renders run in a ``RenderPool`` (bounded, with a time limit).
"""

from __future__ import annotations

import contextlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from longtail.atomic import write_bytes
from longtail.errors import InputError
from longtail.readers import decode_text, parse_json, parse_yaml
from longtail.editor.worker import Busy, JobTimeout, RenderPool
from longtail.worlds.assets import list_assets, list_groups
from longtail.worlds.layouts import REGIONS, list_layouts
from longtail.worlds.scenario import Scenario, list_scenarios

MAX_BODY_BYTES = 256 * 1024
MAX_FILE_BYTES = 256 * 1024
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(\.ya?ml)?$")
MAX_SEED = 2**63 - 1
MAX_INDEX = 1_000_000
BLANK = {"name": "my_scenario", "description": "A new scenario composed in the editor.",
         "layout": {"kind": "urban_street", "lanes_choices": [2]}}


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or []


def _loc(parts) -> str:
    """A pydantic error location as a dotted field path (``events.0.at.x_m``), union tags dropped."""
    return ".".join(str(p) for p in parts if isinstance(p, int) or ("[" not in p and "-" not in p))


def _validation_errors(err: ValidationError, prefix: str = "") -> list[dict]:
    out = []
    for e in err.errors(include_url=False):
        loc = _loc(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see `longtail scenario schema`)"
        elif e["type"] != "missing" and loc:
            msg = f"{json.dumps(e.get('input'), default=str)[:80]}: {msg}"
        out.append({"loc": f"{prefix}{loc}" if loc else prefix.rstrip("."), "msg": msg})
    return out


def validate_scenario(data: Any, field: str = "scenario") -> Scenario:
    if not isinstance(data, dict):
        raise ApiError(422, f"{field}: expected an object of scenario fields, got {type(data).__name__}",
                       [{"loc": "", "msg": "expected an object of scenario fields"}])
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        errors = _validation_errors(err)
        first = errors[0]
        raise ApiError(422, f"{field}: {first['loc'] + ': ' if first['loc'] else ''}{first['msg']}", errors) from None


def scenario_yaml(scenario: Scenario) -> str:
    """The scenario as a YAML file (fields at their defaults left out when that re-reads the same)."""
    for exclude in (True, False):
        data = scenario.model_dump(mode="json", exclude_defaults=exclude)
        data = {"name": scenario.name, "description": scenario.description, **data}
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)
        if Scenario.model_validate(yaml.safe_load(text)).digest() == scenario.digest():
            return text
    raise ApiError(500, "the scenario does not survive a YAML round trip")  # not reached with the schema


def editor_schema() -> dict:
    """The scenario JSON Schema with choices the page offers as menus (assets, regions, layouts)
    and suggestions (the catalog's event names). Controls are generated from this."""
    schema = Scenario.model_json_schema()
    defs = schema.get("$defs", {})
    actor = defs.get("ActorSpec", {}).get("properties", {})
    if "asset" in actor:
        actor["asset"]["enum"] = list_assets() + list_groups()
    if "region" in actor:
        actor["region"]["enum"] = list(REGIONS)
    layout = defs.get("LayoutSpec", {}).get("properties", {})
    if "kind" in layout:
        layout["kind"]["enum"] = list_layouts()
    if "event" in schema.get("properties", {}):
        schema["properties"]["event"]["examples"] = sorted({s.event for s in list_scenarios() if s.event})
    return schema


class Workspace:
    """Scenario files directly inside one directory; nothing outside it is read or written."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ApiError(400, f"file name {name!r}: expected letters, digits, '_' or '-' (at most 64, not "
                           f"starting with '_' or '-'), optionally ending in .yaml; no directories",
                           [{"loc": "name", "msg": "invalid file name"}])
        if not name.endswith((".yaml", ".yml")):
            name += ".yaml"
        p = (self.root / name).resolve()
        if p.parent != self.root:  # a symlink pointing elsewhere
            raise ApiError(400, f"file name {name!r}: resolves outside the workspace",
                           [{"loc": "name", "msg": "outside"}])
        return p

    def list(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()
                      if p.suffix in (".yaml", ".yml") and p.is_file() and NAME_RE.match(p.name)
                      and p.resolve().parent == self.root)

    def read(self, name: str) -> dict:
        p = self.path(name)
        if not p.is_file():
            raise ApiError(404, f"{p.name}: no such scenario file in the workspace")
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ApiError(413, f"{p.name}: larger than {MAX_FILE_BYTES} bytes")
        try:
            data = parse_yaml(decode_text(p.read_bytes(), p.name, "scenario file"), p.name)
        except InputError as e:
            raise ApiError(422, str(e)) from None
        sc = validate_scenario(data, p.name)
        return {"name": p.name, "scenario": sc.model_dump(mode="json")}

    def write(self, name: str, scenario: Scenario) -> dict:
        p = self.path(name)
        text = scenario_yaml(scenario)
        sha = write_bytes(p, text.encode())
        return {"name": p.name, "sha256": sha, "bytes": len(text.encode())}


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before the app sees it."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_big = declared is not None and declared.isdigit() and int(declared) > self.limit
        body, more = b"", not too_big
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > self.limit:
                too_big = True
                break
        if too_big:
            resp = JSONResponse({"error": f"request body larger than {self.limit} bytes", "errors": []}, 413)
            return await resp(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _json_body(request: Request) -> dict:
    raw = await request.body()
    try:
        data = parse_json(raw, "request body")
    except InputError as e:
        raise ApiError(400, f"malformed JSON body: {e.problem}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"expected a JSON object body, got {type(data).__name__}")
    return data


def _int_field(data: dict, name: str, default: int, low: int, high: int) -> int:
    v = data.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise ApiError(422, f"{name}: {json.dumps(v)[:40]}: expected an integer in {low}..{high}",
                       [{"loc": name, "msg": f"expected an integer in {low}..{high}"}])
    return v


def create_app(workspace: Path, pool: RenderPool | None = None) -> FastAPI:
    ws = Workspace(workspace)
    pool = pool or RenderPool()
    static = resources.files("longtail.editor") / "static"

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        pool.close()

    app = FastAPI(title="longtail editor", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.workspace, app.state.pool = ws, pool
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}", "errors": []},
                            exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message, "errors": exc.errors}, exc.status)

    async def run(kind: str, *args) -> JSONResponse:
        try:
            res = await pool.run(kind, *args)
        except Busy as e:
            raise ApiError(429, str(e)) from None
        except JobTimeout as e:
            raise ApiError(504, str(e)) from None
        if not res.get("ok"):
            raise ApiError(res.get("status", 500), res.get("error", "render failed"))
        return JSONResponse(res)

    @app.get("/")
    async def index():
        return FileResponse(str(static / "index.html"), headers={"Cache-Control": "no-store"})

    @app.get("/api/schema")
    async def schema():
        return editor_schema()

    @app.get("/api/catalog")
    async def catalog():
        return {"scenarios": [{"name": s.name, "description": s.description} for s in list_scenarios()]}

    @app.get("/api/catalog/{name}")
    async def catalog_entry(name: str):
        if name == "blank":
            return {"scenario": Scenario.model_validate(BLANK).model_dump(mode="json")}
        for s in list_scenarios():
            if s.name == name:
                return {"scenario": s.model_dump(mode="json")}
        raise ApiError(404, f"unknown catalog scenario {name!r}")

    @app.get("/api/assets")
    async def assets():
        from longtail.worlds.assets import get_asset

        return {"assets": [{"name": n, "class": get_asset(n).cls} for n in list_assets()], "groups": list_groups()}

    @app.post("/api/validate")
    async def validate(request: Request):
        data = await _json_body(request)
        try:
            sc = validate_scenario(data.get("scenario"))
        except ApiError as e:
            return {"ok": False, "error": e.message, "errors": e.errors}
        return {"ok": True, "errors": [], "yaml": scenario_yaml(sc)}

    def _job_args(data: dict) -> tuple[Scenario, int, int]:
        sc = validate_scenario(data.get("scenario"))
        return sc, _int_field(data, "seed", 0, 0, MAX_SEED), _int_field(data, "index", 0, 0, MAX_INDEX)

    @app.post("/api/map")
    async def scene_map(request: Request):
        sc, seed, index = _job_args(await _json_body(request))
        return await run("map", sc.model_dump_json(), seed, index)

    @app.post("/api/render")
    async def render(request: Request):
        sc, seed, index = _job_args(await _json_body(request))
        return await run("render", sc.model_dump_json(), seed, index)

    @app.post("/api/thumbnails")
    async def thumbnails(request: Request):
        data = await _json_body(request)
        sc, seed, _ = _job_args(data)
        count = _int_field(data, "count", 4, 1, 8)
        return await run("thumbnails", sc.model_dump_json(), seed, count, 160, 96)

    @app.get("/api/files")
    async def files():
        return {"workspace": str(ws.root), "files": ws.list()}

    @app.get("/api/files/{name:path}")
    async def read_file(name: str):
        return ws.read(name)

    @app.put("/api/files/{name:path}")
    async def write_file(name: str, request: Request):
        ws.path(name)  # the name first: a bad one is refused whatever the body
        data = await _json_body(request)
        return ws.write(name, validate_scenario(data.get("scenario")))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app
