"""Analysing a song from k spread patches: the same windows as the full analysis, decoded alone, more
of them in stages while the top genre is not settled."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SR, labelled_clip, write_audio

from genrekit.errors import GenrekitError
from genrekit.escalation import Escalation
from genrekit.predictor import Predictor
from genrekit.sampling import full_windows, settled, spread


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
    part = predictor.predict_file(song, patches=4, escalation=None)
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


@pytest.mark.parametrize("n, k", [(60, 4), (61, 4), (59, 12), (14, 4), (100, 3), (37, 5)])
def test_the_windows_of_a_stage_are_among_those_of_the_next(n, k):
    assert set(spread(n, k)) <= set(spread(n, 3 * k))


def _windows(rng, m: int, genre: int, strength: float, genres: int = 10) -> np.ndarray:
    """``m`` windows' probabilities leaning ``strength`` towards ``genre``, the rest noise."""
    raw = rng.dirichlet(np.ones(genres), size=m)
    raw[:, genre] += strength
    return raw / raw.sum(axis=1, keepdims=True)


def test_every_window_is_settled_and_one_is_not():
    rng = np.random.default_rng(0)
    close = np.tile([[0.5, 0.5], [0.5, 0.5]], (3, 1))
    assert settled(close, n=6, z=3) and settled(close[:1], n=6, z=0) is False
    assert settled(_windows(rng, 1, 0, 5.0), n=60, z=3) is False


def test_a_song_of_one_genre_is_settled_at_the_first_stage():
    rng = np.random.default_rng(1)
    for _ in range(20):
        assert settled(_windows(rng, 4, 3, 2.0), n=60, z=3)


def test_a_close_race_is_never_settled_before_every_window():
    rng = np.random.default_rng(2)
    for m in (4, 12, 36, 59):
        # half the windows one genre, half another: the leads cancel, their spread is large
        half = [_windows(rng, m // 2, 0, 3.0), _windows(rng, m - m // 2, 1, 3.0)]
        assert not settled(np.concatenate(half), n=60, z=2)


def test_a_close_race_skips_the_stages_it_would_not_settle_at():
    rng = np.random.default_rng(4)
    race = np.concatenate([_windows(rng, 2, 0, 3.0), _windows(rng, 2, 1, 3.0)])
    assert not any(settled(race, n=60, z=2, m=m) for m in (4, 12, 36)) and settled(race, n=60, z=2, m=60)


def test_more_windows_of_the_same_lead_are_never_less_settled():
    rng = np.random.default_rng(5)
    for _ in range(50):
        w = np.concatenate([_windows(rng, 3, 0, 1.0), _windows(rng, 1, 1, 1.0)])
        assert [settled(w, n=60, z=2, m=m) for m in (4, 12, 36, 60)] == sorted(
            settled(w, n=60, z=2, m=m) for m in (4, 12, 36, 60)
        )


def test_a_larger_z_is_never_settled_more_often():
    rng = np.random.default_rng(3)
    for _ in range(50):
        w = np.concatenate([_windows(rng, 3, 0, 1.0), _windows(rng, 3, 1, 0.7)])
        assert settled(w, n=60, z=3) <= settled(w, n=60, z=2) <= settled(w, n=60, z=0)


@pytest.mark.slow
def test_the_stages_analyse_full_analysis_windows_until_settled(predictor, song):
    full = predictor.predict_file(song)
    windows = {round(s.start_s, 3): s.probabilities for s in full.timeline}
    never = predictor.predict_file(song, patches=4, escalation=Escalation(z=1e9))  # never settled: every window
    assert never.sampled is None and never.probabilities == pytest.approx(full.probabilities, abs=1e-6)
    assert predictor.predict_file(song, patches=4, escalation=Escalation(z=0)).sampled == (4, 14)
    for z in (1.0, 3.0):
        part = predictor.predict_file(song, patches=4, escalation=Escalation(z=z))
        if part.sampled is None:
            continue
        assert part.sampled[0] in (4, 12)  # a stage, or every window
        mean = {g: np.mean([windows[round(s.start_s, 3)][g] for s in part.timeline]) for g in part.probabilities}
        assert part.probabilities == pytest.approx(mean, abs=1e-4)


def test_a_song_going_whole_embeds_only_the_patches_its_stages_did_not(predictor, song, monkeypatch):
    from genrekit.features.musicnn import MusicnnStream

    ran: list[tuple[int, int]] = []  # (patches seen, patches the backbone ran on) of each whole analysis
    finish = MusicnnStream.finish

    def recorded(self):
        out = finish(self)
        ran.append((self.patches, self.embedded))
        return out

    monkeypatch.setattr(MusicnnStream, "finish", recorded)
    full = predictor.predict_file(song)
    whole = predictor.predict_file(song, patches=4, escalation=Escalation(z=1e9))  # never settled
    assert whole.sampled is None and whole.analysed == full.analysed
    assert whole.probabilities == pytest.approx(full.probabilities, abs=1e-6)
    assert [s.probabilities for s in whole.timeline] == [
        pytest.approx(s.probabilities, abs=1e-6) for s in full.timeline
    ]
    (seen, embedded_full), (seen_whole, embedded_whole) = ran
    assert seen == seen_whole == embedded_full and embedded_whole == seen - 4


def test_an_escalation_grows_at_least_twofold():
    with pytest.raises(GenrekitError, match="at least twofold"):
        Escalation(growth=1)


@pytest.mark.slow
def test_as_many_patches_as_windows_is_the_full_analysis(predictor, song):
    assert predictor.predict_file(song, patches=100).sampled is None


def test_a_clip_with_no_stage_between_k_and_all_is_analysed_whole(predictor, song, tmp_path):
    """A 30-s clip has 10 windows, fewer than the 12 of the second stage at k = 4: it is analysed as
    a file named alone is, so a folder run reports the same (calibrated) probabilities."""
    parts = [labelled_clip(label, i, 5.0) for i, label in enumerate(["bass", "hiss", "treble"] * 2)]
    clip = write_audio(tmp_path / "clip.flac", np.concatenate(parts)[: 30 * SR])
    whole = predictor.predict_file(clip)
    sampled = predictor.predict_file(clip, patches=4)
    assert sampled.sampled is None and whole.sampled is None
    assert sampled.probabilities == pytest.approx(whole.probabilities, abs=1e-6)
    # without escalation there is no second stage: the k windows are all it analyses
    assert predictor.predict_file(clip, patches=4, escalation=None).sampled == (4, 10)
    # a longer song keeps its stages
    assert predictor.predict_file(song, patches=4).sampled is not None


def test_silence_sampled_is_no_music(predictor, tmp_path):
    path = write_audio(tmp_path / "silence.flac", np.zeros(30 * SR, np.float32))
    result = predictor.predict_file(path, patches=3, escalation=None)
    assert result.sampled == (3, 10) and result.no_music is not None and result.genre is None
    # no genre to settle: the first stage is enough
    assert predictor.predict_file(path, patches=3).sampled == (3, 10)


def test_patches_below_one_are_refused(predictor, song):
    with pytest.raises(GenrekitError, match="patches must be at least 1"):
        predictor.predict_file(song, patches=0)
