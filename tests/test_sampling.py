"""Analysing a song from k spread patches: the same windows as the full analysis, decoded alone."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SR, labelled_clip, write_audio

from genrekit.errors import GenrekitError
from genrekit.predictor import Predictor
from genrekit.presence import PresenceConfig
from genrekit.sampling import full_windows, spread


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(threads=1)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """40 s of three alternating synthetic sounds, as an MP3."""
    parts = [labelled_clip(label, i, 5.0) for i, label in enumerate(["bass", "hiss", "treble"] * 3)]
    y = np.concatenate(parts)[: 40 * SR]
    return write_audio(tmp_path_factory.mktemp("song") / "song.mp3", np.stack([y, 0.5 * y], 1))


@pytest.mark.parametrize("n, k", [(60, 8), (60, 16), (13, 4), (5, 5), (7, 3)])
def test_spread_takes_k_distinct_indices_over_the_whole_range(n, k):
    idx = spread(n, k)
    assert len(idx) == k and idx == sorted(set(idx)) and 0 <= idx[0] and idx[-1] < n
    assert idx[0] < n / k and idx[-1] >= n - n / k  # one in the first part, one in the last


def test_sampled_windows_are_the_full_analysis_windows(predictor, song):
    full = predictor.predict_file(song)
    part = predictor.predict_file(song, patches=4, unsure_in_full=False)
    assert full.sampled is None and part.sampled == (4, len(full.timeline))
    assert part.analysed == f"4 of {len(full.timeline)} windows" and full.analysed.startswith("all ")
    windows = {round(s.start_s, 3): s.probabilities for s in full.timeline}
    for seg in part.timeline:
        expected = windows[round(seg.start_s, 3)]
        assert max(abs(expected[g] - p) for g, p in seg.probabilities.items()) < 1e-4
    mean = {g: np.mean([s.probabilities[g] for s in part.timeline]) for g in part.probabilities}
    assert part.probabilities == pytest.approx(mean, abs=1e-6)
    assert part.duration_s == pytest.approx(full.duration_s, abs=0.05)
    body = part.to_dict()
    assert body["analysed"] == part.analysed and body["timeline"] == [] and len(body["windows"]) == 4
    assert full.to_dict()["timeline"]  # the full analysis keeps its timeline


@pytest.mark.slow
def test_full_windows_counts_the_windows_of_the_full_analysis(predictor, song):
    n_windows = len(predictor.predict_file(song).timeline)
    complete, total = full_windows(40 * 16000, min_tail_frames=predictor.feature_config.min_tail_seconds * 16000 / 256)
    assert total == n_windows and complete <= total


@pytest.mark.slow
def test_an_unsure_sample_is_analysed_whole_unless_asked_not_to(predictor, song):
    never_sure = Predictor(predictor.checkpoint, presence=PresenceConfig(confident=0.9999))
    always_sure = Predictor(predictor.checkpoint, presence=PresenceConfig(confident=0.0))
    assert never_sure.predict_file(song, patches=4).sampled is None
    assert never_sure.predict_file(song, patches=4, unsure_in_full=False).sampled == (4, 14)
    assert always_sure.predict_file(song, patches=4).sampled == (4, 14)


@pytest.mark.slow
def test_as_many_patches_as_windows_is_the_full_analysis(predictor, song):
    assert predictor.predict_file(song, patches=100).sampled is None


def test_silence_sampled_is_no_music(predictor, tmp_path):
    path = write_audio(tmp_path / "silence.flac", np.zeros(30 * SR, np.float32))
    result = predictor.predict_file(path, patches=3, unsure_in_full=False)
    assert result.sampled == (3, 10) and result.no_music is not None and result.genre is None


def test_patches_below_one_are_refused(predictor, song):
    with pytest.raises(GenrekitError, match="patches must be at least 1"):
        predictor.predict_file(song, patches=0)
