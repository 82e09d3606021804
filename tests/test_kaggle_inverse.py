"""The inverse of the Kaggle images (genrekit.features.kaggle_inverse): images rendered from synthetic audio."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SR, dominant_frequency, tone

from genrekit.errors import GenrekitError
from genrekit.features import extract
from genrekit.features import kaggle_inverse as kinv
from genrekit.features.kaggle_image import band_rows, render_matrix
from genrekit.features.logmel import _hz_to_mel, _mel_to_hz
from genrekit.features.musicnn import MusicnnConfig, MusicnnStream, musicnn_mel_stream

SECONDS = 30.0


def image_of(y: np.ndarray) -> np.ndarray:
    """The (128, 334) matrix a Kaggle image of ``y`` (at conftest's SR) shows."""
    return render_matrix(y.astype(np.float32), SR)[band_rows()]


def musicnn_band_centres() -> np.ndarray:
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(8000.0), 96 + 2))
    return edges[1:-1]


def fake_embed(patches: np.ndarray) -> np.ndarray:
    """A stand-in backbone: each patch's mean log-mel per band, padded to the 250 values of the default config."""
    return np.pad(patches.mean(axis=2), ((0, 0), (0, 250 - 96)))


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
def test_a_rendered_tone_lands_in_musicnn_s_band_of_its_frequency(freq):
    power = kinv.musicnn_power(db=image_of(tone(freq, SECONDS)))
    band = int(np.argmax(power.mean(axis=1)))
    assert abs(band - int(np.argmin(np.abs(musicnn_band_centres() - freq)))) <= 1
    y16 = tone(freq, SECONDS, sr=16000)
    stream = musicnn_mel_stream(backend="numpy")
    real = np.concatenate([stream.push(y16), stream.finish()], axis=1)
    assert abs(band - int(np.argmax(real.mean(axis=1)))) <= 1


def test_frames_have_musicnn_s_rate_and_the_clip_is_levelled():
    power = kinv.musicnn_power(db=image_of(tone(440.0, SECONDS)))
    assert power.shape == (96, 1 + int(SECONDS * 16000) // 256)
    assert power.dtype == np.float32
    assert np.isclose(10 * np.log10(power.mean()), kinv.LEVEL_DB, atol=0.01)
    times = kinv.column_times()
    assert times.shape == (334,) and np.all(np.diff(times) > 0)
    assert 0 <= times[0] < 0.2 and 29.8 < times[-1] <= SECONDS


def test_time_is_kept_a_tone_starting_at_15_s_starts_at_frame_of_15_s():
    y = np.concatenate([np.zeros(int(15 * SR), np.float32), tone(1000.0, 15.0)])
    power = kinv.musicnn_power(db=image_of(y))
    loud = power.sum(axis=0) > 0.5 * power.sum(axis=0).max()
    onset_s = np.flatnonzero(loud)[0] * 256 / 16000
    assert abs(onset_s - 15.0) < 0.2
    quiet, loud_part = power[:, : int(14 * 16000 / 256)], power[:, -int(14 * 16000 / 256) :]
    assert quiet.mean() < 1e-3 * loud_part.mean()  # silence stays (nearly) silent: the floor is far down


def test_embeddings_are_one_frame_per_3_s_patch_as_for_audio():
    config = MusicnnConfig()
    feats = kinv.image_embeddings(db=image_of(tone(440.0, SECONDS)), config=config, embed=fake_embed)
    assert feats.shape == (config.n_bins, round(SECONDS * config.frames_per_second))  # 10 patches
    # embed_power patches a mel-power spectrogram as the stream patches the audio's own frames
    y16 = tone(440.0, 10.0, sr=16000)
    stream = musicnn_mel_stream(backend="numpy")
    mel = np.concatenate([stream.push(y16), stream.finish()], axis=1)
    from_power = MusicnnStream(config, embed=fake_embed, backend="numpy").embed_power(mel)
    audio_stream = MusicnnStream(config, embed=fake_embed, backend="numpy")
    from_audio = np.concatenate([audio_stream.push(y16), audio_stream.finish()], axis=1)
    np.testing.assert_allclose(from_power, from_audio, rtol=1e-5, atol=1e-5)


def test_audio_seen_through_its_image_has_the_image_s_embeddings():
    y = tone(440.0, SECONDS)
    a = kinv.audio_image_embeddings(y=y, sr=SR, embed=fake_embed)
    b = kinv.image_embeddings(db=image_of(y), embed=fake_embed)
    np.testing.assert_array_equal(a, b)
    real = extract(MusicnnConfig(), tone(440.0, SECONDS, sr=16000), sr=16000)
    assert a.shape[1] == real.shape[1]


@pytest.mark.parametrize(
    "db, words",
    [
        (np.zeros((216, 334), np.float32), "(128, 334)"),
        (np.zeros((128, 100), np.float32), "got shape (128, 100)"),
        (np.full((128, 334), 3.0, np.float32), "[-80, 0]"),
        (np.full((128, 334), np.nan, np.float32), "[-80, 0]"),
    ],
)
def test_a_bad_image_matrix_gets_one_clear_error(db, words):
    with pytest.raises(GenrekitError, match="Kaggle image matrix") as info:
        kinv.musicnn_power(db=db)
    assert words in str(info.value)


@pytest.mark.slow
def test_griffin_lim_gives_audio_at_the_tone_s_frequency():
    y = kinv.griffin_lim_audio(db=image_of(tone(1000.0, SECONDS)), n_iter=4)
    assert y.shape == (int(SECONDS * 22050),) and y.dtype == np.float32
    assert abs(dominant_frequency(y, 22050) - 1000.0) < 30
