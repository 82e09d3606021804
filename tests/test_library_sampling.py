"""Library tagging analyses a spread of windows in worker processes: what ``genrekit predict FOLDER``
does by default, against ``--full``, ``--processes 1`` (in this process) and a file named alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import GTZAN, SR, csv_rows, labelled_clip, run_cli, write_audio

from genrekit.audio import load_audio


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """Two 2-minute songs, each four GTZAN clips of one genre joined."""
    root = GTZAN / "genres_original"
    if not root.is_dir():
        pytest.skip(f"no GTZAN audio at {GTZAN}")
    folder = tmp_path_factory.mktemp("library") / "Music"
    folder.mkdir()
    for genre in ("classical", "metal"):
        clips = sorted((root / genre).iterdir())[:4]
        sf.write(folder / f"{genre}.flac", np.concatenate([load_audio(c, sr=SR) for c in clips]), SR)
    return folder


def _rows(path: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in json.loads(path.read_text())}


@pytest.mark.slow
def test_a_folder_is_tagged_from_spread_windows_and_full_on_request(library, tmp_path):
    assert run_cli(["predict", library, "-o", tmp_path / "sampled.json", "--no-progress"]) == 0
    assert run_cli(["predict", library, "-o", tmp_path / "full.json", "--full", "--no-progress"]) == 0
    sampled, full = _rows(tmp_path / "sampled.json"), _rows(tmp_path / "full.json")
    for name in ("classical.flac", "metal.flac"):
        assert sampled[name]["genre"] == full[name]["genre"] == name.split(".")[0]
        assert full[name]["analysed"].startswith("all ")
        assert sampled[name]["analysed"].startswith("4 of "), sampled[name]["analysed"]
        assert sampled[name]["duration_s"] == pytest.approx(full[name]["duration_s"], abs=0.1)
    # a file named alone keeps every window (its timeline is whole)
    assert run_cli(["predict", library / "metal.flac", "-o", tmp_path / "one.json", "--no-progress"]) == 0
    assert _rows(tmp_path / "one.json")["metal.flac"]["analysed"].startswith("all ")


@pytest.mark.slow
def test_worker_processes_give_the_rows_of_threads(library, tmp_path):
    (library.parent / "notes").mkdir(exist_ok=True)
    broken = library.parent / "notes" / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    short = write_audio(library.parent / "notes" / "short.flac", labelled_clip("bass", 0, 8.0))
    inputs = [library, broken, short]  # three files to tag: more than a job kept in this process
    threads = ["--processes", "1", "--workers", "2"]
    assert run_cli(["predict", *inputs, "-o", tmp_path / "threads.csv", *threads, "--no-progress"]) == 1  # one fails
    assert run_cli(["predict", *inputs, "-o", tmp_path / "procs.csv", "--no-progress"]) == 1  # the default: processes
    threads, procs = csv_rows(tmp_path / "threads.csv"), csv_rows(tmp_path / "procs.csv")
    assert [r["path"] for r in threads] == [r["path"] for r in procs]
    for t, p in zip(threads, procs):
        assert (t["genre"], t["analysed"], bool(t["error"])) == (p["genre"], p["analysed"], bool(p["error"]))
        assert t["probability"] == pytest.approx(p["probability"]) if t["probability"] else True
