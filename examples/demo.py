"""genrekit demo: what the bundled model does with audio, in under a minute.

With the GTZAN audio at --data, a few real clips (read in place, never copied) and one "song" joined
from two clips of different genres, shown with its timeline; beside them a few generated signals
(silence, a tone, noise) that are not music and must say so. Without the data, only the generated
signals (the timeline then is of a generated signal, and its genres mean nothing).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from genrekit.audio import load_audio
from genrekit.datasets import load_dataset
from genrekit.predictor import Predictor
from genrekit.tagging.local import run_library

SR = 22050
DEMO_GENRES = ("classical", "jazz", "metal", "reggae")
SONG_GENRES = ("classical", "metal")  # the joined song: its timeline changes genre halfway


def generated_signals(folder: Path) -> list[Path]:
    """Signals that are not music: each must read "no music detected" or be flagged unsure."""
    t = np.arange(10 * SR) / SR
    rng = np.random.default_rng(0)
    signals = {
        "silence.wav": np.zeros_like(t),
        "tone-440hz.flac": 0.3 * np.sin(2 * np.pi * 440 * t),
        "white-noise.wav": 0.2 * rng.standard_normal(len(t)),
    }
    for name, y in signals.items():
        sf.write(folder / name, y.astype(np.float32), SR)
    return [folder / n for n in signals]


def generated_song(folder: Path) -> Path:
    """30 s of chords, then 30 s of noisy drums: a timeline with two parts."""
    t = np.arange(30 * SR) / SR
    chords = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) * np.exp(-1.5 * (t % 2.0))
    drums = np.random.default_rng(1).standard_normal(len(t)) * np.exp(-25 * (t % 0.5)) + np.sin(2 * np.pi * 55 * t)
    y = np.concatenate([chords / 3, drums / 2]) * 0.4
    sf.write(folder / "generated-song.wav", y.astype(np.float32), SR)
    return folder / "generated-song.wav"


def joined_song(first: Path, second: Path, folder: Path) -> Path:
    """Two GTZAN clips back to back, as one 60-s file."""
    y = np.concatenate([load_audio(first, sr=SR), load_audio(second, sr=SR)])
    out = folder / f"{first.stem}+{second.stem}.wav"
    sf.write(out, y, SR)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="../shared/data/gtzan", help="the GTZAN root (genres_original/ inside)")
    a = p.parse_args()
    predictor = Predictor.load()
    print(
        f"genrekit demo — bundled model {predictor.name} ({len(predictor.labels)} genres: "
        f"{', '.join(predictor.labels)}), on {predictor.runtime}"
    )
    accuracy = predictor.info.get("accuracy", {})
    for k, v in accuracy.items():
        if isinstance(v, float):
            print(f"  measured, {k}: {v:.3f}")
    data = Path(a.data)
    with tempfile.TemporaryDirectory(prefix="genrekit-demo-") as tmp:
        folder = Path(tmp)
        if (data / "genres_original").is_dir():
            first = {}
            for t in load_dataset(data, input_kind="audio"):
                first.setdefault(t.label, t)
            clips = [first[g] for g in DEMO_GENRES if g in first]
            seen = sum(t.id in predictor.seen_ids for t in clips)
            print(
                f"\n1. {len(clips)} GTZAN clips from {data} (the file names give the true genre; {seen} of them "
                "were in the model's training data, so this shows the output, not the accuracy):\n"
            )
            run_library([t.path for t in clips], progress=False)
            song = joined_song(first[SONG_GENRES[0]].path, first[SONG_GENRES[1]].path, folder)
            what = f"two GTZAN clips joined ({' then '.join(SONG_GENRES)})"
        else:
            print(
                f"\n(GTZAN audio not found at {data}: give it with 'make demo DATA=/path/to/gtzan'; "
                "generated signals only)"
            )
            song = generated_song(folder)
            what = "a generated signal: chords, then drums (its genres mean nothing)"
        print("\n2. Signals that are not music:\n")
        run_library(generated_signals(folder), progress=False)
        print(f"\n3. The timeline of one song, {what}:\n")
        run_library([song], timeline=True, progress=False)
    print(
        "\nNext, your own music:\n"
        "  .venv/bin/genrekit predict ~/Music -o tags.csv    # a whole library, resumable (also .json, .jsonl)\n"
        "  .venv/bin/genrekit predict song.mp3 --timeline    # one song, genre by genre\n"
        "  .venv/bin/genrekit serve                          # http://127.0.0.1:8000: play a song, see its genre live",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
