"""genrekit demo: the bundled model on example audio.

With the GTZAN audio at --data, one real clip per genre is classified (read in place, never
copied); without it, a few generated signals show the output format (their genres mean nothing).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from genrekit.datasets import load_dataset
from genrekit.library import run_library
from genrekit.predictor import Predictor


def generated_examples(folder: Path) -> list[Path]:
    sr, t = 22050, np.arange(30 * 22050) / 22050
    rng = np.random.default_rng(0)
    beat = (np.sin(2 * np.pi * 2 * t) > 0.95) * rng.standard_normal(len(t))
    signals = {
        "tones.wav": 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * t),
        "noise_beat.flac": 0.5 * beat + 0.05 * rng.standard_normal(len(t)),
    }
    for name, y in signals.items():
        sf.write(folder / name, y.astype(np.float32), sr)
    return [folder / n for n in signals]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="../shared/data/gtzan")
    a = p.parse_args()
    predictor = Predictor.load()
    print(f"bundled model: {predictor.name} — {predictor.info.get('trained_on', '')}")
    for k, v in predictor.info.get("accuracy", {}).items():
        print(f"  measured accuracy, {k}: {v:.3f}")
    data = Path(a.data)
    if (data / "genres_original").is_dir():
        tracks = load_dataset(data, input_kind="audio")
        per_genre = {}
        for t in tracks:
            per_genre.setdefault(t.label, t)
        files = [t.path for t in per_genre.values()]
        seen = sum(t.id in predictor.checkpoint.seen_ids for t in per_genre.values())  # the checkpoint's training ids
        print(f"\nOne GTZAN clip per genre from {data} (file names give the true genre; {seen} of these {len(files)}"
              " clips were in the bundled model's training data, so this shows the output, not the accuracy:"
              " see 'genrekit models'):\n")
    else:
        folder = Path(tempfile.mkdtemp(prefix="genrekit-demo-"))
        files = generated_examples(folder)
        print(f"\nGTZAN audio not found at {data}; generated signals in {folder} (their genres mean nothing):\n")
    summary = run_library(files, top_k=3, timeline=False, progress=False)
    print(f"\nTimeline of {Path(files[0]).name}:")
    run_library(files[:1], top_k=3, timeline=True, progress=False)
    print(
        "\nYour own music:\n"
        "  .venv/bin/genrekit predict song.mp3 --timeline\n"
        "  .venv/bin/genrekit predict ~/Music -o tags.csv      # resumable; csv/json with --format\n"
        "  .venv/bin/genrekit serve                            # http://127.0.0.1:8000: play a song, see its genre live"
    )
    if summary.failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
