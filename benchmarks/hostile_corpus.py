"""The bad inputs of ``benchmarks/hostile.py``, generated in a folder: every kind of the audits.

Each kind is one file system entry (a file, a pipe, a link, a folder) whose name says what it is.
:func:`make_corpus` returns ``kind -> path``; :func:`upload_name` the file name an upload of it
carries (odd names are sent as the upload's file name too).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def wav(
    *,
    channels: int = 1,
    rate: int = SR,
    data: bytes = b"\0\0" * 4096,
    declared: int | None = None,
    bits: int = 16,
    fmt: int = 1,
    riff: int | None = None,
    fmt_size: int = 16,
) -> bytes:
    """A WAV whose header says what it is told to, holding ``data``."""
    declared = len(data) if declared is None else declared
    block = channels * bits // 8
    body = struct.pack(
        "<HHIIHH", fmt, channels & 0xFFFF, rate & 0xFFFFFFFF, (rate * block) & 0xFFFFFFFF, block & 0xFFFF, bits
    )
    riff = 36 + declared if riff is None else riff
    return (
        b"RIFF"
        + struct.pack("<I", riff & 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<I", fmt_size)
        + body
        + b"data"
        + struct.pack("<I", declared & 0xFFFFFFFF)
        + data
    )


def _signal(seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(seed).normal(scale=0.05, size=t.size)
    return (0.3 * np.sin(2 * np.pi * 220 * t) + noise).astype(np.float32)


def _encoded(fmt: str, scratch: Path, seconds: float = 10.0) -> bytes:
    y = _signal(seconds)
    if fmt in ("wav", "flac", "ogg", "mp3"):
        buf = io.BytesIO()
        kind = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"), "mp3": ("MP3", None)}
        sf.write(buf, y, SR, format=kind[fmt][0], subtype=kind[fmt][1])
        return buf.getvalue()
    import av

    container, codec, rate = {
        "m4a": ("mp4", "aac", SR),
        "opus": ("ogg", "libopus", 48000),
        "m4a-faststart": ("mp4", "aac", SR),
    }[fmt]
    if rate != SR:
        import soxr

        y = soxr.resample(y, SR, rate).astype(np.float32)
    path = scratch / f"encoded.{container}"
    options = {"movflags": "faststart"} if fmt == "m4a-faststart" else {}
    with av.open(str(path), "w", format=container, options=options) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.codec_context.open()
        size = stream.codec_context.frame_size or 960
        fmt_name = stream.format.name
        for pts in range(0, len(y) - size, size):
            chunk = y[pts : pts + size][None]
            if fmt_name.startswith("s16"):
                chunk = np.round(chunk * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt_name, layout="mono")
            frame.sample_rate, frame.pts = rate, pts
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = path.read_bytes()
    path.unlink()
    return data


def _png(width: int, height: int, raw: bytes | None = None, *, color_type: int = 6) -> bytes:
    """A PNG of ``width`` x ``height`` (RGBA), its pixels ``raw`` (zeros by default) deflated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    if raw is None:  # every row: filter byte 0 and zero pixels, compressed as it goes
        z, row = zlib.compressobj(9), b"\0" * (1 + 4 * width)
        idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    else:
        idat = zlib.compress(raw, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def make_corpus(root: Path) -> dict[str, Path]:
    """Write every bad input under ``root``; returns kind -> path (at least 60 kinds)."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    rng = np.random.default_rng(19)
    encoded = {f: _encoded(f, root) for f in ("wav", "flac", "ogg", "mp3", "m4a", "m4a-faststart", "opus")}
    for ext in ("wav", "mp3", "flac", "ogg", "m4a", "opus", "png"):
        files[f"empty.{ext}"] = b""
    for name, data in encoded.items():
        ext = "m4a" if name.startswith("m4a") else name
        tag = "-faststart" if name == "m4a-faststart" else ""
        files[f"cut-header{tag}.{ext}"] = data[:40]
        for cut in (0.1, 0.5):
            files[f"cut{int(cut * 100)}{tag}.{ext}"] = data[: int(len(data) * cut)]
    for ext in ("wav", "mp3", "flac", "ogg", "m4a", "opus", "aac", "wma", "au", "png"):
        files[f"random.{ext}"] = rng.bytes(20_000)
    files["text.wav"] = b"this is a shopping list, not a song\n" * 50
    files["text.mp3"] = b"<html><body>404 not found</body></html>\n" * 50
    # header bombs: what a few bytes may declare
    files["bomb-64ch-192k-4gb.wav"] = wav(channels=64, rate=192_000, data=b"\1\0" * 20_000, declared=0xFFFF_FF00)
    files["bomb-1024ch.wav"] = wav(channels=1024, rate=192_000, data=b"\0" * 40_000)
    files["bomb-65535ch.wav"] = wav(channels=65535, rate=44100, data=b"\0" * 40_000)
    files["bomb-rate-655k.wav"] = wav(channels=2, rate=655_360, data=b"\0" * 40_000)
    files["bomb-rate-4g.wav"] = wav(channels=2, rate=0xFFFF_FFFF, data=b"\0" * 40_000)
    files["bomb-rate-0.wav"] = wav(rate=0)
    files["bomb-rate-1.wav"] = wav(rate=1, data=b"\1\0" * 1000)
    files["bomb-bits-0.wav"] = wav(bits=0)
    files["bomb-riff-4gb.wav"] = wav(riff=0xFFFF_FFFF)
    files["bomb-fmt-size.wav"] = wav(fmt_size=0x7FFF_FFFF)
    files["bomb-blockalign-0.wav"] = wav(channels=0)
    files["bomb-float64-32ch-384k.wav"] = wav(channels=32, rate=384_000, bits=64, fmt=3, data=b"\0" * 200_000)
    files["long-header-901s-1khz.wav"] = wav(rate=1000, bits=8, data=b"\x80" * 901_000)
    files["one-sample.wav"] = wav(data=b"\1\0")
    # absurd sample values
    for name, value in (("nan", np.nan), ("inf", np.inf), ("huge", 1e30), ("max", np.finfo(np.float32).max)):
        y = _signal(3.0)
        y[SR : SR + 100] = value
        files[f"float-{name}.wav"] = wav(data=y.astype(np.float32).tobytes(), bits=32, fmt=3)
    files["float64-1e300.wav"] = wav(data=np.full(SR, 1e300).tobytes(), bits=64, fmt=3)
    # images: a decompression bomb, a huge header, random pixels, a cut one
    files["png-bomb-12000px.png"] = _png(12_000, 12_000)
    files["png-header-100000px.png"] = _png(100_000, 100_000, raw=b"\0" * 100)
    files["png-cut.png"] = _png(432, 288, raw=rng.bytes(288 * (1 + 432 * 4)))[:3000]
    # an MP3 with garbage inside, and one whose frame count lies
    mp3 = encoded["mp3"]
    files["mp3-garbage-inside.mp3"] = mp3[: len(mp3) // 3] + rng.bytes(5000) + mp3[len(mp3) // 3 :]
    at = mp3.find(b"Xing")
    if at >= 0:
        files["mp3-overdeclared.mp3"] = mp3[: at + 8] + (10**6).to_bytes(4, "big") + mp3[at + 12 :]
    # odd names: the content is a real song
    song = encoded["wav"]
    files["name with spaces & 'quotes'.wav"] = song
    files["-starts-with-dash.wav"] = song
    files["\u202eright-to-left-override.wav"] = song
    files["line\nbreak.wav"] = song
    files["x" * 251 + ".wav"] = song
    out = {kind: root / kind for kind in files}
    for kind, data in files.items():
        out[kind].write_bytes(data)
    odd = os.fsencode(root) + b"/caf\xe9-not-utf8.wav"
    Path(os.fsdecode(odd)).write_bytes(song)
    out["name-not-utf8.wav"] = Path(os.fsdecode(odd))
    # entries that are not regular files
    os.mkfifo(root / "fifo.wav")
    out["fifo.wav"] = root / "fifo.wav"
    os.symlink(root / "loop-b.wav", root / "loop-a.wav")
    os.symlink(root / "loop-a.wav", root / "loop-b.wav")
    out["symlink-loop.wav"] = root / "loop-a.wav"
    os.symlink(root / "nowhere.wav", root / "broken-link.wav")
    out["broken-link.wav"] = root / "broken-link.wav"
    os.symlink("/dev/zero", root / "dev-zero.wav")
    out["dev-zero.wav"] = root / "dev-zero.wav"
    (root / "folder.wav").mkdir()
    out["folder.wav"] = root / "folder.wav"
    out["proc"] = Path("/proc/self/status")
    return out


def upload_name(kind: str, path: Path) -> str:
    """The file name an upload of ``kind`` carries."""
    return os.fsdecode(os.fsencode(path.name)) if kind != "proc" else "status"
