"""Decoding: every format to mono float32 at 22050 Hz, resampling, streaming, and clear errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from conftest import ALL_FORMATS, LOSSLESS, SR, dominant_frequency, labelled_clip, noise_band, tone, write_audio

from genrekit.audio import (
    AUDIO_EXTENSIONS,
    SAMPLE_RATE,
    AudioError,
    GenrekitError,
    is_audio_path,
    load_audio,
    stream_audio,
)

# Lossy encoders add priming/padding samples (AAC: 1024 + a partial frame, WMA, Opus pre-skip...).
LOSSY_LENGTH_TOLERANCE_S = 0.15


def _length_tolerance(ext: str) -> int:
    return 0 if ext in LOSSLESS else int(LOSSY_LENGTH_TOLERANCE_S * SR)


def test_default_rate_is_22050():
    assert SAMPLE_RATE == 22050


@pytest.mark.parametrize("ext", ALL_FORMATS)
def test_every_format_decodes_to_mono_float32_at_22050(tmp_path, ext):
    y = tone(440.0, 2.0)
    path = write_audio(tmp_path / f"sine.{ext}", y)
    out = load_audio(path)
    assert out.dtype == np.float32
    assert out.ndim == 1
    assert abs(len(out) - len(y)) <= _length_tolerance(ext)
    assert np.all(np.isfinite(out))
    # the content survives: same pitch, about the same level
    assert dominant_frequency(out, SR) == pytest.approx(440.0, abs=2.0)
    rms = np.sqrt(np.mean(out[SR // 4 : -SR // 4] ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.15)


@pytest.mark.parametrize("ext", sorted(LOSSLESS))
def test_lossless_formats_decode_samples_exactly(tmp_path, ext):
    y = noise_band(100, 8000, 1.0, amp=0.2, seed=3)
    path = write_audio(tmp_path / f"noise.{ext}", y)
    out = load_audio(path)
    assert len(out) == len(y)
    np.testing.assert_allclose(out, y, atol=1.0 / 32768 + 1e-7)  # 16-bit quantisation


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_float_stereo_is_downmixed_to_the_channel_mean(tmp_path, ext):
    left, right = tone(440.0, 1.0), tone(1250.0, 1.0, amp=0.3)
    subtype = "FLOAT" if ext == "wav" else "PCM_24"
    path = write_audio(tmp_path / f"stereo.{ext}", np.stack([left, right], axis=1), subtype=subtype)
    out = load_audio(path)
    assert out.ndim == 1 and out.dtype == np.float32
    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-6 if ext == "wav" else 1e-5)


@pytest.mark.parametrize("ext", ["ogg", "mp3", "opus", "m4a", "aac", "wma"])
def test_lossy_stereo_is_the_channel_mean(tmp_path, ext):
    """A stereo file with the same sine in both channels decodes to that sine, level included."""
    y = tone(660.0, 2.0, amp=0.5)
    out = load_audio(write_audio(tmp_path / f"stereo.{ext}", np.stack([y, y], axis=1)))
    assert out.ndim == 1
    assert dominant_frequency(out, SR) == pytest.approx(660.0, abs=2.0)
    peak = np.abs(out[SR // 4 : -SR // 4]).max()
    assert peak == pytest.approx(0.5, rel=0.1)


@pytest.mark.parametrize("orig_sr", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("ext", ["wav", "flac", "m4a"])
def test_other_rates_are_resampled_to_22050(tmp_path, orig_sr, ext):
    seconds, freq = 2.0, 1000.0
    if ext == "m4a" and orig_sr == 8000:
        freq = 700.0  # AAC at 8 kHz low-passes hard
    path = write_audio(tmp_path / f"sine{orig_sr}.{ext}", tone(freq, seconds, sr=orig_sr), sr=orig_sr)
    out = load_audio(path)
    tol = 2 if ext in LOSSLESS else int(LOSSY_LENGTH_TOLERANCE_S * SR)
    assert abs(len(out) - seconds * SR) <= tol
    assert dominant_frequency(out, SR) == pytest.approx(freq, abs=2.0)


@pytest.mark.parametrize("target_sr", [16000, 22050, 44100])
def test_load_at_another_target_rate(tmp_path, target_sr):
    path = write_audio(tmp_path / "sine.wav", tone(1000.0, 1.5))
    out = load_audio(path, sr=target_sr)
    assert abs(len(out) - 1.5 * target_sr) <= 2
    assert dominant_frequency(out, target_sr) == pytest.approx(1000.0, abs=2.0)


@pytest.mark.parametrize("ext,orig_sr", [("wav", 22050), ("wav", 44100), ("flac", 16000), ("m4a", 22050)])
@pytest.mark.parametrize("max_seconds", [0.5, 1.0, 2.25])
def test_max_seconds_gives_a_prefix_of_that_length(tmp_path, ext, orig_sr, max_seconds):
    path = write_audio(tmp_path / f"noise.{ext}", noise_band(50, 5000, 3.0, sr=orig_sr, seed=1), sr=orig_sr)
    full = load_audio(path)
    head = load_audio(path, max_seconds=max_seconds)
    assert len(head) == int(round(max_seconds * SR))
    np.testing.assert_array_equal(head, full[: len(head)])


def test_max_seconds_longer_than_the_file_gives_the_whole_file(tmp_path):
    path = write_audio(tmp_path / "short.wav", tone(440.0, 1.0))
    np.testing.assert_array_equal(load_audio(path, max_seconds=100.0), load_audio(path))


@pytest.mark.parametrize(
    "ext,orig_sr",
    [("wav", 22050), ("wav", 44100), ("flac", 16000), ("ogg", 22050), ("mp3", 22050), ("mp3", 44100), ("m4a", 48000)],
)
@pytest.mark.parametrize("block_seconds", [0.1, 0.37, 1.0, 30.0])
def test_stream_blocks_concatenate_to_load_audio_exactly(tmp_path, ext, orig_sr, block_seconds):
    path = write_audio(tmp_path / f"noise.{ext}", noise_band(50, 6000, 3.3, sr=orig_sr, seed=2), sr=orig_sr)
    blocks = list(stream_audio(path, block_seconds=block_seconds))
    assert all(b.dtype == np.float32 and b.ndim == 1 and b.size for b in blocks)
    if block_seconds < 1:
        assert len(blocks) > 1
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path))


def test_stream_respects_max_seconds(tmp_path):
    path = write_audio(tmp_path / "noise.wav", noise_band(50, 6000, 3.0, seed=4), sr=44100)
    blocks = list(stream_audio(path, block_seconds=0.3, max_seconds=1.1))
    assert sum(len(b) for b in blocks) == int(round(1.1 * SR))


# ----------------------------------------------------------------------------- MP3: only what decodes
#
# libsndfile's frame count for an MP3 is what the header declares: an estimate, or for a truncated
# file the length it once had. Decoding must return only the samples really decoded, the same ones
# every time, whatever runs in other threads.

MP3_CUTS = (0.1, 0.5)


def _overdeclared(data: bytes, extra_frames: int) -> bytes:
    """``data`` with its Xing header declaring ``extra_frames`` more MPEG frames than it holds."""
    at = data.find(b"Xing")
    assert at >= 0 and data[at + 7] & 1, "the encoder wrote no Xing frame count"
    count = int.from_bytes(data[at + 8 : at + 12], "big")
    return data[: at + 8] + (count + extra_frames).to_bytes(4, "big") + data[at + 12 :]


@pytest.fixture(scope="module")
def mp3s(tmp_path_factory) -> dict:
    """name -> path: three whole MP3s (20-30 s, mono at 22050 Hz and stereo at 44100 Hz), copies cut
    at 10 % and 50 % of their bytes, and a whole one whose header declares more than it holds."""
    root = tmp_path_factory.mktemp("mp3")
    stereo = np.stack([noise_band(50, 8000, 24.0, sr=44100, seed=12), noise_band(50, 8000, 24.0, sr=44100, seed=13)], 1)
    files = {
        "noise": write_audio(root / "noise.mp3", noise_band(50, 8000, 30.0, seed=11)),
        "bass": write_audio(root / "bass.mp3", labelled_clip("bass", 1, 20.0)),
        "stereo44k": write_audio(root / "stereo44k.mp3", stereo, sr=44100),
    }
    for name, path in list(files.items()):
        for cut in MP3_CUTS:
            data = path.read_bytes()
            files[f"{name}-cut{cut}"] = root / f"{name}-cut{cut}.mp3"
            files[f"{name}-cut{cut}"].write_bytes(data[: int(len(data) * cut)])
    files["overdeclared"] = root / "overdeclared.mp3"
    files["overdeclared"].write_bytes(_overdeclared(files["noise"].read_bytes(), 5))
    return files


def _libsndfile_decode(path) -> tuple[np.ndarray, int]:
    """(channel mean of every frame libsndfile decodes, frames the header declares)."""
    with sf.SoundFile(str(path)) as f:
        data = f.read(dtype="float32", always_2d=True)  # one read: soundfile trims it to what was decoded
        assert len(f.read(1024)) == 0, "libsndfile decodes more after the first read"
        return data.mean(axis=1), f.frames


@pytest.mark.parametrize(
    "name", ["overdeclared", *(f"{n}-cut{c}" for n in ("noise", "bass", "stereo44k") for c in MP3_CUTS)]
)
def test_mp3_decodes_only_the_frames_it_holds(mp3s, name):
    """A truncated or over-declared MP3 gives the frames it holds: never the declared length, never padding."""
    decoded, declared = _libsndfile_decode(mp3s[name])
    assert len(decoded) < declared  # the header promises more: the case under test
    out = load_audio(mp3s[name])
    assert np.all(np.isfinite(out))
    if name.startswith("stereo44k"):
        assert abs(len(out) - len(decoded) * SR / 44100) <= 1
    else:
        assert len(out) == len(decoded)
        np.testing.assert_array_equal(out, decoded)


@pytest.mark.parametrize("name", ["noise", "bass", "stereo44k"])
@pytest.mark.parametrize("cut", MP3_CUTS)
def test_truncated_mp3_is_a_prefix_of_the_whole_one(mp3s, name, cut):
    """Cut at ``cut`` of its bytes, an MP3 decodes to about that share of the song: the same samples."""
    whole, part = load_audio(mp3s[name]), load_audio(mp3s[f"{name}-cut{cut}"])
    assert 0.5 * cut * len(whole) < len(part) <= cut * len(whole) + 1152  # at most what the bytes hold
    edge = 256 if name == "stereo44k" else 0  # the resampler ends a truncated stream with its own tail
    np.testing.assert_allclose(part[: len(part) - edge], whole[: len(part) - edge], atol=1e-5)


def test_overdeclared_mp3_decodes_the_whole_song(mp3s):
    whole, over = load_audio(mp3s["noise"]), load_audio(mp3s["overdeclared"])
    np.testing.assert_array_equal(over[: len(whole)], whole)
    assert len(over) - len(whole) < 1152  # the encoder's end padding, no longer known to be padding


@pytest.mark.parametrize("block_seconds", [0.37, 2.0])
def test_mp3_blocks_are_the_samples_of_one_read(mp3s, block_seconds):
    """Block-wise decoding gives exactly the samples of one read of the whole file (no seek inside it)."""
    for name in ("noise", "bass", "noise-cut0.5", "overdeclared"):
        blocks = list(stream_audio(mp3s[name], block_seconds=block_seconds))
        assert len(blocks) > 1
        np.testing.assert_array_equal(np.concatenate(blocks), _libsndfile_decode(mp3s[name])[0], err_msg=name)


def test_mp3_decodes_in_parallel_threads_are_identical(mp3s):
    """Eight threads decoding all the MP3s at once, 12 times each: every decode is bit-identical to the
    file's own decode, finite, and the frames it holds (one user's audio never leaks into another's)."""
    expected = {}
    for name, path in mp3s.items():
        decoded = _libsndfile_decode(path)[0]
        expected[name] = load_audio(path) if name.startswith("stereo44k") else decoded
    names = [name for _ in range(12) for name in mp3s]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda name: load_audio(mp3s[name]), names))
    for name, out in zip(names, results):
        assert np.all(np.isfinite(out)), name
        np.testing.assert_array_equal(out, expected[name], err_msg=name)


# ----------------------------------------------------------------------------- errors


def _assert_audio_error(path, match: str | None = None) -> AudioError:
    with pytest.raises(AudioError) as info:
        load_audio(path)
    err = info.value
    assert isinstance(err, GenrekitError)
    assert str(path) in str(err), "the message must name the file"
    assert err.path == str(path)
    assert err.reason
    if match:
        assert match in str(err)
    # streaming fails the same way (at the latest when the blocks are consumed)
    with pytest.raises(AudioError):
        list(stream_audio(path))
    return err


def test_missing_file(tmp_path):
    _assert_audio_error(tmp_path / "missing.wav", "no such file")


def test_directory(tmp_path):
    d = tmp_path / "folder.wav"
    d.mkdir()
    _assert_audio_error(d, "folder")


@pytest.mark.parametrize("ext", ["wav", "mp3", "m4a"])
def test_empty_file(tmp_path, ext):
    p = tmp_path / f"empty.{ext}"
    p.write_bytes(b"")
    _assert_audio_error(p, "empty")


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg", "m4a", "aac", "opus", "wma"])
def test_text_with_an_audio_extension(tmp_path, ext):
    p = tmp_path / f"notes.{ext}"
    p.write_text("this is a shopping list, not a song\n" * 40)
    _assert_audio_error(p)


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg", "m4a", "aac", "opus", "wma"])
def test_random_bytes_with_an_audio_extension(tmp_path, ext):
    p = tmp_path / f"garbage.{ext}"
    p.write_bytes(np.random.default_rng(0).bytes(6000))
    _assert_audio_error(p)


@pytest.mark.parametrize("content", [b"this is not audio\n" * 40, bytes(range(256)) * 20])
def test_non_audio_with_au_extension(tmp_path, content):
    p = tmp_path / "notes.au"
    p.write_bytes(content)
    _assert_audio_error(p)


@pytest.mark.parametrize("ext,fraction", [("flac", 0.01), ("wav", None), ("m4a", 0.02), ("m4a", 0.5), ("ogg", 0.02)])
def test_file_truncated_before_any_audio(tmp_path, ext, fraction):
    """Cut inside its header, or (an M4A written index-last) before its index: nothing decodes."""
    full = write_audio(tmp_path / f"full.{ext}", noise_band(50, 6000, 2.0, seed=5))
    data = full.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[:30] if fraction is None else data[: int(len(data) * fraction)])  # None: inside the header
    _assert_audio_error(cut)


def test_wav_cut_inside_its_data_gives_the_intact_prefix(tmp_path):
    """A WAV cut mid-data is read up to the cut (libsndfile's behaviour), never padded or garbled."""
    y = noise_band(50, 6000, 2.0, seed=6)
    full = write_audio(tmp_path / "full.wav", y, subtype="FLOAT")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    out = load_audio(cut)
    assert 0 < len(out) < len(y)
    np.testing.assert_array_equal(out, y[: len(out)])


class _RatelessContainer:
    """A PyAV container whose audio stream declares no sample rate (``rate``)."""

    def __init__(self, container, rate):
        self._container = container
        stream = container.streams.audio[0]
        self.streams = SimpleNamespace(audio=[SimpleNamespace(rate=rate, codec_context=stream.codec_context)])
        self._stream = stream

    def decode(self, stream):
        return self._container.decode(self._stream)

    def close(self):
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._container.close()


@pytest.mark.parametrize("rate", [None, 0])
def test_pyav_file_without_sample_rate(tmp_path, monkeypatch, rate):
    """No sample rate is assumed: the file is refused, with what to do."""
    import av

    path = write_audio(tmp_path / "song.m4a", tone(440.0, 1.0))
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: _RatelessContainer(real_open(*a, **k), rate))
    err = _assert_audio_error(path, "declares no sample rate")
    assert "re-encode" in err.reason


@pytest.mark.parametrize("rate", [0, -1])
def test_libsndfile_file_without_sample_rate(tmp_path, monkeypatch, rate):
    path = write_audio(tmp_path / "song.wav", tone(440.0, 1.0))
    monkeypatch.setattr(sf.SoundFile, "samplerate", property(lambda self: rate))
    err = _assert_audio_error(path, "declares no sample rate")
    assert "re-encode" in err.reason


def test_error_message_is_one_line(tmp_path):
    p = tmp_path / "garbage.wav"
    p.write_bytes(b"\x00\x01" * 100)
    err = _assert_audio_error(p)
    assert "\n" not in str(err)


# ----------------------------------------------------------------------------- is_audio_path


@pytest.mark.parametrize(
    "name", ["a.wav", "b.WAV", "c.Mp3", "d.flac", "e.ogg", "f.au", "g.m4a", "h.aac", "i.opus", "j.wma", "dir.x/k.aiff"]
)
def test_is_audio_path_accepts_audio_extensions(name):
    assert is_audio_path(name)
    assert is_audio_path(f"/some/where/{name}")


@pytest.mark.parametrize("name", ["a.txt", "b.png", "c.csv", "wav", "d.wav.bak", "e.pt", "f", "mp3/readme.md"])
def test_is_audio_path_rejects_other_names(name):
    assert not is_audio_path(name)


def test_every_decodable_test_format_is_an_audio_extension():
    assert {f".{e}" for e in ALL_FORMATS} <= AUDIO_EXTENSIONS


def test_8bit_and_24bit_pcm_are_read_at_full_scale(tmp_path):
    """8-bit unsigned WAV and 24-bit FLAC are read at full scale like any other."""
    y = tone(440.0, 1.0, amp=0.5)
    for name, subtype in [("u8.wav", "PCM_U8"), ("p24.flac", "PCM_24")]:
        p = tmp_path / name
        sf.write(str(p), y, SR, subtype=subtype)
        out = load_audio(p)
        assert np.abs(out).max() == pytest.approx(0.5, abs=0.02)
