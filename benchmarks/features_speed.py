"""Issue 2 target (d): log-mel extraction time per 30-s clip on this machine, genrekit's extractor
(``extract(LogMelConfig(), y)``: the streaming extractor run over the whole signal) against
librosa.feature.melspectrogram on the same clips in the same run."""

from __future__ import annotations

import time

import librosa
import numpy as np
import torch
from _common import parser
from _results import md_table, update_summary, write_results

from genrekit.audio import load_audio
from genrekit.datasets import load_dataset
from genrekit.features import extract
from genrekit.features.logmel import LogMelConfig


def best_of(fn, repeat: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--clips", type=int, default=16)
    a = p.parse_args()
    tracks = load_dataset(a.data, input_kind="audio")[:: max(1, 328 // a.clips)][: a.clips]
    n = 30 * 22050
    clips = [np.pad(y, (0, max(0, n - len(y))))[:n] for y in (load_audio(t.path) for t in tracks)]
    config = LogMelConfig()

    def run_librosa():
        for y in clips:
            librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=22050, n_fft=2048, hop_length=512, n_mels=128))

    def run_extract():  # a fresh stream per clip (filterbank included), as the feature cache computes it
        for y in clips:
            extract(config, y)

    t_lib = best_of(run_librosa) / len(clips) * 1e3
    t_ext = best_of(run_extract) / len(clips) * 1e3
    res = {"clips": len(clips), "librosa_ms_per_clip": t_lib, "extract_ms_per_clip": t_ext, "speedup": t_lib / t_ext}
    md = f"# Log-mel extraction, 30-s clips, {torch.get_num_threads()} threads\n\n" + md_table(
        ["method", "ms per clip", "speed-up vs librosa"],
        [
            ["librosa.feature.melspectrogram + power_to_db", f"{t_lib:.1f}", "1.0"],
            ["genrekit extract(LogMelConfig(), y), one clip at a time", f"{t_ext:.1f}", f"{t_lib / t_ext:.1f}x"],
        ],
    )
    write_results("features_speed", res, md)
    update_summary({"features_speedup_vs_librosa": round(t_lib / t_ext, 2)})
    print(md)


if __name__ == "__main__":
    main()
