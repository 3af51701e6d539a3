"""End to end: `longtail editor` in a subprocess, driven in headless Debian chromium by Playwright.

Place a pedestrian on the map, turn it, render, see the preview and its box, save, reload the
page and find the pedestrian again; the saved file renders from the CLI to the bytes the
preview showed. Screenshots go to test-artifacts/editor/ (``editor.png`` is the README's).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("LONGTAIL_REQUIRE_BROWSER"):
    pytest.fail("LONGTAIL_REQUIRE_BROWSER is set but chromium is not on PATH", pytrace=False)
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it when run as root)",
                allow_module_level=True)
pytest.importorskip("fastapi", reason="the editor extra is not installed (pip install -e '.[editor]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="the editor extra is not installed")

from longtail.cli import main as cli_main  # noqa: E402
from longtail.dataset import frame_files  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "editor"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def editor(tmp_path):
    ws = tmp_path / "ws"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "longtail", "editor", "--workspace", str(ws), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    line = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "http://" not in line:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
    assert f"http://127.0.0.1:{port}/" in line, f"editor did not start: {line!r}"
    yield f"http://127.0.0.1:{port}/", ws
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_place_render_save_reload_in_chromium(editor, tmp_path):
    url, ws = editor
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.on("request", lambda r: r.url.startswith(("http", "ws")) and not r.url.startswith(url)
                and outside.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)

        # place a pedestrian: add it, drag it on the map, turn it by its knob
        page.select_option("#add-asset", "pedestrian")
        page.select_option("#add-role", "events")
        page.click("#add-actor")
        item = page.locator("#actor-list li[data-asset='pedestrian']")
        sync_api.expect(item).to_contain_text("at (20, 0) m, 0°")
        box = page.locator("#map").bounding_box()
        edge = page.eval_on_selector("#map", "c => c.clientLeft")  # the canvas's border
        # the initial view: 6 px per metre, world (25, 0) at the canvas centre (230, 280)
        to_screen = lambda x, y: (box["x"] + edge + 230 - 6 * y, box["y"] + edge + 280 - 6 * (x - 25))  # noqa: E731
        page.mouse.move(*to_screen(20, 0))
        page.mouse.down()
        page.mouse.move(*to_screen(25, -1), steps=5)
        page.mouse.move(*to_screen(30, -1.7), steps=5)
        page.mouse.up()
        sync_api.expect(item).to_contain_text("at (30, -1.7) m, 0°")
        knob = to_screen(30 + 22 / 6, -1.7)
        page.mouse.move(*knob)
        page.mouse.down()
        page.mouse.move(*to_screen(30, 15), steps=5)
        page.mouse.up()
        sync_api.expect(item).to_contain_text("at (30, -1.7) m, 90°")
        page.fill("#filename", "crossing")

        # render: the camera view and the pedestrian's box
        page.click("#render")
        page.wait_for_selector("#preview[data-sha256]", timeout=60_000)
        assert page.eval_on_selector("#preview-rgb", "img => [img.naturalWidth, img.naturalHeight]") == [640, 384]
        ped_box = page.locator("#preview-boxes rect[data-asset='pedestrian']")
        sync_api.expect(ped_box).to_have_count(1)
        assert float(ped_box.get_attribute("height")) > 10
        page.check("#show-instance")
        assert page.locator("#preview-instance").is_visible()
        page.uncheck("#show-instance")
        sync_api.expect(page.locator("#thumbs figure img")).to_have_count(4, timeout=60_000)
        shown = page.get_attribute("#preview", "data-sha256")
        page.screenshot(path=str(ARTIFACTS / "editor.png"))

        # save, reload, find the pedestrian again
        page.click("#save")
        sync_api.expect(page.locator("#status")).to_have_text("saved crossing.yaml")
        assert (ws / "crossing.yaml").is_file()
        page.reload()
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        sync_api.expect(page.locator("#actor-list li[data-asset='pedestrian']")).to_contain_text("at (30, -1.7) m, 90°")
        assert page.input_value("#filename") == "crossing.yaml"

        # a bad value shows its message next to its field, and a bad file name is refused
        page.fill("[data-path='camera.width']", "99999")
        page.press("[data-path='camera.width']", "Tab")
        sync_api.expect(page.locator("[data-field='camera.width'] > .error")).to_contain_text("less than or equal")
        page.fill("#filename", "../escape")
        page.click("#save")
        sync_api.expect(page.locator("#status")).to_contain_text("not saved")
        page.screenshot(path=str(ARTIFACTS / "editor-error.png"))
        browser.close()
    assert not errors, errors
    assert not outside, f"the page asked other hosts: {outside}"
    assert not (ws.parent / "escape.yaml").exists()

    # the saved file renders from the CLI to the frame the preview showed
    out = tmp_path / "out"
    assert cli_main(["render", "--scenario", str(ws / "crossing.yaml"), "--frames", "1", "--seed", "0",
                     "--out", str(out), "--quiet"]) == 0
    assert hashlib.sha256((out / frame_files(0)["rgb"]).read_bytes()).hexdigest() == shown
