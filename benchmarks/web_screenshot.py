"""Refresh docs/web_app.png: the web page in headless Chromium, a song playing.

Starts the app with the bundled model on a free loopback port, uploads a 15-s song in three parts
(plucked bass, a chord, noisy drums), plays it to about 3 s and takes a full-page screenshot.
``--phone`` also writes the phone layout (390x844, scrolled to the timeline) next to it, for a look.

    python benchmarks/web_screenshot.py [--out docs/web_app.png] [--phone PATH]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


def song(path: Path, *, seconds: float = 15.0, sr: int = 22050) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    pluck = np.sin(2 * np.pi * 110 * t) * np.exp(-6 * (t % 0.5))
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    drums = rng.normal(size=t.size) * np.exp(-20 * (t % 0.25)) + 0.5 * np.sin(2 * np.pi * 55 * t)
    y = np.select([t < seconds / 3, t < 2 * seconds / 3], [pluck, chord], drums)
    sf.write(path, (0.4 * y / np.abs(y).max()).astype(np.float32), sr)
    return path


def shoot(page, url: str, audio: Path, out: Path, *, scroll_to: str | None = None) -> None:
    page.goto(url + "/")
    page.wait_for_function("document.getElementById('model-badge').textContent.startsWith('Model:')")
    page.set_input_files("#file-input", str(audio))
    page.wait_for_selector("#results:not([hidden])", timeout=120_000)
    page.evaluate("document.getElementById('audio').play()")
    page.wait_for_function("document.getElementById('audio').currentTime > 3", timeout=30_000)
    page.evaluate("document.getElementById('audio').pause()")
    page.wait_for_timeout(500)  # let the charts' transitions end
    if scroll_to:
        page.evaluate(f"document.querySelector('{scroll_to}').scrollIntoView({{block: 'end'}})")
        page.wait_for_timeout(300)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=scroll_to is None)
    print(f"wrote {out}")


def main() -> None:
    from playwright.sync_api import sync_playwright

    from genrekit.serve import ServeConfig, create_app
    from genrekit.serve.server import serving

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "web_app.png")
    ap.add_argument("--phone", type=Path, help="also write the phone layout here")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    config = ServeConfig(host="127.0.0.1", port=0, workers=1)
    with tempfile.TemporaryDirectory(prefix="genrekit-shot-") as tmp, serving(create_app(config), config) as url:
        audio = song(Path(tmp) / "three-parts.wav")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=a.chromium, args=CHROMIUM_ARGS)
            desktop = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            shoot(desktop.new_page(), url, audio, a.out)
            if a.phone:
                phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                            device_scale_factor=2)  # fmt: skip
                shoot(phone.new_page(), url, audio, a.phone, scroll_to="#timeline-card")
            browser.close()


if __name__ == "__main__":
    main()
