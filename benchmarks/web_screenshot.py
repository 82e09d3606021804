"""Refresh docs/web_app.png: the web page in headless Chromium, a song playing, with the bundled model.

The picture is taken as ``tests/test_serve_browser.py`` takes it (tests/web_shot.py): the app on a
free loopback port, a 30-s song in three parts uploaded, played to about 3 s, the full page shot.
``--phone`` also writes the phone layout (390x844, scrolled to the timeline) next to it, for a look.

    python benchmarks/web_screenshot.py [--out docs/web_app.png] [--phone PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import web_shot


def main() -> None:
    from playwright.sync_api import sync_playwright

    from genrekit.serve import ServeConfig, create_app
    from genrekit.serve.server import serving

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "web_app.png")
    ap.add_argument("--phone", type=Path, help="also write the phone layout here")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    config = ServeConfig(host="127.0.0.1", port=0, workers=1)  # model=None: the bundled one
    with tempfile.TemporaryDirectory(prefix="genrekit-shot-") as tmp, serving(create_app(config), config) as url:
        audio = web_shot.song(Path(tmp) / "three-parts.wav")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=a.chromium, args=web_shot.CHROMIUM_ARGS)
            print(
                f"wrote {web_shot.picture(browser.new_context(bypass_csp=True, **web_shot.DESKTOP).new_page(), url, audio, a.out)}"
            )
            if a.phone:
                page = browser.new_context(bypass_csp=True, **web_shot.PHONE).new_page()
                print(f"wrote {web_shot.picture(page, url, audio, a.phone, scroll_to='#timeline-card')}")
            browser.close()


if __name__ == "__main__":
    main()
