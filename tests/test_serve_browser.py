"""The web page end to end in real headless Chromium: upload, play, live chart, timeline, microphone.

Needs the system Chromium at /usr/bin/chromium (``apt-get install chromium``) and Playwright's
Python package; skipped otherwise. Writes docs/web_app.png.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

CHROMIUM = Path(os.environ.get("GENREKIT_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: install it with 'apt-get install chromium'", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="the 'playwright' Python package is not installed")
uvicorn = pytest.importorskip("uvicorn")

from genrekit.checkpoint import Checkpoint  # noqa: E402
from genrekit.features import FeatureConfig  # noqa: E402
from genrekit.models import build_model  # noqa: E402
from genrekit.serve import create_app  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"
LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
    # a fake microphone (a beeping tone) that the page may use without a permission prompt
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]  # fmt: skip
SONG_S = 15.0


def song(path: Path, sr: int = 22050) -> Path:
    """Three 5-s sections that sound different: plucked low tones, a chord, noisy drums."""
    t = np.arange(int(SONG_S * sr)) / sr
    rng = np.random.default_rng(0)
    pluck = np.sin(2 * np.pi * 110 * t) * np.exp(-6 * (t % 0.5))
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    drums = rng.normal(size=t.size) * np.exp(-20 * (t % 0.25)) + 0.5 * np.sin(2 * np.pi * 55 * t)
    y = np.select([t < 5, t < 10], [pluck, chord], drums)
    sf.write(path, (0.4 * y / np.abs(y).max()).astype(np.float32), sr)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """uvicorn in a thread on a free loopback port; the bundled model if present, else random weights."""
    from genrekit.predictor import bundled_model_path

    model = None
    if not bundled_model_path().exists():
        import torch

        torch.manual_seed(0)
        cfg = FeatureConfig()
        m = build_model("gknet", n_classes=len(LABELS), input_shape=(cfg.n_bins, cfg.segment_frames))
        model = tmp_path_factory.mktemp("model") / "random.pt"
        Checkpoint("gknet", {}, LABELS, cfg, m.state_dict(), {"description": "random weights"}).save(model)
    app = create_app(model)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # (a 4xx answer is logged as "Failed to load resource"; the page shows those itself)
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load" not in m.text else None)
    pg.goto(server + "/")
    pg.wait_for_function("document.getElementById('model-badge').textContent.startsWith('Model:')")
    yield pg
    context.close()
    assert errors == [], f"errors in the page: {errors}"


@pytest.fixture(scope="module")
def song_path(tmp_path_factory) -> Path:
    return song(tmp_path_factory.mktemp("audio") / "three-parts.wav")


def upload(page, path: Path) -> None:
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#results:not([hidden])", timeout=60_000)


def js(page, expr: str):
    return page.evaluate(expr)


def test_upload_play_live_chart_timeline_and_seek(page, song_path):
    upload(page, song_path)
    result = js(page, "window.genrekit.result")
    labels = result["labels"]

    # the overall top genres, shown prominently
    top = page.text_content("#top-name")
    assert top == result["top"][0]["genre"]
    assert page.locator("#runner-ups li").count() == 3
    assert page.text_content("#file-name") == "three-parts.wav"
    assert "0:15 of audio" in page.text_content("#file-meta")

    # timeline heatmap: one row per genre, one column per segment
    heat = js(page, "(() => { const d = document.getElementById('timeline-chart').data[0];"
                    " return {type: d.type, y: d.y, nrows: d.z.length, ncols: d.z[0].length}; })()")
    assert heat["type"] == "heatmap" and heat["y"] == labels
    assert heat["nrows"] == len(labels) and heat["ncols"] == len(result["timeline"]) >= 8

    # play: the bar chart follows the segment under the playhead
    js(page, "document.getElementById('audio').play()")
    page.wait_for_function("document.getElementById('audio').currentTime > 2.5", timeout=20_000)
    state = js(page, """(() => {
        const a = document.getElementById('audio'), bars = document.getElementById('now-chart').data[0];
        return {t: a.currentTime, x: bars.x, y: bars.y, title: document.getElementById('now-label').textContent,
                playhead: document.getElementById('timeline-chart').layout.shapes[0].x0,
                segment: window.genrekit.segment};
    })()""")
    assert state["y"] == labels
    assert state["title"].startswith("Genre at 0:0")
    seg = result["timeline"][state["segment"]]
    assert seg["start_s"] - 1.5 <= state["t"] <= seg["end_s"] + 1.5
    assert state["x"] == pytest.approx([seg["probabilities"][g] for g in labels])
    assert 2.0 < state["playhead"] <= state["t"] + 0.5

    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "web_app.png"), full_page=True)

    # click a cell near the end of the timeline: the audio jumps to the start of that cell
    js(page, "document.getElementById('audio').pause()")
    box = page.locator("#timeline-chart .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)
    page.wait_for_function("document.getElementById('audio').currentTime > 10", timeout=10_000)
    after = js(page, """(() => ({t: document.getElementById('audio').currentTime, edges: window.genrekit.edges,
        segment: window.genrekit.segment, playhead: document.getElementById('timeline-chart').layout.shapes[0].x0,
        bars: document.getElementById('now-chart').data[0].x}))()""")
    col = after["segment"]
    assert after["t"] == pytest.approx(after["edges"][col], abs=0.01)
    assert after["edges"][col] <= after["t"] < after["edges"][col + 1]
    assert after["edges"][col] <= 0.8 * SONG_S < after["edges"][col + 1]  # the cell that was clicked
    assert after["playhead"] == pytest.approx(after["t"], abs=0.01)
    assert after["bars"] == pytest.approx([result["timeline"][col]["probabilities"][g] for g in labels])


def test_api_errors_are_shown(page, tmp_path):
    fake = tmp_path / "not-a-song.mp3"
    fake.write_text("hello, I am text\n" * 100)
    page.set_input_files("#file-input", str(fake))
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert page.text_content("#error-title") == "Not a readable audio file"
    assert "'not-a-song.mp3' could not be decoded" in page.text_content("#error-detail")
    assert page.is_hidden("#results")
    page.click("#error-close")
    assert page.is_hidden("#error")


def test_phone_width_has_no_horizontal_scroll(browser, server, song_path):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    pg = context.new_page()
    pg.goto(server + "/")
    upload(pg, song_path)
    pg.wait_for_function("document.getElementById('timeline-chart').data")
    assert js(pg, "document.documentElement.scrollWidth") <= 375
    # the cards stack: the chart is below the summary, both full width
    summary, now, player = js(pg, """['#summary-card', '.now-card', '#player-card'].map((s) => {
        const r = document.querySelector(s).getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, width: r.width, height: r.height}; })""")
    assert now["top"] >= summary["bottom"] and now["width"] > 300
    # the player stays on screen (sticky at the bottom) with its controls visible
    assert player["bottom"] <= 740 and player["height"] > 60
    context.close()


def test_live_microphone_updates_the_chart(page):
    page.click("#mic-button")
    page.wait_for_selector("#live-badge:not([hidden])", timeout=10_000)
    page.wait_for_function(
        "document.getElementById('now-label').textContent.startsWith('Microphone')", timeout=20_000
    )
    bars = js(page, "document.getElementById('now-chart').data[0]")
    assert sum(bars["x"]) == pytest.approx(1.0, abs=1e-2)
    assert page.text_content("#summary-label").startswith("Live genre")
    assert page.text_content("#top-name") in bars["y"]
    page.click("#mic-button")
    assert page.get_attribute("#mic-button", "aria-pressed") == "false"
    assert page.is_hidden("#live-badge")
