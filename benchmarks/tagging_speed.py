"""Tagging speed and agreement: k spread patches, seek-decoded, in worker processes, against the full analysis.

1. songs: ``--songs`` three-minute songs (three quarters of them six GTZAN clips of one genre
   joined, the rest six clips of six genres), encoded as 44.1 kHz stereo MP3 at 320 kbps and as
   22 kHz mono MP3 at 128 kbps with PyAV (LAME), cached outside the repository (``--cache``);
2. full: every song of both formats analysed whole (every window) by the process pool
   (:func:`genrekit.workers.predict_files`, one worker per core), timed;
3. agreement: for each k, the song's probabilities are the mean of the k windows spread as
   :mod:`genrekit.sampling` spreads them, taken from the full analysis (its windows are the same:
   the timed sampled runs below check it); top genre, top-3 set and ``confident`` compared with the
   full analysis, same-genre and mixed songs apart, and on the outside dev set's clips (measuring
   only: nothing is fitted on them);
4. the default k: the smallest k with top-1 agreement >= 0.97 on the joined songs and on the
   outside clips; each k timed on ``--timed-songs`` songs with the pool;
5. CPU per song by stage (decode, mel, backbone, head), one process on one thread.

The two cores are shared with other engineers' jobs: the load average is recorded before and
after each timed run.

    python benchmarks/tagging_speed.py [--songs 64] [--timed-songs 24] [--ks 4,6,8,12,16]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import RESULTS, SHARED_DATA, cpu, md_table, update_summary, write_results

from genrekit.audio import load_audio
from genrekit.presence import PresenceConfig
from genrekit.sampling import spread
from genrekit.workers import default_workers, predict_files

OUTSIDE = SHARED_DATA.parent / "outside"
FORMATS = {"stereo44k": (44100, 2, 320_000), "mono22k": (22050, 1, 128_000)}
TARGET = 0.97
CONFIDENT = PresenceConfig().confident
PATCH_S = 187 * 256 / 16000


# ----------------------------------------------------------------------------- songs


def encode_mp3(path: Path, y: np.ndarray, sr: int, rate: int, channels: int, bit_rate: int) -> None:
    import av
    import soxr

    if rate != sr:
        y = soxr.resample(y, sr, rate).astype(np.float32)
    y2 = np.stack([y, 0.9 * y], 1) if channels == 2 else y[:, None]
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo" if channels == 2 else "mono")
        stream.bit_rate = bit_rate
        stream.codec_context.options = {"compression_level": "7"}  # LAME -q 7: quicker, same bit rate
        stream.codec_context.open()
        n, fmt = stream.codec_context.frame_size or 1152, stream.format.name
        for start in range(0, len(y2), n):
            chunk = y2[start : start + n]
            arr = chunk.T if fmt.endswith("p") else chunk.reshape(1, -1)
            if fmt.startswith(("s16", "s32")):
                bits, dtype = (15, np.int16) if fmt.startswith("s16") else (31, np.int32)
                arr = np.round(np.clip(arr, -1, 1).astype(np.float64) * (2**bits - 1)).astype(dtype)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt, layout=stream.layout.name)
            frame.sample_rate, frame.pts = rate, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    tmp.rename(path)


def _encode_song(parts: list[Path], paths: dict[str, Path]) -> None:
    y = np.concatenate([load_audio(p, sr=22050) for p in parts])
    for f, p in paths.items():
        if not p.exists():
            encode_mp3(p, y, 22050, *FORMATS[f])


def build_songs(n: int, cache: Path, data: Path) -> list[dict]:
    """``n`` songs of six clips (3/4 of one genre each, 1/4 mixed), both formats, cached."""
    from concurrent.futures import ProcessPoolExecutor

    root = data / "genres_original"
    clips = {g.name: sorted(g.iterdir()) for g in sorted(root.iterdir()) if g.is_dir()}
    genres = sorted(clips)
    rng = np.random.default_rng(0)
    n_same = n * 3 // 4
    songs = []
    for i in range(n):
        if i < n_same:
            g = genres[i % len(genres)]
            parts = [clips[g][j] for j in rng.choice(len(clips[g]), 6, replace=False)]
            kind = "same"
        else:
            gs = rng.choice(genres, 6, replace=False)
            parts = [clips[g][rng.integers(len(clips[g]))] for g in gs]
            kind = "mixed"
        name = f"{kind}{i:03d}"
        paths = {f: cache / f"{name}-{f}.mp3" for f in FORMATS}
        songs.append({"name": name, "kind": kind, "clips": [p.stem for p in parts], "paths": paths, "parts": parts})
    missing = [s for s in songs if not all(p.exists() for p in s["paths"].values())]
    with ProcessPoolExecutor(default_workers()) as pool:
        list(pool.map(_encode_song, [s["parts"] for s in missing], [s["paths"] for s in missing]))
    return songs


# ----------------------------------------------------------------------------- runs


def timed_pool(paths: list[Path], *, patches: int | None, workers: int) -> dict:
    """Tag ``paths`` with the process pool: results, songs/s after start-up, load averages."""
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    results, stamps, errors = [], [], []
    for path, result in predict_files(paths, workers=workers, patches=patches):
        ok = hasattr(result, "timeline") and result.no_music is None
        results.append(result if ok else None)
        if not ok:
            errors.append(f"{path}: {result if not hasattr(result, 'timeline') else result.no_music}")
        stamps.append(time.perf_counter())
    n = len(paths)
    steady = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 and stamps[-1] > stamps[0] else None
    return {
        "results": results,
        "files": n,
        "wall_s": round(stamps[-1] - t0, 2),
        "startup_and_first_s": round(stamps[0] - t0, 2),
        "files_per_s": round(steady, 3) if steady else None,
        "files_per_s_with_startup": round(n / (stamps[-1] - t0), 3),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "errors_or_no_music": errors,
    }


def windows_of(result) -> tuple[np.ndarray, int]:
    """(window probabilities, complete patches) of a full analysis."""
    labels = list(result.probabilities)
    probs = np.array([[s.probabilities[g] for g in labels] for s in result.timeline])
    complete = sum(1 for s in result.timeline if s.end_s - s.start_s >= PATCH_S - 1e-3)
    return probs, complete


def sampled_mean(
    probs: np.ndarray, complete: int, k: int | None, unsure_in_full: bool = True
) -> tuple[np.ndarray, bool]:
    """The song's probabilities as Predictor.predict_file(patches=k, unsure_in_full=...) gives them,
    and whether they come from the k spread windows (not from every window)."""
    if k is None or k >= len(probs) or k > complete:
        return probs.mean(axis=0), False
    part = probs[spread(complete, k)].mean(axis=0)
    if unsure_in_full and part.max() < CONFIDENT:
        return probs.mean(axis=0), False
    return part, True


def agreement(fulls: list, k: int | None) -> dict:
    top1, top3, conf, top1_sure, plain, sampled = [], [], [], [], [], []
    for result in filter(None, fulls):
        probs, complete = windows_of(result)
        full, (part, was_sampled) = probs.mean(axis=0), sampled_mean(probs, complete, k)
        sampled.append(int(was_sampled))
        plain.append(int(np.argmax(full) == np.argmax(sampled_mean(probs, complete, k, False)[0])))
        top1.append(int(np.argmax(full) == np.argmax(part)))
        if full.max() >= CONFIDENT:
            top1_sure.append(top1[-1])
        top3.append(int(set(np.argsort(-full)[:3]) == set(np.argsort(-part)[:3])))
        conf.append(int((full.max() >= CONFIDENT) == (part.max() >= CONFIDENT)))
    mean = lambda xs: round(float(np.mean(xs)), 4) if xs else None
    return {
        "top1": mean(top1),
        "top3": mean(top3),
        "confident": mean(conf),
        "n": len(top1),
        "top1_of_confident": mean(top1_sure),
        "n_confident": len(top1_sure),
        "top1_never_in_full": mean(plain),
        "share_sampled": mean(sampled),
    }


def check_sampled(timed: list, fulls: list, k: int) -> float:
    """The largest difference between a real sampled run's probabilities and those taken from the full windows."""
    worst = 0.0
    for part, full in zip(timed, fulls):
        if part is None or full is None:
            continue
        probs, complete = windows_of(full)
        expected = sampled_mean(probs, complete, k)[0]
        worst = max(worst, float(np.max(np.abs(np.array(list(part.probabilities.values())) - expected))))
    return worst


# ----------------------------------------------------------------------------- stages


def stage_cpu(paths: list[Path], ks: list[int | None]) -> dict:
    """CPU seconds per song by stage, in this process on one thread, for each k (None: full)."""
    from threadpoolctl import threadpool_limits

    import genrekit.predictor as predictor_module
    from genrekit import audio_pieces
    from genrekit.features.logmel import MelStream
    from genrekit.predictor import Predictor

    spent = {"decode": 0.0, "mel": 0.0, "backbone": 0.0, "head": 0.0}

    def timed(fn, stage):
        def wrapper(*a, **kw):
            t = time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                spent[stage] += time.process_time() - t

        return wrapper

    def timed_stream(*a, **kw):
        blocks = original_stream(*a, **kw)
        while True:
            t = time.process_time()
            try:
                block = next(blocks)
            except StopIteration:
                spent["decode"] += time.process_time() - t
                return
            spent["decode"] += time.process_time() - t
            yield block

    original_stream = predictor_module.stream_audio
    original_pieces = audio_pieces.PieceReader.pieces
    original_frames = MelStream._frames
    out = {}
    with threadpool_limits(limits=1):
        p = Predictor.load(threads=1)
        c = p.classifier
        c.embed = timed(c.embed, "backbone")
        head = c.head

        class Head:
            run = staticmethod(timed(head.run, "head"))

        c.head = Head()
        predictor_module.stream_audio = timed_stream
        audio_pieces.PieceReader.pieces = timed(original_pieces, "decode")
        MelStream._frames = timed(original_frames, "mel")
        try:
            for k in ks:
                for key in spent:
                    spent[key] = 0.0
                total = 0.0
                for path in paths:
                    t = time.process_time()
                    p.predict_file(path, patches=k)
                    total += time.process_time() - t
                row = {s: round(v / len(paths), 4) for s, v in spent.items()}
                row["total"] = round(total / len(paths), 4)
                row["other"] = round(row["total"] - sum(row[s] for s in spent), 4)
                out["full" if k is None else str(k)] = row
        finally:
            predictor_module.stream_audio = original_stream
            audio_pieces.PieceReader.pieces = original_pieces
            MelStream._frames = original_frames
    return out


# ----------------------------------------------------------------------------- report


def outside_paths(limit: int | None) -> list[Path]:
    with open(OUTSIDE / "manifest.csv", newline="") as f:
        return [OUTSIDE / row["path"] for row in csv.DictReader(f)][:limit]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=60)
    ap.add_argument("--timed-songs", type=int, default=24, help="songs each k is timed on")
    ap.add_argument("--stage-songs", type=int, default=3, help="songs the stages are timed on")
    ap.add_argument("--ks", default="4,8,12,16,24,32")
    ap.add_argument("--workers", type=int, default=None, help="default: one per core")
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "genrekit-bench" / "tagging_speed")
    ap.add_argument("--no-outside", action="store_true")
    ap.add_argument("--outside-clips", type=int, default=None, help="the first N outside clips (default: all)")
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = ap.parse_args()
    if args.render:
        data = json.loads((RESULTS / "tagging_speed.json").read_text())
        (RESULTS / "tagging_speed.md").write_text(markdown(data).rstrip() + "\n")
        return
    ks = [int(k) for k in args.ks.split(",")]
    workers = args.workers or default_workers()
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    t = time.perf_counter()
    songs = build_songs(args.songs, args.cache, args.data)
    build_s = time.perf_counter() - t
    print(f"{len(songs)} songs in {args.cache} ({build_s:.0f} s)", flush=True)
    kinds = {
        "same": [i for i, s in enumerate(songs) if s["kind"] == "same"],
        "mixed": [i for i, s in enumerate(songs) if s["kind"] == "mixed"],
    }
    timed_n = min(args.timed_songs, len(songs))
    # spread the timed songs over both kinds
    timed_idx = sorted(set(np.linspace(0, len(songs) - 1, timed_n).astype(int)))

    runs, fulls = {}, {}
    for fmt in FORMATS:
        paths = [s["paths"][fmt] for s in songs] if fmt == "stereo44k" else [songs[i]["paths"][fmt] for i in timed_idx]
        run = timed_pool(paths, patches=None, workers=workers)
        fulls[fmt] = run.pop("results")
        runs[f"{fmt}/full"] = run
        print(fmt, "full", run, flush=True)

    full44 = fulls["stereo44k"]
    agree = {}
    for k in [*ks]:
        row = {"all": agreement(full44, k)}
        for kind, idx in kinds.items():
            row[kind] = agreement([full44[i] for i in idx], k)
        row["mono22k_timed_songs"] = agreement(fulls["mono22k"], k)
        agree[str(k)] = row

    outside = None
    if not args.no_outside and (OUTSIDE / "manifest.csv").is_file():
        run = timed_pool(outside_paths(args.outside_clips), patches=None, workers=workers)
        outside_fulls = run.pop("results")
        runs["outside/full"] = run
        outside = {"windows_per_clip": round(float(np.mean([len(r.timeline) for r in outside_fulls])), 2)}
        for k in ks:
            agree[str(k)]["outside"] = agreement(outside_fulls, k)
        print("outside", run, flush=True)

    def ok(k: int) -> bool:
        a = agree[str(k)]
        return a["all"]["top1"] >= TARGET and (outside is None or a["outside"]["top1"] >= TARGET)

    reached = next((k for k in ks if ok(k)), None)
    chosen = reached or max(ks)

    checks = {}
    for k in ks:
        paths = [songs[i]["paths"]["stereo44k"] for i in timed_idx]
        run = timed_pool(paths, patches=k, workers=workers)
        checks[str(k)] = check_sampled(run.pop("results"), [full44[i] for i in timed_idx], k)
        runs[f"stereo44k/{k}"] = run
        print("stereo44k", k, run, flush=True)
    run = timed_pool([songs[i]["paths"]["mono22k"] for i in timed_idx], patches=chosen, workers=workers)
    checks[f"mono22k/{chosen}"] = check_sampled(run.pop("results"), fulls["mono22k"], chosen)
    runs[f"mono22k/{chosen}"] = run

    stage_paths = [songs[i]["paths"]["stereo44k"] for i in timed_idx[: args.stage_songs]]
    stages = stage_cpu(stage_paths, [None, *ks])
    print("stages", stages, flush=True)

    where = cpu()
    a = agree[str(chosen)]
    summary = {
        "tagging_files_per_s": runs[f"stereo44k/{chosen}"]["files_per_s"],
        "tagging_full_files_per_s": runs["stereo44k/full"]["files_per_s"],
        "tagging_cpu": f"{where['cpu_model']} ({os.cpu_count()} cores; {', '.join(where['vector_extensions'])})",
        "tagging_top1_agreement": a["all"]["top1"],
        "tagging_top1_agreement_same_genre": a["same"]["top1"],
        "tagging_top1_agreement_mixed": a["mixed"]["top1"],
        "tagging_top1_agreement_outside": a["outside"]["top1"] if outside else None,
        "tagging_top3_agreement": a["all"]["top3"],
        "tagging_confident_agreement": a["all"]["confident"],
        "tagging_default_patches": chosen,
    }
    data = {
        **where,
        "workers": workers,
        "songs": len(songs),
        "same_genre_songs": len(kinds["same"]),
        "mixed_songs": len(kinds["mixed"]),
        "timed_songs": len(timed_idx),
        "formats": FORMATS,
        "ks": ks,
        "build_s": round(build_s, 1),
        "k_reaching_target": reached,
        "runs": runs,
        "agreement": agree,
        "outside": outside,
        "sampled_vs_simulated_max_abs_diff": checks,
        "stage_cpu_s_per_song": stages,
        "summary": summary,
        "seconds": round(time.perf_counter() - started, 1),
        "precision_int8": "not measured (see the markdown)",
    }
    write_results("tagging_speed", data, markdown(data))
    update_summary(summary)
    print(summary)


def markdown(d: dict) -> str:
    s, runs, agree = d["summary"], d["runs"], d["agreement"]
    rows = []
    for key, run in runs.items():
        rows.append(
            [
                key,
                run["files"],
                run["files_per_s"],
                run["files_per_s_with_startup"],
                run["startup_and_first_s"],
                run["loadavg_before"][0],
                run["loadavg_after"][0],
            ]
        )
    ag = []
    for k, a in agree.items():
        out = a.get("outside", {})
        ag.append(
            [
                k,
                a["all"]["top1"],
                a["same"]["top1"],
                a["mixed"]["top1"],
                out.get("top1", "-"),
                a["all"]["top3"],
                out.get("top3", "-"),
                a["all"]["confident"],
                out.get("confident", "-"),
                a["mono22k_timed_songs"]["top1"],
                a["all"]["share_sampled"],
                out.get("share_sampled", "-"),
                a["all"]["top1_never_in_full"],
                a["mixed"]["top1_never_in_full"],
                out.get("top1_never_in_full", "-"),
            ]
        )
    st = [
        [k, v["decode"], v["mel"], v["backbone"], v["head"], v["other"], v["total"]]
        for k, v in d["stage_cpu_s_per_song"].items()
    ]
    per_core = s["tagging_files_per_s"] / d["workers"] if s["tagging_files_per_s"] else None
    reached = d.get("k_reaching_target")
    chosen_why = (
        f"the smallest of {d['ks']} with top-1 agreement >= {TARGET} on the joined songs and on the outside clips"
        if reached
        else f"no k of {d['ks']} reaches top-1 agreement >= {TARGET} on the joined songs (the mixed "
        "ones fall short), so the largest measured is named here; the target is not reached"
    )
    cpu_k = d["stage_cpu_s_per_song"].get(str(s["tagging_default_patches"]), {}).get("total")
    cpu_full = d["stage_cpu_s_per_song"]["full"]["total"]
    share = d["agreement"][str(s["tagging_default_patches"])]["all"]["share_sampled"]
    share_pct = round(100 * share)
    mix_cpu = cpu_k and round(cpu_k + (1 - share) * cpu_full, 2)
    return f"""# Tagging speed: k spread patches, seek-decoded, one worker process per core

CPU: {d["cpu_model"]} ({", ".join(d["vector_extensions"])}); {d["workers"]} worker processes
(one onnxruntime thread each, BLAS held to one thread in each). {d["songs"]} three-minute songs
({d["same_genre_songs"]} of six GTZAN clips of one genre, {d["mixed_songs"]} of six genres), as 44.1 kHz
stereo MP3 at 320 kbps and 22 kHz mono MP3 at 128 kbps; {d["seconds"]:.0f} s in all.
**The two cores were shared with other engineers' jobs** (load averages below): the rates are
what this busy machine gave, not the machine's best.

## Headline
- default library settings: **k = {s["tagging_default_patches"]}** patches: {chosen_why};
- `tagging_files_per_s` = **{s["tagging_files_per_s"]}** songs/s (44.1 kHz stereo MP3, k = {s["tagging_default_patches"]},
  {d["workers"]} workers; {per_core and round(per_core, 3)} songs per core-second), against
  `tagging_full_files_per_s` = **{s["tagging_full_files_per_s"]}** for the full analysis;
- CPU time per song, one process on one thread, for a song that keeps its sample: {cpu_k} s at
  k = {s["tagging_default_patches"]} ({cpu_k and round(1 / cpu_k, 2)} songs per core-second), against {cpu_full} s for the full
  analysis ({round(1 / cpu_full, 3)}). An unsure sample costs the full analysis on top: {share_pct} % of
  these songs kept their sample (all mixed songs are unsure), so they average about {mix_cpu} CPU-s per
  song, which is what the pool's rate above shows; the target of 4 songs/s is not reached on this
  song set;
- agreement with the full analysis at k = {s["tagging_default_patches"]}: top genre {s["tagging_top1_agreement"]}
  (same-genre {s["tagging_top1_agreement_same_genre"]}, mixed {s["tagging_top1_agreement_mixed"]}, outside clips
  {s["tagging_top1_agreement_outside"]}), top-3 set {s["tagging_top3_agreement"]}, `confident` {s["tagging_confident_agreement"]}.

## Runs (process pool)
songs/s is counted from the first result to the last (the workers' start-up apart, in its own column).

{md_table(["run", "files", "songs/s", "songs/s with start-up", "start-up + first (s)", "load before", "load after"], rows)}

## Agreement with the full analysis
By default a sample whose top genre is not confident (top probability < {CONFIDENT}) is analysed
whole (`unsure_in_full`): a few windows cannot settle a close race between genres (a song of six
genres). "share sampled" is the share of songs that kept their sample; the last three columns are
the top-1 agreement with every sample kept (`unsure_in_full=False`).
The k windows are taken from the full analysis as the sampled analysis spreads them; the real
sampled runs give the same probabilities (largest difference:
{max(d["sampled_vs_simulated_max_abs_diff"].values()):.2g}). Outside clips last 30 s (about
{(d["outside"] or {}).get("windows_per_clip", "-")} windows): from k = 10 on they are analysed whole.

{md_table(["k", "top-1 all", "same-genre", "mixed", "outside", "top-3 set", "top-3 outside", "confident", "confident outside", "top-1 22 kHz mono", "share sampled", "share sampled outside", "top-1 without the fall-back", "mixed without", "outside without"], ag)}

## CPU seconds per song by stage (one process, one thread, {len(st) and d["timed_songs"] and "a few"} 44.1 kHz stereo songs)
{md_table(["k", "decode", "mel", "backbone", "head", "other (presence, levelling, glue)", "total"], st)}

## The second and third genres
The top-3 set agrees much less than the top genre at small k. A sampled prediction says so:
its `analysed` field reads "k of n windows", its timeline runs are left empty (the windows do not
cover the song), and the schema documents that only the first genre of `top` / `genres` is as stable
as the full analysis's. An unsure sample (where the first genre is itself a close race) is
analysed whole. Who needs the ranked list runs `--full` (or a larger k: see the table).

## int8
Not measured here: static int8 quantisation needs a calibration set and a second model file
(the issue measured 1.3x CPU for it); sampling gives more than that for nothing, so it was left out.
"""


if __name__ == "__main__":
    main()
