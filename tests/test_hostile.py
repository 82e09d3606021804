"""Hostile inputs: header bombs, absurd samples, truncated files, and what decoding does with them.

Every input here is a few kB generated in the test; the standing benchmark
(``benchmarks/hostile.py``) runs a larger corpus through the CLI and the server.
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import noise_band, write_audio

from genrekit.audio import MAX_CHANNELS, MAX_RATE, AudioError, DecodeReport, load_audio, stream_audio


def wav_bytes(*, channels: int, rate: int, data: bytes, declared: int | None = None, bits: int = 16, fmt: int = 1) -> bytes:
    """A WAV whose header declares ``channels``, ``rate`` and ``declared`` data bytes, holding ``data``."""
    declared = len(data) if declared is None else declared
    block = channels * bits // 8
    fmt_chunk = struct.pack("<IHHIIHH", 16, fmt, channels, rate, rate * block, block, bits)
    return b"RIFF" + struct.pack("<I", 36 + declared) + b"WAVEfmt " + fmt_chunk + b"data" + struct.pack("<I", declared) + data


def _decode_peak_mb(path) -> tuple[str, float]:
    """Decode ``path`` in a fresh interpreter: (``"ok"`` or the error's reason, its peak RSS in MB)."""
    code = (
        "import sys\n"
        "from genrekit.audio import load_audio, AudioError\n"
        "try:\n    load_audio(sys.argv[1]); out = 'ok'\n"
        "except AudioError as e:\n    out = e.reason\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(out); print(int(hwm) / 1024)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    outcome, peak = run.stdout.strip().rsplit("\n", 1)
    return outcome, float(peak)


# ----------------------------------------------------------------------------- header bombs


def test_many_channels_at_a_high_rate_decode_in_bounded_memory(tmp_path):
    """A 40 kB WAV declaring 64 channels at 192 kHz and 4 GB of data once took 1.5 GB to read."""
    path = tmp_path / "bomb.wav"
    path.write_bytes(wav_bytes(channels=64, rate=192_000, data=b"\1\0" * 20_000, declared=0xFFFF_FF00))
    outcome, peak_mb = _decode_peak_mb(path)
    assert outcome == "ok"
    assert peak_mb < 400


@pytest.mark.parametrize(
    "channels,rate,what",
    [(MAX_CHANNELS + 1, 44100, "channels"), (1024, 192_000, "channels"), (2, 655_360, "sample rate"),
     (2, MAX_RATE + 1, "sample rate"), (1, 1, "sample rate"), (1, 999, "sample rate")],
)  # fmt: skip
def test_header_declaring_what_no_music_has_is_refused(tmp_path, channels, rate, what):
    path = tmp_path / "bomb.wav"
    path.write_bytes(wav_bytes(channels=channels, rate=rate, data=b"\0" * 4096 * channels))
    with pytest.raises(AudioError, match=what) as info:
        load_audio(path)
    assert "not a music file" in info.value.reason and "\n" not in str(info.value)


def test_a_long_header_at_a_tiny_rate_is_refused_before_decoding(tmp_path):
    """A small file holding long audio at a low rate (1000 samples at 1 Hz once took 12-21 s of
    analysis before their 422): its header's duration is refused before a sample is decoded."""
    path = tmp_path / "slow.wav"
    path.write_bytes(wav_bytes(channels=1, rate=1000, data=b"\x80" * 601_000, bits=8))
    with pytest.raises(AudioError, match="header says it lasts"):
        next(stream_audio(path, max_duration=600))


# ----------------------------------------------------------------------------- absurd samples


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e30, -5e3])
def test_non_finite_or_absurd_samples_are_not_audio(tmp_path, value):
    y = np.zeros(22050, np.float32)
    y[1000:1010] = value
    path = tmp_path / "odd.wav"
    path.write_bytes(wav_bytes(channels=1, rate=22050, data=y.tobytes(), bits=32, fmt=3))
    with pytest.raises(AudioError, match="not audio"):
        load_audio(path)


def test_loud_but_plausible_float_samples_are_audio(tmp_path):
    y = (np.sin(np.linspace(0, 2000, 22050)) * 4).astype(np.float32)  # 12 dB over full scale: a hot mix
    path = tmp_path / "hot.wav"
    path.write_bytes(wav_bytes(channels=1, rate=22050, data=y.tobytes(), bits=32, fmt=3))
    assert np.abs(load_audio(path)).max() == pytest.approx(4, rel=1e-3)


# ----------------------------------------------------------------------------- truncated files


def _faststart_m4a(path, y: np.ndarray, sr: int = 22050):
    """An M4A with its index first (as players and shops write them), so that a cut keeps it."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("aac", rate=sr, layout="mono")
        stream.codec_context.open()
        for pts in range(0, len(y) - 1024, 1024):
            frame = av.AudioFrame.from_ndarray(y[None, pts : pts + 1024].copy(), format="flt", layout="mono")
            frame.sample_rate, frame.pts = sr, pts
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize("ext", ["flac", "m4a"])
@pytest.mark.parametrize("cut", [0.1, 0.5])
def test_truncated_flac_and_m4a_give_what_decodes_flagged(tmp_path, ext, cut):
    y = noise_band(50, 6000, 10.0, amp=0.2, seed=21)
    full = tmp_path / f"full.{ext}"
    write_audio(full, y) if ext == "flac" else _faststart_m4a(full, y)
    data = full.read_bytes()
    part = tmp_path / f"cut.{ext}"
    part.write_bytes(data[: int(len(data) * cut)])
    whole_report, part_report = DecodeReport(), DecodeReport()
    whole = np.concatenate(list(stream_audio(full, report=whole_report)))
    head = np.concatenate(list(stream_audio(part, report=part_report)))
    assert not whole_report.truncated
    assert part_report.truncated
    assert 0.4 * cut * len(whole) < len(head) < cut * len(whole) * 1.1 + 4096
    assert part_report.decoded_s == pytest.approx(len(head) / 22050)
    assert part_report.declared_s == pytest.approx(10.0, abs=0.2)
    edge = 4096  # a lossy decoder's last frame before the cut may differ
    np.testing.assert_allclose(head[: len(head) - edge], whole[: len(head) - edge], atol=1e-4)


def test_m4a_cut_before_its_index_says_so(tmp_path):
    full = write_audio(tmp_path / "full.m4a", noise_band(50, 6000, 3.0, seed=22))  # index written last
    part = tmp_path / "cut.m4a"
    part.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with pytest.raises(AudioError, match="cut short before its index"):
        load_audio(part)


def test_whole_file_is_not_flagged_truncated(tmp_path):
    report = DecodeReport()
    list(stream_audio(write_audio(tmp_path / "a.wav", noise_band(50, 6000, 2.0, seed=23)), report=report))
    assert (report.truncated, report.declared_s) == (False, pytest.approx(2.0))
    assert json.loads(json.dumps(report.__dict__)) == report.__dict__
