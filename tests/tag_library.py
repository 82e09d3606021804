"""A generated music library in every container ``genrekit tag`` writes, for the tests and benchmarks/tags.py.

libsndfile writes WAV, AIFF, FLAC, Ogg Vorbis and MP3; PyAV (FFmpeg) writes Opus, AAC and ALAC in
M4A, WMA and WavPack. FFmpeg has no Monkey's Audio or Musepack encoder: those are written only
when the reference encoders (``mac``, ``mpcenc``) are on the PATH.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

# name -> (file name, how it is written)
CONTAINERS = {
    "mp3": ("track.mp3", ("sf", "MP3", "MPEG_LAYER_III")),
    "wav": ("track.wav", ("sf", "WAV", "PCM_16")),
    "aiff": ("track.aiff", ("sf", "AIFF", "PCM_16")),
    "flac": ("track.flac", ("sf", "FLAC", "PCM_16")),
    "ogg_vorbis": ("track.ogg", ("sf", "OGG", "VORBIS")),
    "opus": ("track.opus", ("av", "ogg", "libopus")),
    "m4a_aac": ("track.m4a", ("av", "mp4", "aac")),
    "m4a_alac": ("track-alac.m4a", ("av", "ipod", "alac")),
    "wma": ("track.wma", ("av", "asf", "wmav2")),
    "wavpack": ("track.wv", ("av", "wv", "wavpack")),
    "monkeys_audio": ("track.ape", ("tool", "mac")),
    "musepack": ("track.mpc", ("tool", "mpcenc")),
}


def _write_av(path: Path, y: np.ndarray, sr: int, container: str, codec: str) -> None:
    import av
    import soxr

    rate = 48000 if codec == "libopus" else sr
    y = soxr.resample(y, sr, rate).astype(np.float32) if rate != sr else y.astype(np.float32)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if codec in ("aac", "libopus", "wmav2"):
            stream.bit_rate = 96_000
        if codec == "wavpack":
            stream.format = "s16p"  # its first sample format is 8-bit
        stream.codec_context.open()
        size = stream.codec_context.frame_size or 4096
        fmt = stream.format.name
        for pts in range(0, len(y), size):
            chunk = np.pad(y[pts : pts + size], (0, max(0, pts + size - len(y))))[None, :]
            if fmt.startswith("s16"):
                chunk = np.round(np.clip(chunk, -1, 1) * 32767).astype(np.int16)
            elif fmt.startswith("s32"):
                chunk = np.round(np.clip(chunk, -1, 1) * (2**31 - 1)).astype(np.int32)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout="mono")
            frame.sample_rate, frame.pts = rate, pts
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _write_tool(path: Path, y: np.ndarray, sr: int, tool: str) -> str | None:
    if shutil.which(tool) is None:
        return f"no '{tool}' encoder on the PATH (FFmpeg cannot write {path.suffix} files)"
    with tempfile.TemporaryDirectory() as tmp:
        import soxr

        wav = Path(tmp) / "in.wav"
        sf.write(wav, soxr.resample(y, sr, 44100) if sr != 44100 else y, 44100, subtype="PCM_16")  # mpcenc: 32-48 kHz
        cmd = [tool, str(wav), str(path), "-c2000"] if tool == "mac" else [tool, "--silent", str(wav), str(path)]
        done = subprocess.run(cmd, capture_output=True, text=True)
    return None if done.returncode == 0 and path.exists() else f"'{tool}' failed: {done.stderr.strip()[-200:]}"


def write_container(name: str, folder: Path, y: np.ndarray, sr: int, *, stem: str | None = None) -> Path | str:
    """Write ``y`` (mono float32) as container ``name`` into ``folder``; the path, or why it could not."""
    file_name, how = CONTAINERS[name]
    path = Path(folder) / (f"{stem}{Path(file_name).suffix}" if stem else file_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if how[0] == "sf":
        sf.write(str(path), y, sr, format=how[1], subtype=how[2])
    elif how[0] == "av":
        import av

        try:
            av.codec.Codec(how[2], "w")
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            return f"this FFmpeg build has no '{how[2]}' encoder ({exc})"
        _write_av(path, y, sr, how[1], how[2])
    else:
        problem = _write_tool(path, y, sr, how[1])
        if problem:
            return problem
    return path


def decoded(path: str | Path) -> np.ndarray:
    """Every decoded sample of the first audio stream (FFmpeg), as one float array (channels interleaved)."""
    import av

    with av.open(str(path)) as c:
        chunks = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)


def ffmpeg_tags(path: str | Path) -> dict[str, str]:
    """The metadata FFmpeg reads from a file, container and streams together, keys upper-cased."""
    import av

    with av.open(str(path)) as c:
        md = {k.upper(): v for k, v in c.metadata.items()}
        for s in c.streams:
            md.update({k.upper(): v for k, v in s.metadata.items()})
    return md
