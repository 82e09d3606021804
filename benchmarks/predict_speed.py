"""Issues 4 and 10 targets, default (bundled) model: latency of one 30-s file, library throughput on
3-minute songs, peak memory on a 10-minute file, and robustness of the top genre to how a file was
made (sample rate, channels, MP3, gain)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr
from _common import parser
from _results import RESULTS, machine, md_table, update_summary, write_results
from tqdm import tqdm

from genrekit.audio import load_audio
from genrekit.datasets import load_dataset
from genrekit.predictor import Predictor


def write_mp3(path: Path, y: np.ndarray, sr: int, bitrate: int = 128_000) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libmp3lame", rate=sr)
        s.bit_rate = bitrate
        s.layout = "mono"
        for start in range(0, len(y), 1152 * 64):
            frame = av.AudioFrame.from_ndarray(
                y[None, start : start + 1152 * 64].astype(np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate = sr
            for pkt in s.encode(frame):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)


def latency(predictor: Predictor, tracks, tmp: Path, a) -> dict:
    """One 30-s file end to end (decode + features + model), median of 10."""
    wav = tmp / "clip.wav"
    sf.write(wav, load_audio(tracks[0].path), 22050)
    predictor.predict_file(wav)
    lat = []
    for _ in range(10):
        t = time.perf_counter()
        predictor.predict_file(wav)
        lat.append(time.perf_counter() - t)
    return {"latency_ms_30s": float(np.median(lat) * 1e3)}


def tagging(predictor: Predictor, tracks, tmp: Path, a) -> dict:
    """Library tagging of songs of --song-seconds (consecutive clips joined): the CLI, then a running
    process (model loaded once, 2 files at a time)."""
    lib = tmp / "library"
    lib.mkdir()
    per_song = max(1, int(round(a.song_seconds / 30)))
    chosen = [
        tracks[(i * per_song) % len(tracks) : (i * per_song) % len(tracks) + per_song] for i in range(a.tagging_files)
    ]
    for i, clips in enumerate(chosen):
        sf.write(
            lib / f"song{i:03d}.wav",
            np.concatenate([load_audio(t.path) for t in clips])[: int(a.song_seconds * 22050)],
            22050,
        )
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "genrekit.cli", "predict", str(lib), "-o", str(tmp / "tags.csv"), "--no-progress"],
        capture_output=True,
        text=True,
        check=True,
    )
    cli_files_per_s = len(chosen) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in predictor.predict_files(sorted(lib.iterdir()), workers=2):
        pass
    return {
        "tagging_files_per_s": len(chosen) / (time.perf_counter() - t0),
        "tagging_cli_files_per_s_incl_startup": cli_files_per_s,
        "tagging_files": len(chosen),
        "tagging_song_seconds": a.song_seconds,
    }


def memory(predictor: Predictor, tracks, tmp: Path, a) -> dict:
    """Peak RSS of the CLI on a 10-minute file, in a fresh process. The child reports its own peak
    (VmHWM): ru_maxrss keeps, across exec, the RSS of the fork of this (large) process."""
    long = tmp / "long.wav"
    sf.write(long, np.concatenate([load_audio(t.path) for t in tracks[:20]])[: 600 * 22050], 22050)
    code = (
        "import sys; from genrekit.cli import main; sys.argv=['genrekit','predict',sys.argv[1],'--format','json'];"
        "\ntry: main()\nexcept SystemExit: pass\n"
        "print('RSS', [int(v.split()[1]) for v in open('/proc/self/status') if v.startswith('VmHWM')][0], file=sys.stderr)"
    )
    run = subprocess.run([sys.executable, "-c", code, str(long)], capture_output=True, text=True, check=True)
    long_result = json.loads(run.stdout)[0]  # --format json: one array, one object per file
    return {
        "long_file_seconds": 600,
        "long_file_peak_rss_mb": int(run.stderr.strip().split("RSS")[-1]) / 1024,
        "long_file_segments": len(long_result["timeline"]),
    }


def robustness(predictor: Predictor, tracks, tmp: Path, a) -> dict:
    """The same clip as 22.05 kHz wav, 44.1 kHz stereo, 128 kbps MP3 and at -12 dB: same top genre?"""
    agree, rows = 0, []
    subset = tracks[:: max(1, len(tracks) // a.robustness_clips)][: a.robustness_clips]
    for t in tqdm(subset, desc="robustness", disable=a.no_progress):
        y = load_audio(t.path)
        base = tmp / "v.wav"
        sf.write(base, y, 22050)
        st = tmp / "v44.wav"
        y44 = soxr.resample(y, 22050, 44100)
        sf.write(st, np.stack([y44, y44], axis=1), 44100)
        mp3 = tmp / "v.mp3"
        write_mp3(mp3, y, 22050)
        quiet = tmp / "vq.wav"
        sf.write(quiet, y * 10 ** (-12 / 20), 22050)
        tops = [predictor.predict_file(f).genre for f in (base, st, mp3, quiet)]
        same = all(g == tops[0] for g in tops)
        agree += same
        rows.append({"id": t.id, "tops": tops, "agree": same})
    return {
        "robustness_clips": len(subset),
        "robustness_agreement": agree / len(subset),
        "robustness_agree": agree,
        "robustness_disagreements": [r for r in rows if not r["agree"]],
    }


PARTS = {"latency": latency, "tagging": tagging, "memory": memory, "robustness": robustness}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--robustness-clips", type=int, default=328)
    p.add_argument("--tagging-files", type=int, default=12)
    p.add_argument("--song-seconds", type=float, default=180.0, help="length of each library song (clips joined)")
    p.add_argument("--parts", default=",".join(PARTS), help="measure only these; the others keep their last results")
    a = p.parse_args()
    predictor = Predictor.load()
    tracks = load_dataset(a.data, input_kind="audio")
    tmp = Path(tempfile.mkdtemp(prefix="genrekit-bench-"))
    out = RESULTS / "predict_speed.json"
    res = json.loads(out.read_text()) if out.exists() else {}
    res.pop("machine", None)
    for name in a.parts.split(","):
        res.update(PARTS[name](predictor, tracks, tmp, a))
        res.setdefault("measured", {})[name] = machine()
    res["model"] = predictor.name
    agree = res.get("robustness_agree", round(res["robustness_agreement"] * res["robustness_clips"]))
    md = (
        f"# Prediction speed, memory and robustness (model {predictor.name}, runtime {predictor.runtime})\n\n"
        + md_table(
            ["measure", "value", "target"],
            [
                ["latency, one 30-s WAV, end to end (median of 10)", f"{res['latency_ms_30s']:.0f} ms", "≤ 500 ms"],
                [
                    f"library tagging, {res['tagging_song_seconds']:.0f}-s WAVs, Predictor.predict_files (2 workers)",
                    f"{res['tagging_files_per_s']:.2f} files/s ({res['tagging_files']} files)",
                    "≥ 4 files/s",
                ],
                [
                    "the same through the CLI, incl. start-up",
                    f"{res['tagging_cli_files_per_s_incl_startup']:.1f} files/s",
                    "",
                ],
                ["peak RSS (VmHWM), 10-minute WAV, CLI process", f"{res['long_file_peak_rss_mb']:.0f} MB", "≤ 300 MB"],
                [
                    "same top genre: 22.05 kHz wav / 44.1 kHz stereo / 128 kbps MP3 / -12 dB",
                    f"{res['robustness_agreement']:.3f} ({agree}/{res['robustness_clips']} clips)",
                    "≥ 0.95",
                ],
            ],
        )
    )
    md += "\n\nEach part's machine and date are in the JSON (`measured`); `--parts` re-measures some of them.\n"
    write_results("predict_speed", res, md)
    update_summary(
        {
            "predict_latency_ms_30s": round(res["latency_ms_30s"], 1),
            # tagging_files_per_s belongs to tagging_speed.py (the library's own settings)
            "predict_files_full_files_per_s": round(res["tagging_files_per_s"], 2),
            "long_file_peak_rss_mb": round(res["long_file_peak_rss_mb"], 1),
            "robustness_agreement": round(res["robustness_agreement"], 4),
            "bundled_model_name": predictor.name,
        }
    )
    print(md)


if __name__ == "__main__":
    main()
