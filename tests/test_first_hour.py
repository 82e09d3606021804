"""A new user's first hour, as they would live it: ``make demo`` with and without the data, ``genrekit
predict FOLDER`` on a real-looking music folder with only the base install, and the wheel installed
without torch.

These run the real commands in child processes (make, the console script, a fresh virtual
environment), so they are slow.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import ALL_FORMATS, GTZAN, SR, csv_rows, pyav_can_encode, write_audio
from test_runtime import BLOCK_TRAIN_MODULES

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _make_demo(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "demo", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def _check_demo(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    text = out.stdout
    assert "bundled model musicnn-gtzan" in text and "blues, classical, country" in text  # the genres, named
    # the signals that are not music say so, with no genre
    silence = text.split("silence.wav")[1].splitlines()[1]
    assert silence.strip().startswith("no music detected: silence"), silence
    noise = text.split("white-noise.wav")[1].splitlines()[1]
    assert noise.strip().startswith("no music detected: noise"), noise
    # one timeline, as runs m:ss–m:ss genre, covering the song
    timeline = [line.strip() for line in text.split("3. The timeline")[1].splitlines() if "–" in line]
    assert timeline and timeline[0].startswith("0:00–") and timeline[-1].split("  ")[0].endswith("–1:00"), timeline
    # where to go next
    assert "genrekit predict ~/Music" in text and "genrekit serve" in text
    return text


def test_make_demo_with_the_data():
    if not (GTZAN / "genres_original").is_dir():
        pytest.skip(f"no GTZAN audio at {GTZAN}")
    text = _check_demo(_make_demo(f"DATA={GTZAN}"))
    assert "GTZAN clips from" in text and "classical.00000.ogg" in text and "metal.00000.ogg" in text
    # the joined song is classical, then metal: its timeline says so
    runs = [line.split("  ")[-1] for line in text.split("3. The timeline")[1].splitlines() if "–" in line]
    assert runs[0] == "classical" and runs[-1] == "metal", runs


def test_make_demo_without_the_data(tmp_path):
    text = _check_demo(_make_demo(f"DATA={tmp_path / 'nothing here'}"))
    assert "GTZAN audio not found" in text and "make demo DATA=" in text


# the training extras blocked (as in test_runtime), then the command line
BLOCKED_CLI = BLOCK_TRAIN_MODULES + "from genrekit.cli import main\nmain(sys.argv[1:])\n"


def _music(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    notes = rng.uniform(110, 880, size=int(seconds * 4) + 1)[(t * 4).astype(int)]
    y = np.sin(2 * np.pi * notes * t) * np.exp(-4 * (t % 0.25)) + 0.05 * rng.standard_normal(t.size)
    return (0.3 * y).astype(np.float32)


def test_predict_a_real_music_folder_with_the_base_install_only(tmp_path):
    """Covers, booklets, cue sheets and playlists lie beside the audio: only the audio is tagged,
    without torch, librosa, matplotlib or Pillow (the PNGs are read by their header only)."""
    from PIL import Image  # here, in the test: the child process below has no Pillow

    album = tmp_path / "Music" / "Artist - Album"
    album.mkdir(parents=True)
    formats = [ext for ext in ALL_FORMATS if ext not in {"m4a", "aac", "opus", "wma"} or pyav_can_encode(ext) is None]
    for i, ext in enumerate(formats):
        write_audio(album / f"{i + 1:02d} - Track.{ext}", _music(4.0, seed=i))
    Image.new("RGB", (500, 500), (200, 30, 30)).save(album / "cover.png")
    Image.new("RGB", (432, 288), (0, 0, 0)).save(album / "kaggle-sized.png")  # the geometry of a GTZAN image
    (album / "folder.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (album / "album.cue").write_text('FILE "01 - Track.wav" WAVE\n  TRACK 01 AUDIO\n    INDEX 01 00:00:00\n')
    (album / "notes.txt").write_text("liner notes\n")
    (album / "playlist.m3u").write_text("01 - Track.wav\n")
    out = tmp_path / "tags.csv"
    # the block in every Python started, the tagging worker processes too
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK_TRAIN_MODULES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT / "src")])}
    run = subprocess.run(
        [sys.executable, "-c", BLOCKED_CLI, "predict", str(tmp_path / "Music"), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "needs" not in run.stderr and "Traceback" not in run.stderr
    rows = {Path(r["path"]).name: r for r in csv_rows(out)}
    assert sorted(rows) == sorted(f"{i + 1:02d} - Track.{ext}" for i, ext in enumerate(formats))
    assert all(r["error"] == "" and r["label"] for r in rows.values()), rows


def test_the_wheel_installs_without_torch_and_predicts(tmp_path):
    """``pip install dist/genrekit-*.whl`` in a fresh environment: no torch, and ``genrekit predict`` works."""
    dist, venv, clone = tmp_path / "dist", tmp_path / "venv", tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, map(os.fsdecode, tracked)):  # a clone of the committed files: the build writes there
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, clone / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(clone)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("genrekit-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if install.returncode != 0 and "No matching distribution" in install.stderr + install.stdout:
        pytest.skip(f"the package registry cannot be reached: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.stdout.strip() == "None", "torch came with the wheel"
    song = write_audio(tmp_path / "song.flac", _music(6.0, seed=3))
    run = subprocess.run(
        [str(venv / "bin" / "genrekit"), "predict", str(song), "-o", str(tmp_path / "tags.json")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    row = json.loads((tmp_path / "tags.json").read_text())[0]
    assert row["path"] == str(song) and row["label"] and row["error"] is None


def _readme_use_commands() -> list[list[str]]:
    """The ``genrekit`` commands of the README's "Use" section's shell blocks, split into words."""
    use = (ROOT / "README.md").read_text().split("## Use", 1)[1].split("\n## ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in use.split("```sh")[1:]]
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line.split()[1:] for line in lines if line.startswith(("genrekit ", ".venv/bin/genrekit "))]


def test_each_command_the_readme_shows_runs_as_shown(tmp_path, gtzan_root):
    """The README's commands, run with the console script in a folder holding the files they name."""
    from genrekit.audio import load_audio

    home, genrekit = tmp_path / "home", ROOT / ".venv" / "bin" / "genrekit"
    if not genrekit.exists():
        pytest.skip(f"no console script at {genrekit}: run 'make setup'")
    for name, seed in (("song.mp3", 1), ("a.flac", 2), ("b.m4a", 3), ("clip.wav", 4)):
        write_audio(tmp_path / name, _music(8.0, seed=seed))
    # real music in the library that `tag --write` tags: synthetic notes lie outside what the bundled
    # model knows, so it is unsure of them and writes no genre (and no journal)
    for i, genre in enumerate(("classical", "jazz", "metal")):
        clip = next((gtzan_root / "genres_original" / genre).glob(f"{genre}.00000.*"))
        write_audio(home / "Music" / f"album/{i:02d}.ogg", load_audio(clip, sr=SR)[: 5 * SR])
    commands = _readme_use_commands()
    assert [c[0] for c in commands] == ["tag"] * 7 + ["predict"] * 5 + ["serve", "models", "render"]
    (tmp_path / "names.txt").write_text("hiphop = Hip Hop\n")
    env = {k: v for k, v in os.environ.items() if k != "GENREKIT_CACHE"}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT / "src"))
    for words in commands:
        words = [str(home / "Music") if w == "~/Music" else w for w in words]
        if "--undo" in words:  # the journal the README names by its pattern: the last one written
            journals = sorted((home / ".cache" / "genrekit" / "journals").glob("tag-*.jsonl"))
            assert journals, "no journal was written"
            words[words.index("--undo") + 1] = str(journals[-1])
        if words[0] == "serve":  # it runs until stopped: start it on a free port, ask it, stop it
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            proc = subprocess.Popen(
                [str(genrekit), *words, "--port", str(port), "--workers", "1"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline, health = time.monotonic() + 120, None
                while health is None and time.monotonic() < deadline and proc.poll() is None:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                            health = json.loads(r.read())
                    except OSError:
                        time.sleep(0.5)
                assert health and health["status"] == "ok", proc.poll()
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            continue
        run = subprocess.run(
            [str(genrekit), *words], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert run.returncode == 0, (words, run.stderr)
        assert "Traceback" not in run.stderr, words
    assert len(csv_rows(tmp_path / "tags.csv")) == 3
    assert len(json.loads((tmp_path / "tags.json").read_text())) == 2
    assert (tmp_path / "clip.png").stat().st_size > 0
    assert sorted(p.name for p in (home / "Music").glob("*.m3u8"))  # the playlists the README asks for
