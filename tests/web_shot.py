"""The web page's picture, taken the same way by the browser test and by the refresh command.

A 30-s song in three parts (plucked bass, a chord, noisy drums) is uploaded to the page, played to
about 3 s and paused; then the full page is shot. ``tests/test_serve_browser.py`` writes the picture
to its temp folder; ``benchmarks/web_screenshot.py`` writes docs/web_app.png.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SONG_S = 30.0
PLAY_TO_S = 3.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def song(path: Path, *, seconds: float = SONG_S, sr: int = 22050) -> Path:
    """Write three equal sections that sound different: plucked low tones, a chord, noisy drums."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    pluck = np.sin(2 * np.pi * 110 * t) * np.exp(-6 * (t % 0.5))
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    drums = rng.normal(size=t.size) * np.exp(-20 * (t % 0.25)) + 0.5 * np.sin(2 * np.pi * 55 * t)
    y = np.select([t < seconds / 3, t < 2 * seconds / 3], [pluck, chord], drums)
    sf.write(path, (0.4 * y / np.abs(y).max()).astype(np.float32), sr)
    return path


def open_app(page, url: str) -> None:
    """Load the page and wait until it has read the model."""
    page.goto(url + "/")
    page.wait_for_function("document.getElementById('model-badge').textContent.startsWith('Model:')")


def upload(page, path: Path) -> None:
    """Choose ``path`` in the file input and wait for the result."""
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#results:not([hidden])", timeout=120_000)


def play_to(page, seconds: float = PLAY_TO_S) -> None:
    """Play the uploaded song until ``seconds`` have passed, then pause it."""
    page.evaluate("document.getElementById('audio').play()")
    page.wait_for_function(f"document.getElementById('audio').currentTime > {seconds}", timeout=30_000)
    page.evaluate("document.getElementById('audio').pause()")


def shoot(page, out: Path, *, scroll_to: str | None = None) -> Path:
    """Shoot the page (the full page, or the viewport scrolled to ``scroll_to``) into ``out``."""
    page.wait_for_timeout(500)  # the bars' 180-ms transition ends
    if scroll_to:
        page.evaluate(f"document.querySelector('{scroll_to}').scrollIntoView({{block: 'end'}})")
        page.wait_for_timeout(300)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=scroll_to is None)
    return out


def picture(page, url: str, audio: Path, out: Path, *, scroll_to: str | None = None) -> Path:
    """The whole sequence: open the page, upload ``audio``, play it to 3 s, shoot it into ``out``."""
    open_app(page, url)
    upload(page, audio)
    play_to(page)
    return shoot(page, out, scroll_to=scroll_to)
