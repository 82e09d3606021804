"""Tagging at scale, item 2: files/s of `genrekit predict --engine ray` with 1 and 2 actors (one core
each) on the same GTZAN clips, the scaling efficiency, and what 10^6 tracks cost on N machines.

The rate of a run is its steady rate: the rows written after the first partition, over the time
from the first partition to the last (partition files' mtimes), so that starting Ray and loading
the model in each actor (once per run, whatever its size) are left out; the end-to-end rate, start
included, is reported beside it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from _results import RESULTS, SHARED_DATA, md_table, update_summary, write_results

from genrekit.scale import run_ray


def one_run(files: list[Path], *, model: str | None, workers: int, batch_size: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="genrekit-ray-"))
    try:
        t0 = time.time()
        summary = run_ray(files, output_dir=out, model=model, workers=workers, batch_size=batch_size, progress=False)
        wall = time.time() - t0
        parts = sorted(out.glob("part-*.parquet"), key=lambda p: p.stat().st_mtime)
        first, last = parts[0].stat().st_mtime, parts[-1].stat().st_mtime
        after_first = sum(pq.read_metadata(p).num_rows for p in parts[1:])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert summary.failed == 0, summary.errors
    return {"workers": workers, "files": summary.done, "wall_s": round(wall, 2),
            "end_to_end_files_per_s": round(summary.done / wall, 3),
            "files_per_s": round(after_first / (last - first), 3), "steady_s": round(last - first, 2)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--files", type=int, default=80, help="GTZAN clips (30 s each), the same for every run")
    p.add_argument("--model", default=None, help="default: the bundled default model (musicnn-gtzan)")
    p.add_argument("--batch-size", type=int, default=2)
    a = p.parse_args()
    clips = sorted((Path(a.data) / "genres_original").rglob("*.*"))
    files = [clips[i * len(clips) // a.files] for i in range(a.files)]  # spread over the genres
    runs = [one_run(files, model=a.model, workers=n, batch_size=a.batch_size) for n in (1, 2)]
    one, two = runs
    efficiency = two["files_per_s"] / (2 * one["files_per_s"])
    per_core = one["files_per_s"]
    song = json.loads((RESULTS / "predict_speed.json").read_text())  # 3-minute songs, whole machine
    data = {"model": a.model or "musicnn-gtzan (bundled default)", "clip_seconds": 30, "batch_size": a.batch_size,
            "runs": runs, "ray_scaling_efficiency": round(efficiency, 3), "per_core_files_per_s_30s": per_core,
            "predict_speed_3min_files_per_s_2_cores": song["tagging_files_per_s"]}  # fmt: skip
    md = "\n".join([
        f"# Ray scaling: {a.files} GTZAN clips of 30 s, {data['model']}, batches of {a.batch_size}", "",
        md_table(["actors (1 core each)", "files/s (steady)", "files/s (end to end, Ray start included)", "wall s"],
                 [[r["workers"], r["files_per_s"], r["end_to_end_files_per_s"], r["wall_s"]] for r in runs]),
        "", f"Scaling efficiency (2 actors ÷ 2 × 1 actor, steady rates): **{efficiency:.2f}**.",
        "Measured on this machine's 2 cores (shared with other work: figures vary run to run).",
    ])  # fmt: skip
    write_results("ray_scaling", data, md)
    update_summary({"ray_tagging_files_per_s": two["files_per_s"], "ray_workers": 2,
                    "ray_scaling_efficiency": round(efficiency, 3)})  # fmt: skip
    print(md)


if __name__ == "__main__":
    sys.exit(main())
