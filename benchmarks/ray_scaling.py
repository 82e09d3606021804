"""Tagging at scale, item 2: files/s of `genrekit predict --engine ray` with 1 and 2 actors (one core
each) on the same GTZAN clips, the scaling efficiency, and what 10^6 tracks cost on N machines.

The rate of a run is its steady rate: the rows written after the first partition, over the time
from the first partition to the last (partition files' mtimes), so that starting Ray and loading
the model in each actor (once per run, whatever its size) are left out; the end-to-end rate, start
included, is reported beside it. Runs go 1, 2, 2, 1 actors (--repeats 2), so that a machine that
gets busier or quieter while measured weighs on both sides alike; every run is reported, and the
efficiency is that of the mean rates.

Ray runs in a network namespace with only loopback (tests/loopback.py): the script starts itself
again inside one when it sees another interface, and stops with the reason when none can be made
(--any-network runs it where it is).
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

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = ROOT / "tests" / "loopback.py"
NAMESPACE = "a network namespace with only loopback"


def _only_loopback() -> bool:
    import socket

    return [name for _, name in socket.if_nameindex()] == ["lo"]


def one_run(files: list[Path], *, model: str | None, workers: int, batch_size: int, patches: int | None) -> dict:
    import pyarrow.parquet as pq

    from genrekit.tagging.ray_engine import run_ray

    out = Path(tempfile.mkdtemp(prefix="genrekit-ray-"))
    load = os.getloadavg()[0]
    try:
        t0 = time.time()
        summary = run_ray(
            files, output_dir=out, model=model, workers=workers, batch_size=batch_size, progress=False, patches=patches
        )
        wall = time.time() - t0
        parts = sorted(out.glob("part-*.parquet"), key=lambda p: p.stat().st_mtime)
        first, last = parts[0].stat().st_mtime, parts[-1].stat().st_mtime
        after_first = sum(pq.read_metadata(p).num_rows for p in parts[1:])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert summary.failed == 0, summary.errors
    return {
        "workers": workers,
        "files": summary.done,
        "wall_s": round(wall, 2),
        "end_to_end_files_per_s": round(summary.done / wall, 3),
        "files_per_s": round(after_first / (last - first), 3),
        "steady_s": round(last - first, 2),
        "load_avg_1min_before": round(load, 2),
    }


def measure(a: argparse.Namespace) -> None:
    from _results import md_table, update_summary, write_results

    from genrekit.predictor import Predictor

    clips = sorted((Path(a.data) / "genres_original").rglob("*.*"))
    if not clips:
        sys.exit(f"no GTZAN clips under {a.data}/genres_original (--data)")
    files = [clips[i * len(clips) // a.files] for i in range(a.files)]  # spread over the genres
    order = [1, 2, 2, 1] * (a.repeats // 2) + [1, 2] * (a.repeats % 2)
    patches = None if a.full else a.patches
    runs = [one_run(files, model=a.model, workers=n, batch_size=a.batch_size, patches=patches) for n in order]
    rate = {n: statistics.mean(r["files_per_s"] for r in runs if r["workers"] == n) for n in (1, 2)}
    efficiency = rate[2] / (2 * rate[1])
    runtime = Predictor.load(a.model, threads=1).runtime  # what each actor loads, by the same rule
    data = {
        "model": a.model or "musicnn-gtzan (bundled default)",
        "runtime": runtime,
        "clip_seconds": 30,
        "files": a.files,
        "batch_size": a.batch_size,
        "order": order,
        "runs": runs,
        "patches": patches,
        "mean_files_per_s": {str(n): round(v, 3) for n, v in rate.items()},
        "ray_scaling_efficiency": round(efficiency, 3),
        "per_core_files_per_s_30s": round(rate[1], 3),
        "network": NAMESPACE if _only_loopback() else "the machine's network",
    }
    md = "\n".join(
        [
            f"# Ray scaling: {a.files} GTZAN clips of 30 s, {data['model']} on {runtime}, batches of {a.batch_size}",
            "",
            (
                f"Each clip analysed {'whole' if patches is None else f'from {patches} spread windows, more while unsettled'} "
                "(the library default unless --full), by actors of one core and one onnxruntime thread each."
            ),
            "",
            md_table(
                [
                    "run",
                    "actors (1 core each)",
                    "files/s (steady)",
                    "files/s (end to end, Ray start included)",
                    "wall s",
                    "load avg before",
                ],
                [
                    [
                        i + 1,
                        r["workers"],
                        r["files_per_s"],
                        r["end_to_end_files_per_s"],
                        r["wall_s"],
                        r["load_avg_1min_before"],
                    ]
                    for i, r in enumerate(runs)
                ],
            ),
            "",
            (
                f"Mean steady rates: 1 actor {rate[1]:.2f} files/s, 2 actors {rate[2]:.2f} files/s; scaling efficiency "
                f"(2 actors ÷ 2 × 1 actor) **{efficiency:.2f}**."
            ),
            (
                f"Measured on this machine's {os.cpu_count()} cores, shared with other work while measured (the load "
                "average before each run is in the table): the figures vary from run to run. Ray ran in "
                f"{data['network']}."
            ),
        ]
    )
    write_results("ray_scaling", data, md)
    update_summary(
        {"ray_tagging_files_per_s": round(rate[2], 3), "ray_workers": 2, "ray_scaling_efficiency": round(efficiency, 3)}
    )
    print(md)


def main() -> None:
    from _results import SHARED_DATA

    from genrekit.tagging.core import DEFAULT_PATCHES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--files", type=int, default=80, help="GTZAN clips (30 s each), the same for every run")
    p.add_argument("--model", default=None, help="default: the bundled default model (musicnn-gtzan)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument(
        "--patches", type=int, default=DEFAULT_PATCHES, help="first stage of spread windows (the library default)"
    )
    p.add_argument("--full", action="store_true", help="analyse every window of every clip")
    p.add_argument("--repeats", type=int, default=2, help="runs of each size, in the order 1, 2, 2, 1, ...")
    p.add_argument("--any-network", action="store_true", help="run Ray in this network, not in a loopback-only one")
    a = p.parse_args()
    if not (a.any_network or _only_loopback()):  # again, inside a namespace of our own
        sys.exit(subprocess.call([sys.executable, str(LOOPBACK), "--", sys.executable, *sys.argv]))
    temp = tempfile.mkdtemp(prefix="gkray")  # Ray's files, not /tmp/ray (short: socket paths live under it)
    os.environ.update({"RAY_TMPDIR": temp, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        measure(a)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
