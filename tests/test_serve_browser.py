"""The web page end to end in real headless Chromium: upload, play, live chart, timeline (mouse and
keyboard), no music, unsure and truncated answers, labels that fit, the phone layout, the microphone
(beeping and silent), the aria-live announcements and the API docs page.

Needs the system Chromium at /usr/bin/chromium (``apt-get install chromium``) and Playwright's
Python package; skipped otherwise. Screenshots go to pytest's temp folder only; the picture in
docs/ is refreshed by ``benchmarks/web_screenshot.py``, which takes it as this test does (web_shot.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import web_shot
from web_shot import PHONE, SONG_S, play_to, upload

CHROMIUM = Path(os.environ.get("GENREKIT_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: install it with 'apt-get install chromium'", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="the 'playwright' Python package is not installed")

from genrekit.serve import ServeConfig, create_app
from genrekit.serve.server import serving

LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
# a fake microphone (a beeping tone) that the page may use without a permission prompt
CHROMIUM_ARGS = [*web_shot.CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
# the microphone replaced by a silent stream, before the page's scripts run
SILENT_MIC = """navigator.mediaDevices.getUserMedia = async () => {
    const ctx = new AudioContext(), zero = ctx.createConstantSource(), out = ctx.createMediaStreamDestination();
    zero.offset.value = 0;
    zero.connect(out);
    zero.start();
    return out.stream;
};
// every text the aria-live region is given, in order
window.saidAloud = [];
addEventListener("DOMContentLoaded", () => new MutationObserver(() => {
    const text = document.getElementById("announce").textContent;
    if (text) window.saidAloud.push(text);
}).observe(document.getElementById("announce"), {childList: true, characterData: true, subtree: true}));"""
pytestmark = pytest.mark.slow


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


def open_page(browser, server, *, init_script: str | None = None, **context_options):
    # Playwright's wait_for_function evaluates strings, which the page's CSP forbids; the policy
    # itself is tested in test_hostile.py
    context = browser.new_context(bypass_csp=True, **context_options)
    if init_script:
        context.add_init_script(init_script)
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    # (a 4xx answer is logged as "Failed to load resource"; the page shows those itself)
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" and "Failed to load" not in m.text else 0)
    pg.on("request", lambda r: None if r.url.startswith((server, "blob:", "data:")) else pg.errors.append(r.url))
    web_shot.open_app(pg, server)
    return context, pg


def closed_cleanly(context, pg) -> None:
    context.close()
    assert pg.errors == [], f"errors in the page (or requests off the server): {pg.errors}"


@pytest.fixture
def page(browser, server):
    context, pg = open_page(browser, server, **web_shot.DESKTOP)
    yield pg
    closed_cleanly(context, pg)


@pytest.fixture
def phone(browser, server):
    context, pg = open_page(browser, server, **web_shot.PHONE)
    yield pg
    closed_cleanly(context, pg)


@pytest.fixture
def silent_mic_page(browser, server):
    context, pg = open_page(browser, server, init_script=SILENT_MIC, **web_shot.DESKTOP)
    yield pg
    closed_cleanly(context, pg)


@pytest.fixture(scope="module")
def song_path(tmp_path_factory) -> Path:
    return web_shot.song(tmp_path_factory.mktemp("audio") / "three-parts.wav")


@pytest.fixture(scope="module")
def silence_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "quiet.wav"
    sf.write(path, np.zeros(30 * 22050, np.float32), 22050)
    return path


def js(page, expr: str):
    return page.evaluate(expr)


def stub_answer(windows: list[dict[str, float]], *, window_s: float = 5.0, **fields) -> dict:
    """An answer of POST /api/predict (genrekit.schema) for windows of chosen probabilities."""
    mean = {g: sum(w.get(g, 0.0) for w in windows) / len(windows) for g in LABELS}
    top = sorted(mean.items(), key=lambda gp: -gp[1])[:3]
    wins = [
        {
            "start_s": window_s * i,
            "end_s": window_s * (i + 1),
            "genre": max(w, key=w.get),
            "probabilities": dict.fromkeys(LABELS, 0.0) | w,
        }
        for i, w in enumerate(windows)
    ]
    return {
        "path": "three-parts.wav",
        "genre": top[0][0],
        "probability": top[0][1],
        "confident": True,
        "no_music": None,
        "label": top[0][0],
        "genres": [top[0][0]],
        "top": [{"genre": g, "probability": p} for g, p in top],
        "probabilities": mean,
        "duration_s": window_s * len(windows),
        "truncated": False,
        "declared_duration_s": None,
        "timeline": [{"start_s": w["start_s"], "end_s": w["end_s"], "genre": w["genre"]} for w in wins],
        "windows": wins,
        "model": "stub",
        "file": {"name": "three-parts.wav", "bytes": 1},
        "timing": {"predict_ms": 1.0},
        **fields,
    }


def results_text(page) -> str:
    """What the results show a person (hidden parts excluded)."""
    return js(page, "document.getElementById('results').innerText").lower()


def announced(page, part: str) -> str:
    page.wait_for_function(f"document.getElementById('announce').textContent.includes({part!r})", timeout=10_000)
    return page.text_content("#announce")


def inside(inner: dict, outer: dict) -> bool:
    return (
        outer["left"] <= inner["left"]
        and inner["right"] <= outer["right"]
        and outer["top"] <= inner["top"]
        and inner["bottom"] <= outer["bottom"]
    )


# an element's box on screen, in CSS pixels
BOX = (
    "(e) => { const r = e.getBoundingClientRect();"
    " return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; }"
)


def test_upload_play_live_chart_timeline_and_seek(page, song_path, tmp_path):
    upload(page, song_path)
    result = js(page, "window.genrekit.result")
    labels = js(page, "window.genrekit.labels")

    # the server's label in big type, its top genres below; the result is announced
    assert page.text_content("#top-name") == result["label"]
    assert page.locator("#runner-ups li").count() == 3
    assert page.text_content("#file-name") == "three-parts.wav"
    assert f"0:{SONG_S:.0f} of audio" in page.text_content("#file-meta")
    assert result["label"] in announced(page, "three-parts.wav")

    # the timeline: a heatmap of the windows, one row per genre, under a strip of the smoothed runs
    heat = js(
        page,
        """(() => { const c = document.getElementById('timeline-chart'), d = c.data[0];
        return {type: d.type, y: d.y, nrows: d.z.length, ncols: d.z[0].length, shapes: c.layout.shapes.length}; })()""",
    )
    assert heat["type"] == "heatmap" and heat["y"] == labels
    assert heat["nrows"] == len(labels) and heat["ncols"] == len(result["windows"]) >= 9  # 3-s windows
    assert heat["shapes"] == 1 + len(result["timeline"])  # the playhead, then one block per run

    # play: the bar chart follows the window under the playhead
    play_to(page)
    state = js(
        page,
        """(() => {
        const a = document.getElementById('audio'), bars = document.getElementById('now-chart').data[0];
        return {t: a.currentTime, x: bars.x, y: bars.y, title: document.getElementById('now-label').textContent,
                playhead: document.getElementById('timeline-chart').layout.shapes[0].x0,
                segment: window.genrekit.segment};
    })()""",
    )
    assert state["y"] == labels
    assert state["title"].startswith("Genre at 0:03")
    win = result["windows"][state["segment"]]
    assert win["start_s"] - 1.5 <= state["t"] <= win["end_s"] + 1.5
    assert state["x"] == pytest.approx([win["probabilities"][g] for g in labels])
    assert 2.0 < state["playhead"] <= state["t"] + 0.5
    shot = web_shot.shoot(page, tmp_path / "web_app.png")  # the README's picture, as the refresh command takes it
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    # click a cell near the end of the timeline: the audio jumps to the start of that cell
    box = page.locator("#timeline-chart .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)
    page.wait_for_function(f"document.getElementById('audio').currentTime > {0.6 * SONG_S}", timeout=10_000)
    after = js(
        page,
        """(() => ({t: document.getElementById('audio').currentTime, edges: window.genrekit.edges,
        segment: window.genrekit.segment, playhead: document.getElementById('timeline-chart').layout.shapes[0].x0,
        bars: document.getElementById('now-chart').data[0].x}))()""",
    )
    col = after["segment"]
    assert after["t"] == pytest.approx(after["edges"][col], abs=0.01)
    assert after["edges"][col] <= after["t"] < after["edges"][col + 1]
    assert after["edges"][col] <= 0.8 * SONG_S < after["edges"][col + 1]  # the cell that was clicked
    assert after["playhead"] == pytest.approx(after["t"], abs=0.01)
    assert after["bars"] == pytest.approx([result["windows"][col]["probabilities"][g] for g in labels])


def test_the_timeline_is_reached_and_moved_by_keyboard(page, song_path):
    upload(page, song_path)
    n = len(js(page, "window.genrekit.result.windows"))
    for _ in range(40):  # Tab through the page until the timeline has the focus
        page.keyboard.press("Tab")
        if js(page, "document.activeElement.id") == "timeline-chart":
            break
    assert js(page, "document.activeElement.id") == "timeline-chart"
    assert page.get_attribute("#timeline-chart", "role") == "slider"

    def where() -> dict:
        return js(
            page,
            """(() => { const c = document.getElementById('timeline-chart');
            return {t: document.getElementById('audio').currentTime, segment: window.genrekit.segment,
                    edges: window.genrekit.edges, text: c.getAttribute('aria-valuetext'),
                    playhead: c.layout.shapes[0].x0};
        })()""",
        )

    assert where()["segment"] == 0
    page.keyboard.press("ArrowRight")
    page.wait_for_function("window.genrekit.segment === 1")
    at = where()
    assert at["t"] == pytest.approx(at["edges"][1], abs=0.01) and at["playhead"] == pytest.approx(at["t"], abs=0.01)
    assert f"window 2 of {n}" in at["text"]
    page.keyboard.press("End")
    page.wait_for_function(f"window.genrekit.segment === {n - 1}")
    assert where()["t"] == pytest.approx(where()["edges"][n - 1], abs=0.01)
    page.keyboard.press("ArrowRight")  # past the end: stays on the last window
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"window.genrekit.segment === {n - 2}")
    page.keyboard.press("Home")
    page.wait_for_function("window.genrekit.segment === 0")
    assert where()["t"] < 0.01


def test_silence_says_no_music_and_shows_no_genre(page, silence_path):
    upload(page, silence_path)
    result = js(page, "window.genrekit.result")
    assert result["no_music"] and result["label"] == "no music detected"
    assert page.text_content("#top-name") == "no music detected"
    assert page.text_content("#top-pct") == ""
    assert page.locator("#runner-ups li").count() == 0
    assert page.is_hidden("#timeline-card") and page.is_hidden("#now-chart") and page.is_visible("#now-empty")
    text = results_text(page)
    assert "no music detected" in text and "0:30 of audio" in text
    assert [g for g in LABELS if g in text] == [] and "%" not in text  # no genre, no percentage anywhere
    assert "no music detected" in announced(page, "quiet.wav")

    # a song after the silence shows its genre and timeline again
    page.route("**/api/predict*", lambda route: route.fulfill(json=stub_answer([{"jazz": 1.0}] * 3)))
    upload(page, silence_path)
    page.wait_for_function("document.getElementById('top-name').textContent === 'jazz'")
    assert page.is_visible("#timeline-card") and page.is_visible("#now-chart") and page.is_hidden("#now-empty")


def test_unsure_and_truncated_are_said_as_the_server_says(page, song_path):
    answer = stub_answer(
        [{"jazz": 0.4, "blues": 0.2, "rock": 0.4 - 1e-3}] + [{"jazz": 0.4, "blues": 0.35}] * 1,
        window_s=3.0,
        truncated=True,
        declared_duration_s=30.0,
    )
    answer.update(confident=False, label="jazz (unsure)", genres=["jazz"])
    page.route("**/api/predict*", lambda route: route.fulfill(json=answer))
    upload(page, song_path)
    assert page.text_content("#top-name") == "jazz (unsure)"
    note = page.text_content("#summary-note")
    assert page.is_visible("#summary-note") and "ends at 0:06 although its header says 0:30" in note
    said = announced(page, "three-parts.wav")
    assert "jazz (unsure)" in said and "header says 0:30" in said


def test_a_mix_of_close_genres_is_shown_as_a_mix(page, song_path):
    """The page shows the server's label: three equal parts read as a mix, not one genre."""
    answer = stub_answer([{"blues": 1.0}, {"jazz": 1.0}, {"rock": 1.0}])
    probs = dict.fromkeys(LABELS, 0.0) | {"blues": 0.34, "jazz": 0.33, "rock": 0.33}
    answer.update(
        probabilities=probs,
        genres=["blues", "jazz", "rock"],
        label="blues / jazz / rock",
        probability=0.34,
        top=[{"genre": g, "probability": probs[g]} for g in ("blues", "jazz", "rock")],
    )
    page.route("**/api/predict*", lambda route: route.fulfill(json=answer))
    upload(page, song_path)
    assert page.text_content("#top-name") == "blues / jazz / rock"
    assert page.text_content("#top-pct") == "mix · 34% · 33% · 33%"
    strip = js(page, "document.getElementById('timeline-chart').layout.annotations.map((a) => a.text)")
    assert {"blues", "jazz", "rock"} <= set(strip)  # each run named in the strip


def test_styles_are_chips_under_the_genre_and_gone_without_music(page, song_path, silence_path):
    styles = [{"style": "electronic", "probability": 0.81}, {"style": "dance", "probability": 0.52}]
    answer = stub_answer([{"disco": 0.7, "pop": 0.3}], styles=styles)
    page.route("**/api/predict*", lambda route: route.fulfill(json=answer))
    upload(page, song_path)
    chips = page.locator("#styles li.style-chip")
    assert page.is_visible("#styles") and chips.all_text_contents() == ["electronic", "dance"]
    assert chips.first.get_attribute("title") == "electronic: 81% (musicnn tag)"
    assert js(page, "[...document.querySelectorAll('#styles, #styles *')].every((e) => !e.hasAttribute('style'))")
    # the chips sit under the genre's name, above the runner-ups
    top, chip, runners = (
        js(page, f"({BOX})(document.querySelector('{q}'))") for q in ("#top-name", "#styles", "#runner-ups")
    )
    assert top["bottom"] <= chip["top"] and chip["bottom"] <= runners["top"]
    page.unroute("**/api/predict*")
    upload(page, silence_path)
    page.wait_for_function("document.getElementById('top-name').textContent === 'no music detected'")
    assert not page.is_visible("#styles")


@pytest.mark.parametrize("device", ["page", "phone"])
def test_a_100_percent_label_lies_inside_its_card(request, device, song_path):
    pg = request.getfixturevalue(device)
    pg.route("**/api/predict*", lambda route: route.fulfill(json=stub_answer([{"metal": 1.0}] * 3)))
    upload(pg, song_path)
    pg.wait_for_function("[...document.querySelectorAll('#now-chart .bartext')].some((t) => t.textContent === '100%')")
    label = pg.locator("#now-chart .bartext", has_text="100%").evaluate(BOX)
    card = pg.locator(".now-card").evaluate(BOX)
    chart = pg.locator("#now-chart").evaluate(BOX)
    width = js(pg, "document.documentElement.clientWidth")
    assert inside(label, card) and inside(label, chart) and label["right"] <= width, (label, chart, card)
    pct = pg.locator("#runner-ups .pct", has_text="100%").evaluate(BOX)
    assert inside(pct, pg.locator("#summary-card").evaluate(BOX)) and pct["right"] - pct["left"] > 10


def test_phone_layout_keeps_the_player_first_and_in_view(phone, song_path):
    upload(phone, song_path)
    phone.wait_for_function("document.getElementById('timeline-chart').data")
    assert js(phone, "document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]  # no sideways scrolling
    in_view = """(() => { const r = document.getElementById('audio').getBoundingClientRect();
        return r.height > 20 && r.top >= 0 && r.bottom <= window.innerHeight; })()"""
    # the play control is on screen without scrolling, above the charts
    phone.wait_for_function(in_view, timeout=10_000)
    assert js(phone, "window.scrollY") == 0
    player, summary, now = js(
        phone,
        """['#player-card', '#summary-card', '.now-card'].map((s) => {
        const r = document.querySelector(s).getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, width: r.width}; })""",
    )
    assert player["bottom"] <= summary["top"] <= now["top"] and now["width"] > 300
    # the timeline's x-axis ends with the song's end, its label whole on screen
    ticks = js(
        phone,
        f"""[...document.querySelectorAll('#timeline-chart .xtick text')].map((e) => ({{
        text: e.textContent, box: ({BOX})(e), shown: getComputedStyle(e).display !== 'none'}}))""",
    )
    end = ticks[-1]
    assert end["text"] == f"0:{SONG_S:.0f}" and end["shown"] and end["box"]["right"] > end["box"]["left"]
    assert inside(end["box"], phone.locator("#timeline-card").evaluate(BOX))
    assert end["box"]["right"] <= PHONE["viewport"]["width"]
    # scrolled down to the timeline, the player is still there (sticky)
    js(phone, "document.getElementById('timeline-card').scrollIntoView({block: 'end'})")
    phone.wait_for_function("window.scrollY > 300")
    phone.wait_for_function(in_view, timeout=10_000)
    js(phone, "window.scrollTo(0, document.documentElement.scrollHeight)")
    phone.wait_for_function(in_view, timeout=10_000)


def live_answer(page) -> dict:
    page.wait_for_selector("#live-badge:not([hidden])", timeout=10_000)
    page.wait_for_function("document.getElementById('now-label').textContent.startsWith('Microphone')", timeout=30_000)
    return js(page, "window.genrekit.mic.last")


def test_live_microphone_updates_the_chart_and_stops(page):
    page.click("#mic-button")
    msg = live_answer(page)
    assert page.text_content("#summary-label").startswith("Live genre")
    assert "Listening for" in page.text_content("#file-meta")
    assert page.text_content("#top-name") == msg["label"]  # the server's word, whatever the beep sounds like
    if msg["no_music"] is None:
        bars = js(page, "document.getElementById('now-chart').data[0]")
        assert sum(bars["x"]) == pytest.approx(1.0, abs=1e-2)
        assert all(g in bars["y"] for g in msg["genres"])
    assert "Live genre" in announced(page, "Live genre")
    page.click("#mic-button")
    assert page.get_attribute("#mic-button", "aria-pressed") == "false"
    assert page.is_hidden("#live-badge")
    meta = page.text_content("#file-meta")
    assert "Listening" not in meta and meta.startswith("Microphone stopped after 0:0")
    assert page.text_content("#summary-label") == "Last live genre"
    assert page.text_content("#now-label") == "Microphone · stopped"
    assert "Microphone stopped" in announced(page, "Microphone stopped")


def test_live_microphone_on_silence_shows_no_genre(silent_mic_page):
    page = silent_mic_page
    page.click("#mic-button")
    msg = live_answer(page)
    assert msg["no_music"] and msg["label"] == "no music detected"
    assert page.text_content("#top-name") == "no music detected"
    assert page.locator("#runner-ups li").count() == 0 and page.text_content("#top-pct") == ""
    assert page.is_hidden("#now-chart") and page.is_visible("#now-empty")
    text = results_text(page)
    assert [g for g in LABELS if g in text] == [] and "%" not in text
    assert "Live genre: no music detected" in announced(page, "Live genre")
    page.wait_for_function("window.genrekit.mic.last.t >= 4", timeout=30_000)  # four answers, all the same
    said = [t for t in js(page, "window.saidAloud") if t.startswith("Live genre")]
    assert said == ["Live genre: no music detected"]  # said once, not every second
    page.click("#mic-button")
    assert page.text_content("#summary-label") == "Last live genre"
    assert page.text_content("#top-name") == "no music detected" and page.locator("#runner-ups li").count() == 0


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


def test_api_docs_render_their_operations(page, server):
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/predict']", timeout=30_000)
    paths = js(page, "[...document.querySelectorAll('.opblock-summary-path')].map((e) => e.dataset.path)")
    assert {"/api/predict", "/api/models", "/healthz"} <= set(paths)
    assert "Unable to render this definition" not in page.content()
