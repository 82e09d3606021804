"""Cold start of `genrekit predict` on the ONNX runtime and on torch, and their agreement on GTZAN.

One 30-s WAV through the CLI in a fresh process (wall time and peak RSS, median of 3) with the
default model as shipped (its ONNX export) and with the same checkpoint without its export (torch);
then the bundled model's top genre and probabilities on every GTZAN clip with audio, both runtimes.

    python benchmarks/cold_start.py [--data ../shared/data/gtzan] [--clips N] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import SHARED_DATA, md_table, update_summary, write_results

from genrekit.audio import load_audio
from genrekit.checkpoint import bundled_model_path
from genrekit.predictor import Predictor


def cold_run(*, wav: Path, model: Path | None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `genrekit predict` in a fresh process."""
    cmd = [sys.executable, "-m", "genrekit.cli", "predict", str(wav)] + (["--model", str(model)] if model else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed")
    return wall, usage.ru_maxrss / 1024


def agreement(*, clips: list[Path]) -> dict:
    """Same top genre fraction and the largest probability difference, ONNX vs torch."""
    onnx, torch_ = Predictor.load(runtime="onnx"), Predictor.load(runtime="torch")
    same, diff = 0, 0.0
    for clip in clips:
        a, b = onnx.predict_file(clip), torch_.predict_file(clip)
        same += a.top[0][0] == b.top[0][0]
        diff = max(
            diff, float(np.abs(np.subtract(list(a.probabilities.values()), list(b.probabilities.values()))).max())
        )
    return {"clips": len(clips), "same_top_genre": same / max(1, len(clips)), "max_prob_diff": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--clips", type=int, default=0, help="at most this many clips in the agreement (0: all)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    clips = sorted((args.data / "genres_original").glob("*/*.*"))
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip30.wav"
        if clips:
            sf.write(wav, load_audio(clips[0], sr=22050)[: 30 * 22050], 22050)
        else:
            t = np.arange(30 * 22050) / 22050
            sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050)
        torch_model = Path(tmp) / bundled_model_path().name  # the checkpoint alone: no export beside it
        shutil.copy(bundled_model_path(), torch_model)
        cold = {}
        for runtime, model in (("onnx", None), ("torch", torch_model)):
            runs = [cold_run(wav=wav, model=model) for _ in range(args.runs)]
            cold[runtime] = {
                "cold_predict_s": round(statistics.median(r[0] for r in runs), 3),
                "cold_predict_rss_mb": round(statistics.median(r[1] for r in runs), 1),
                "runs": [[round(w, 3), round(m, 1)] for w, m in runs],
            }
    agree = agreement(clips=clips[: args.clips] if args.clips else clips) if clips else {}
    write_results(
        "cold_start",
        {"cold": cold, "agreement": agree},
        "\n\n".join(
            [
                f"# Cold start: one 30-s WAV through `genrekit predict`, fresh process, median of {args.runs}",
                md_table(
                    ["runtime", "wall s", "peak RSS MB"],
                    [[k, v["cold_predict_s"], v["cold_predict_rss_mb"]] for k, v in cold.items()],
                ),
                "# ONNX vs torch, bundled model, GTZAN clips with audio",
                md_table(
                    ["clips", "same top genre", "max probability difference"],
                    [
                        [
                            agree.get("clips"),
                            agree.get("same_top_genre"),
                            f"{agree.get('max_prob_diff', float('nan')):.2e}",
                        ]
                    ],
                ),
            ]
        ),
    )
    update_summary(
        {
            "cold_predict_s": cold["onnx"]["cold_predict_s"],
            "cold_predict_rss_mb": cold["onnx"]["cold_predict_rss_mb"],
            "cold_predict_torch_s": cold["torch"]["cold_predict_s"],
            "cold_predict_torch_rss_mb": cold["torch"]["cold_predict_rss_mb"],
            **(
                {
                    "onnx_torch_same_top_genre": agree["same_top_genre"],
                    "onnx_torch_max_prob_diff": agree["max_prob_diff"],
                }
                if agree
                else {}
            ),
        }
    )
    print((Path(__file__).parent / "results" / "cold_start.md").read_text())


if __name__ == "__main__":
    main()
