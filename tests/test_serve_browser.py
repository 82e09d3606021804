"""The web page end to end in real headless Chromium: upload, play, live chart, timeline, phone
layout, microphone, the mix headline and the API docs page.

Needs the system Chromium at /usr/bin/chromium (``apt-get install chromium``) and Playwright's
Python package; skipped otherwise. Screenshots go to pytest's temp folder only; the picture in
docs/ is refreshed by ``benchmarks/web_screenshot.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

CHROMIUM = Path(os.environ.get("GENREKIT_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: install it with 'apt-get install chromium'", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="the 'playwright' Python package is not installed")

from genrekit.serve import ServeConfig, create_app  # noqa: E402
from genrekit.serve.server import serving  # noqa: E402

LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
    # a fake microphone (a beeping tone) that the page may use without a permission prompt
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]  # fmt: skip
SONG_S = 15.0
PHONE = {"width": 390, "height": 844}
pytestmark = pytest.mark.slow


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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """uvicorn on a free loopback port; the bundled model if present, else random weights."""
    from genrekit.predictor import bundled_model_path

    model = None
    if not bundled_model_path().exists():
        from conftest import random_checkpoint

        model = str(random_checkpoint(tmp_path_factory.mktemp("model") / "random.pt", labels=LABELS))
    config = ServeConfig(model=model, host="127.0.0.1", port=0, workers=1)
    with serving(create_app(config), config) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)  # a new temp profile
        yield b
        b.close()


def open_page(browser, server, **context_options):
    # Playwright's wait_for_function evaluates strings, which the page's CSP forbids; the policy
    # itself is tested in test_hostile.py
    context = browser.new_context(bypass_csp=True, **context_options)
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    # (a 4xx answer is logged as "Failed to load resource"; the page shows those itself)
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" and "Failed to load" not in m.text else 0)
    pg.on("request", lambda r: None if r.url.startswith((server, "blob:", "data:")) else pg.errors.append(r.url))
    pg.goto(server + "/")
    pg.wait_for_function("document.getElementById('model-badge').textContent.startsWith('Model:')")
    return context, pg


@pytest.fixture
def page(browser, server):
    context, pg = open_page(browser, server, viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    yield pg
    context.close()
    assert pg.errors == [], f"errors in the page (or requests off the server): {pg.errors}"


@pytest.fixture
def phone(browser, server):
    context, pg = open_page(browser, server, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    yield pg
    context.close()
    assert pg.errors == [], f"errors in the page (or requests off the server): {pg.errors}"


@pytest.fixture(scope="module")
def song_path(tmp_path_factory) -> Path:
    return song(tmp_path_factory.mktemp("audio") / "three-parts.wav")


def upload(page, path: Path) -> None:
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#results:not([hidden])", timeout=60_000)


def js(page, expr: str):
    return page.evaluate(expr)


def test_upload_play_live_chart_timeline_and_seek(page, song_path, tmp_path):
    upload(page, song_path)
    result = js(page, "window.genrekit.result")
    labels = result["labels"]

    # the overall genre (or the mix of close ones), shown prominently
    assert page.text_content("#top-name") == result["headline"]["label"]
    assert page.locator("#runner-ups li").count() == 3
    assert page.text_content("#file-name") == "three-parts.wav"
    assert "0:15 of audio" in page.text_content("#file-meta")

    # timeline heatmap: one row per genre, one column per segment
    heat = js(page, "(() => { const d = document.getElementById('timeline-chart').data[0];"
                    " return {type: d.type, y: d.y, nrows: d.z.length, ncols: d.z[0].length}; })()")  # fmt: skip
    assert heat["type"] == "heatmap" and heat["y"] == labels
    assert heat["nrows"] == len(labels) and heat["ncols"] == len(result["timeline"]) >= 5  # 3-s segments of 15 s

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
    page.screenshot(path=str(tmp_path / "web_app.png"), full_page=True)

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


def test_a_mix_of_close_genres_is_shown_as_a_mix(page, song_path):
    """The page shows the server's headline: three equal parts read as a mix, not one genre."""
    probs = dict.fromkeys(LABELS, 0.0) | {"blues": 0.34, "jazz": 0.33, "rock": 0.33}
    parts = ["blues", "jazz", "rock"]
    answer = {
        "duration_s": SONG_S, "probabilities": probs, "labels": LABELS, "model": {"name": "stub"},
        "top": [{"genre": g, "probability": probs[g]} for g in parts],
        "headline": {"genres": parts, "mixed": True, "label": "blues / jazz / rock"},
        "timeline": [{"start_s": 5.0 * i, "end_s": 5.0 * (i + 1), "label": g,
                      "probabilities": dict.fromkeys(LABELS, 0.0) | {g: 1.0}} for i, g in enumerate(parts)],
        "file": {"name": "three-parts.wav", "bytes": 1}, "timing": {"predict_ms": 1.0},
    }  # fmt: skip
    page.route("**/api/predict*", lambda route: route.fulfill(json=answer))
    upload(page, song_path)
    assert page.text_content("#top-name") == "blues / jazz / rock"
    assert page.text_content("#top-pct") == "mix · 34% · 33% · 33%"


def test_phone_layout_keeps_the_player_first_and_in_view(phone, song_path):
    upload(phone, song_path)
    phone.wait_for_function("document.getElementById('timeline-chart').data")
    assert js(phone, "document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    in_view = """(() => { const r = document.getElementById('audio').getBoundingClientRect();
        return r.height > 20 && r.top >= 0 && r.bottom <= window.innerHeight; })()"""
    # the play control is on screen without scrolling, above the charts
    phone.wait_for_function(in_view, timeout=10_000)
    assert js(phone, "window.scrollY") == 0
    player, summary, now = js(phone, """['#player-card', '#summary-card', '.now-card'].map((s) => {
        const r = document.querySelector(s).getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, width: r.width}; })""")
    assert player["bottom"] <= summary["top"] <= now["top"] and now["width"] > 300
    # scrolled down to the timeline, the player is still there (sticky)
    js(phone, "document.getElementById('timeline-card').scrollIntoView({block: 'end'})")
    phone.wait_for_function("window.scrollY > 300")
    phone.wait_for_function(in_view, timeout=10_000)
    js(phone, "window.scrollTo(0, document.documentElement.scrollHeight)")
    phone.wait_for_function(in_view, timeout=10_000)


def test_live_microphone_updates_the_chart_and_stops(page):
    page.click("#mic-button")
    page.wait_for_selector("#live-badge:not([hidden])", timeout=10_000)
    page.wait_for_function("document.getElementById('now-label').textContent.startsWith('Microphone')", timeout=20_000)
    bars = js(page, "document.getElementById('now-chart').data[0]")
    assert sum(bars["x"]) == pytest.approx(1.0, abs=1e-2)
    assert page.text_content("#summary-label").startswith("Live genre")
    assert "Listening for" in page.text_content("#file-meta")
    assert all(g in bars["y"] for g in page.text_content("#top-name").split(" / "))
    page.click("#mic-button")
    assert page.get_attribute("#mic-button", "aria-pressed") == "false"
    assert page.is_hidden("#live-badge")
    meta = page.text_content("#file-meta")
    assert "Listening" not in meta and meta.startswith("Microphone stopped after 0:0")
    assert page.text_content("#summary-label") == "Last live genre"
    assert page.text_content("#now-label") == "Microphone · stopped"


def test_api_docs_render_their_operations(page, server):
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/predict']", timeout=30_000)
    paths = js(page, "[...document.querySelectorAll('.opblock-summary-path')].map((e) => e.dataset.path)")
    assert {"/api/predict", "/api/models", "/healthz"} <= set(paths)
    assert "Unable to render this definition" not in page.content()
