"""Tests for the Kaggle spectrogram image renderer and decoder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from genrekit.features import kaggle_image as ki

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan"
DATA = Path(os.environ.get("GENREKIT_DATA", DEFAULT_DATA))
SR = 22050


def _synthetic(sr: int, seconds: float = 30.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    chirp = np.sin(2 * np.pi * (50 * t + (sr / 2.5 - 50) / (2 * seconds) * t**2))
    pulses = np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0.7)
    noise = np.random.default_rng(seed).normal(scale=0.05, size=t.size)
    return (0.5 * chirp + 0.3 * pulses + noise).astype(np.float32)


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return _synthetic(SR)


@pytest.fixture(scope="module")
def rendered(signal: np.ndarray) -> np.ndarray:
    return ki.render_image(signal, SR)


def test_render_is_deterministic(signal, rendered):
    np.testing.assert_array_equal(ki.render_image(signal, SR), rendered)


def test_render_has_kaggle_geometry(rendered):
    assert rendered.shape == (ki.IMAGE_HEIGHT, ki.IMAGE_WIDTH, 4)
    assert rendered.dtype == np.uint8
    assert (rendered[..., 3] == 255).all()
    rgb = rendered[..., :3]
    assert (rgb[:35] == 255).all() and (rgb[253:] == 255).all()
    assert (rgb[:, :54] == 255).all() and (rgb[:, 390:] == 255).all()
    # 0.8-px spines: near black over the mesh (top, left), 80 % black over white (bottom, right)
    assert (rgb[35, 54:390] <= 51).all() and (rgb[35:253, 54] <= 51).all()
    assert (rgb[252, 55:389] == 51).all() and (rgb[36:252, 389] == 51).all()
    assert ki.decode_image(rendered).shape == ki.BOX_SHAPE


def test_silence_renders_darkest_colour():
    matrix = ki.render_matrix(np.zeros(SR, dtype=np.float32), SR)
    np.testing.assert_array_equal(matrix, np.float32(ki.DB_MIN + ki.DB_STEP / 2))


def test_decoder_inverts_renderer(signal, rendered):
    db = ki._mel_db(signal, SR)
    shown = ki._mesh_pixels(db)[1:, 1:][::-1]
    decoded = ki.decode_image(rendered)
    assert decoded.dtype == np.float32
    assert np.abs(decoded - shown).max() <= ki.DB_STEP / 2 + 1e-4
    assert decoded.min() >= ki.DB_MIN and decoded.max() <= ki.DB_MAX


@pytest.mark.parametrize("sr", [SR, 16000])
def test_render_matrix_equals_decoded_render(sr):
    y = _synthetic(sr, seconds=10.0, seed=sr)
    np.testing.assert_array_equal(ki.render_matrix(y, sr), ki.decode_image(ki.render_image(y, sr)))


def test_decoder_maps_every_lut_colour_and_nearest(rendered):
    lut = ki._magma_lut()[0].astype(np.int32)
    index = np.arange(ki.BOX_SHAPE[0] * ki.BOX_SHAPE[1]).reshape(ki.BOX_SHAPE) % ki.N_COLORS
    box = lut[index]
    box[::7, :, 1] += 1  # off-LUT colours: decode to the nearest entry (brute force here)
    nearest = index.copy()
    nearest[::7] = np.argmin(((box[::7, :, None, :] - lut) ** 2).sum(-1), axis=-1)
    assert (nearest != index).any()
    image = rendered.copy()
    image[ki.BOX_ROWS, ki.BOX_COLS, :3] = box[::-1]
    expected = ki.DB_MIN + (nearest + 0.5) * ki.DB_STEP
    np.testing.assert_allclose(ki.decode_image(image[..., :3]), expected, atol=1e-4)


def test_save_png_round_trip(rendered, tmp_path):
    path = tmp_path / "render.png"
    ki.save_png(rendered, path)
    np.testing.assert_array_equal(ki.decode_image(path), ki.decode_image(rendered))


@pytest.mark.parametrize("shape", [(288, 431, 4), (216, 334, 3), (288, 432)])
def test_decode_rejects_wrong_geometry(shape):
    with pytest.raises(ValueError, match="array"):
        ki.decode_image(np.zeros(shape, dtype=np.uint8))


def test_decode_error_names_the_file(tmp_path):
    path = tmp_path / "small.png"
    Image.new("RGBA", (100, 80)).save(path)
    with pytest.raises(ValueError, match="small.png"):
        ki.decode_image(path)


@pytest.mark.parametrize("clip", ["blues.00000", "metal.00001", "classical.00025"])
def test_real_pair_pixels(clip):
    genre, number = clip.split(".")
    audio = DATA / "genres_original" / genre / f"{clip}.ogg"
    image = DATA / "images_original" / genre / f"{genre}{number}.png"
    if not (audio.exists() and image.exists()):
        pytest.skip(f"GTZAN data not found at {DATA}: {audio.name}, {image.name}")
    y, sr = sf.read(audio, dtype="float32")
    real = np.asarray(Image.open(image).convert("RGBA"))
    rendered = ki.render_image(y, sr)
    box = (ki.BOX_ROWS, ki.BOX_COLS, slice(0, 3))
    mae = np.abs(rendered[box].astype(np.int16) - real[box]).mean()
    assert mae <= 2.0, f"{clip}: MAE {mae:.2f}"


def test_band_rows_cannot_be_changed_by_a_caller():
    from genrekit.features.kaggle_image import band_rows

    rows = band_rows()
    with pytest.raises(ValueError):
        rows[0] = 5  # cached and shared: a caller's write would change every later decode
    assert band_rows()[0] == rows[0] and len(set(band_rows())) == 128
