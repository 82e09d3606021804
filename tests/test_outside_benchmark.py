"""benchmarks/outside.py: reading the CLI's rows (today's and the flat schema) and the figures it reports."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
outside = pytest.importorskip("outside")


def test_read_row_takes_every_schema():
    probs = {"jazz": 0.7, "rock": 0.2, "pop": 0.1}
    full = {
        "path": "a.ogg",
        "genre": "jazz",
        "confident": True,
        "no_music": None,
        "probabilities": probs,
        "top": [{"genre": g, "probability": p} for g, p in probs.items()],
    }
    flat = {
        "path": "a.ogg",
        "genre": "jazz",
        "probability": 0.7,
        "confident": True,
        "no_music": None,
        "top": [{"genre": g, "probability": p} for g, p in probs.items()],
    }
    with_error_key = {**full, "error": None}  # the CLI's rows name "error" on every row, null when none
    for row in (full, flat, with_error_key):
        r = outside.read_row(row)
        assert r["probabilities"] == probs and r["genre"] == "jazz" and r["confident"] and r["no_music"] is None
    silent = outside.read_row({"path": "s.wav", "genre": None, "confident": False, "no_music": "silence", "top": []})
    assert silent["probabilities"] == {} and silent["genre"] is None and silent["no_music"] == "silence"
    broken = outside.read_row({"path": "b.mp3", "error": "cannot decode"})
    assert broken["genre"] is None and not broken["confident"] and broken["no_music"] == "cannot decode"


def test_measure_counts_recall_confidence_and_unsure(monkeypatch, tmp_path):
    monkeypatch.setattr(outside, "OUTSIDE", tmp_path)
    manifest = [{"path": f"{i}.ogg", "genre": g} for i, g in enumerate(["jazz", "jazz", "rock", "other", "other"])]

    def row(genre, p, confident):
        rest = (1 - p) / 9
        return {
            "genre": genre,
            "confident": confident,
            "no_music": None,
            "probabilities": {g: (p if g == genre else rest) for g in outside.GENRES},
        }

    rows = [
        row("jazz", 0.9, True),
        row("rock", 0.6, True),
        row("rock", 0.8, True),
        row("pop", 0.4, False),
        row("pop", 0.9, True),
    ]
    preds = {str((tmp_path / m["path"]).resolve()): r for m, r in zip(manifest, rows)}
    r = outside.measure(manifest, preds)
    assert r["genres"] == ["jazz", "rock"]
    assert r["per_genre"]["jazz"] == {"n": 2, "right": 1, "recall": 0.5}
    assert r["balanced_accuracy"] == pytest.approx(0.75)  # (1/2 + 1/1) / 2
    assert r["confident_share"] == 1.0 and r["confident_precision"] == pytest.approx(2 / 3)
    assert r["other_unsure_share"] == 0.5
    assert r["confusion_flagged"][-1][-1] == 1  # one `other` clip unsure
    # the ECE of three clips at 0.9 (right), 0.6 (wrong), 0.8 (right), one per bin
    assert r["ece"] == pytest.approx((0.1 + 0.6 + 0.2) / 3)


def test_calibration_bins_cover_every_clip():
    conf = np.array([0.05, 0.55, 0.56, 0.95, 1.0])
    ece, table = outside.calibration(conf, np.array([0, 1, 0, 1, 1], dtype=float))
    assert sum(b["n"] for b in table) == 5 and table[-1]["n"] == 2  # 1.0 falls in the last bin
    assert 0 <= ece <= 1
