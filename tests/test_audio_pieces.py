"""Seek-decoding chosen pieces: the same samples as decoding the whole file through, for every format."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SR, labelled_clip, noise_band, slow_except, write_audio

from genrekit import audio_pieces
from genrekit.audio import AudioError, DecodeReport, load_audio, stream_audio
from genrekit.audio_pieces import decode_pieces

# measured: every piece equals the through-decoded samples within 2e-7 (float32 rounding of the
# resampler), lossy codecs included, at every piece edge
TOLERANCE = 1e-5
STARTS = (0.0, 3.3, 7.77, 12.0, 20.5)
SEEKING = ["wav", "flac", "ogg", "mp3", "m4a", "opus"]
STREAMED = ["aac", "wma"]  # ADTS has no index (its duration is a guess); ASF stamps milliseconds


def _song(seconds: float = 24.0, sr: int = SR) -> np.ndarray:
    parts = [labelled_clip(label, i, 4.0, sr=sr) for i, label in enumerate(["bass", "hiss", "treble"] * 2)]
    return (0.8 * np.concatenate(parts))[: int(seconds * sr)]


def _assert_pieces_match(path, sr: int, starts=STARTS, seconds: float = 2.0) -> DecodeReport:
    full, report = load_audio(path, sr=sr), DecodeReport()
    pieces = decode_pieces(path, starts_s=starts, seconds=seconds, sr=sr, report=report)
    assert len(pieces) == len(starts)
    for start, piece in zip(starts, pieces):
        n0 = round(start * sr)
        expected = full[n0 : n0 + round(seconds * sr)]
        assert len(piece) == len(expected), f"piece at {start} s"
        np.testing.assert_allclose(piece, expected, atol=TOLERANCE, err_msg=f"piece at {start} s")
    return report


@pytest.fixture
def no_streaming(monkeypatch):
    """Fail if decode_pieces falls back to decoding the whole file."""

    def refuse(*args, **kwargs):
        raise AssertionError("streamed through instead of seeking")

    monkeypatch.setattr(audio_pieces, "stream_audio", refuse)


@pytest.mark.parametrize("sr", slow_except([16000, SR], 16000))
@pytest.mark.parametrize("ext", slow_except(SEEKING, "mp3", "m4a"))
def test_seeking_formats_give_the_samples_of_the_whole_decode(tmp_path, ext, sr):
    path = write_audio(tmp_path / f"song.{ext}", _song())
    report = _assert_pieces_match(path, sr)
    assert report.declared_s == pytest.approx(24.0, abs=0.05)
    assert not report.truncated


@pytest.mark.parametrize("ext", slow_except(SEEKING, "mp3", "m4a"))
def test_seeking_formats_never_decode_the_whole_file(tmp_path, ext, no_streaming):
    path = write_audio(tmp_path / f"song.{ext}", _song())
    pieces = decode_pieces(path, starts_s=[10.0], seconds=1.0, sr=16000)
    assert len(pieces[0]) == 16000


@pytest.mark.parametrize("ext", slow_except(STREAMED, "aac"))
def test_formats_that_cannot_seek_are_streamed_and_cut(tmp_path, ext):
    path = write_audio(tmp_path / f"song.{ext}", _song())
    _assert_pieces_match(path, 16000)


@pytest.mark.slow
def test_stereo_44k_mp3_to_16k(tmp_path):
    """What real libraries hold: 44.1 kHz stereo MP3, read at the musicnn rate."""
    stereo = np.stack([noise_band(50, 8000, 20.0, sr=44100, seed=1), noise_band(50, 8000, 20.0, sr=44100, seed=2)], 1)
    path = write_audio(tmp_path / "stereo.mp3", stereo, sr=44100)
    _assert_pieces_match(path, 16000, starts=(0.0, 0.01, 5.123, 17.0))


def test_pieces_past_the_end_are_short_or_empty(tmp_path):
    path = write_audio(tmp_path / "song.flac", _song(10.0))
    short, empty = decode_pieces(path, starts_s=[9.0, 30.0], seconds=2.0, sr=SR)
    assert len(short) == SR and len(empty) == 0


def test_a_file_cut_short_is_flagged_truncated_and_its_pieces_are_what_it_holds(tmp_path):
    path = write_audio(tmp_path / "song.mp3", _song(20.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # its Xing header still says 20 s
    report, through = DecodeReport(), DecodeReport()
    pieces = decode_pieces(path, starts_s=[2.0, 15.0], seconds=1.0, sr=SR, report=report)
    list(stream_audio(path, report=through))
    assert report.truncated and through.truncated
    assert report.decoded_s == pytest.approx(through.decoded_s) and 8.0 < report.decoded_s < 10.5
    assert report.declared_s == pytest.approx(20.0, abs=0.05)
    np.testing.assert_allclose(pieces[0], load_audio(path)[2 * SR : 3 * SR], atol=TOLERANCE)
    assert len(pieces[1]) == 0


def test_max_duration_refuses_from_the_header(tmp_path):
    path = write_audio(tmp_path / "song.flac", _song(10.0))
    with pytest.raises(AudioError, match="header says it lasts 0:10"):
        decode_pieces(path, starts_s=[0.0], seconds=1.0, max_duration=5.0)


def test_a_file_that_is_not_audio_gets_one_clear_error(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("not audio at all " * 100)
    with pytest.raises(AudioError, match="notes.mp3"):
        decode_pieces(path, starts_s=[0.0], seconds=1.0)


def test_a_corrupt_m4a_gets_the_error_decoding_through_gives(tmp_path):
    path = write_audio(tmp_path / "song.m4a", _song(6.0))
    data = bytearray(path.read_bytes())
    at = data.find(b"mdat") + 8
    data[at : at + 4000] = bytes(4000)  # the first packets zeroed: the index is intact
    path.write_bytes(bytes(data))
    try:
        expected = load_audio(path, sr=16000)
    except AudioError as exc:
        with pytest.raises(AudioError) as raised:
            decode_pieces(path, starts_s=[0.0], seconds=1.0, sr=16000)
        assert str(raised.value) == str(exc)
    else:
        piece = decode_pieces(path, starts_s=[0.0], seconds=1.0, sr=16000)[0]
        assert len(piece) == min(16000, len(expected))
