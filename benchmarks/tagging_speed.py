"""Tagging speed and agreement: k spread patches, more in stages while unsettled, seek-decoded, in
worker processes, against the full analysis.

1. songs: ``--songs`` three-minute songs (three quarters of them six GTZAN clips of one genre
   joined, the rest six clips of six genres), encoded as 44.1 kHz stereo MP3 at 320 kbps and as
   22 kHz mono MP3 at 128 kbps with PyAV (LAME), cached outside the repository (``--cache``);
2. full: every song of both formats analysed whole (every window) by the process pool
   (:func:`genrekit.workers.predict_files`, one worker per core), timed;
3. agreement: for each first stage k, the song's probabilities as :func:`genrekit.sampling.analyse_sampled`
   gives them, taken from the full analysis's windows (the same windows: the timed runs below
   check it): k spread windows, then 3k, 9k... while :func:`genrekit.sampling.settled` says no, then
   every window (the library default, :class:`genrekit.escalation.Escalation`), and k alone (no
   escalation) beside it; top genre, top-3 set and ``confident`` compared with the full analysis,
   same-genre and mixed songs apart, and on the outside dev set's clips (a check only: nothing is
   chosen or fitted on them); the share of songs stopping at each stage;
4. the k to recommend: of those whose top-1 agreement on the joined songs is >= 0.97, the one of
   least expected CPU per song (the stage shares times the CPU of each stage, item 5); each k
   timed on ``--timed-songs`` songs with the pool, with the default escalation;
5. CPU per song by stage (decode, mel, backbone, head) for every stage size, one process on one thread.

The cores may be shared with other jobs: the load average is recorded before and after each
timed run. ``--quick`` runs a reduced set (12 songs, k = 4 and 8, 40 outside clips) to check the
script, not to quote.

    python benchmarks/tagging_speed.py [--songs 60] [--timed-songs 24] [--ks 2,3,4,6,8,12] [--quick]
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
from genrekit.escalation import Escalation
from genrekit.presence import PresenceConfig
from genrekit.sampling import settled, spread, too_short
from genrekit.tagging.core import DEFAULT_PATCHES
from genrekit.workers import default_workers, predict_files

OUTSIDE = SHARED_DATA.parent / "outside"
FORMATS = {"stereo44k": (44100, 2, 320_000), "mono22k": (22050, 1, 128_000)}
TARGET = 0.97
CONFIDENT = PresenceConfig().confident
PATCH_S = 187 * 256 / 16000
ESCALATION = Escalation()  # the library default
ALTERNATIVE = Escalation(z=3.0)  # reported beside it: the stricter test


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


def build_outside_songs(cache: Path) -> list[dict]:
    """Three-minute songs of six outside clips of one label (44.1 kHz stereo only), cached: real
    recordings from outside GTZAN at a song's length (a check: nothing is chosen on them)."""
    from concurrent.futures import ProcessPoolExecutor

    by_label: dict[str, list[Path]] = {}
    with open(OUTSIDE / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            by_label.setdefault(row["genre"], []).append(OUTSIDE / row["path"])
    songs = []
    for label, clips in sorted(by_label.items()):
        for j in range(len(clips) // 6):
            name = f"outside-{label}{j}"
            paths = {"stereo44k": cache / f"{name}-stereo44k.mp3"}
            songs.append(
                {"name": name, "kind": "outside", "label": label, "parts": clips[6 * j : 6 * j + 6], "paths": paths}
            )
    missing = [s for s in songs if not s["paths"]["stereo44k"].exists()]
    with ProcessPoolExecutor(default_workers()) as pool:
        list(pool.map(_encode_song, [s["parts"] for s in missing], [s["paths"] for s in missing]))
    return songs


# ----------------------------------------------------------------------------- runs


def timed_pool(
    paths: list[Path], *, patches: int | None, workers: int, escalation: Escalation | None = ESCALATION
) -> dict:
    """Tag ``paths`` with the process pool: results, songs/s after start-up, load averages."""
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    results, stamps, errors = [], [], []
    for path, result in predict_files(paths, workers=workers, patches=patches, escalation=escalation):
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


def escalated(
    probs: np.ndarray, complete: int, k: int | None, escalation: Escalation | None
) -> tuple[np.ndarray, int, int]:
    """The song's probabilities as Predictor.predict_file(patches=k, escalation=...) gives them, the
    stage it stopped at (1: k windows, 2: growth x k...; 0: every window) and the windows the
    sampled stages analysed (those of the last one: they nest)."""
    total, done, stage = len(probs), set(), 1
    if k is not None and too_short(total, k=k, escalation=escalation):
        return probs.mean(axis=0), 0, 0
    while k is not None and k < total and k <= complete:
        done |= set(spread(complete, k))
        part = probs[sorted(done)]
        if escalation is None or settled(part, n=total, z=escalation.z):
            return part.mean(axis=0), stage, len(done)
        k, stage = k * escalation.growth, stage + 1
        while k < total and not settled(part, n=total, z=escalation.z, m=k):
            k, stage = k * escalation.growth, stage + 1
    return probs.mean(axis=0), 0, len(done)


def stage_sizes(k: int, windows: int, escalation: Escalation) -> list[int]:
    """The windows analysed at each sampled stage of a song of ``windows`` windows."""
    sizes = []
    while k < windows:
        sizes.append(k)
        k *= escalation.growth
    return sizes


def agreement(fulls: list, k: int | None, escalation: Escalation | None) -> dict:
    top1, top3, conf, top1_sure, stages = [], [], [], [], []
    for result in filter(None, fulls):
        probs, complete = windows_of(result)
        full, (part, stage, sampled) = probs.mean(axis=0), escalated(probs, complete, k, escalation)
        stages.append((stage, sampled))
        top1.append(int(np.argmax(full) == np.argmax(part)))
        if full.max() >= CONFIDENT:
            top1_sure.append(top1[-1])
        top3.append(int(set(np.argsort(-full)[:3]) == set(np.argsort(-part)[:3])))
        conf.append(int((full.max() >= CONFIDENT) == (part.max() >= CONFIDENT)))
    mean = lambda xs: round(float(np.mean(xs)), 4) if xs else None
    at = [st for st, _ in stages]
    shares = {("full" if st == 0 else str(st)): mean([int(x == st) for x in at]) for st in sorted(set(at))}
    return {
        "top1": mean(top1),
        "top3": mean(top3),
        "confident": mean(conf),
        "n": len(top1),
        "top1_of_confident": mean(top1_sure),
        "n_confident": len(top1_sure),
        "stop_share": shares,
        "stops": stages,
    }


def check_sampled(timed: list, fulls: list, k: int) -> float:
    """The largest difference between a real run's probabilities (the default escalation) and those
    taken from the full analysis's windows."""
    worst = 0.0
    for part, full in zip(timed, fulls):
        if part is None or full is None:
            continue
        probs, complete = windows_of(full)
        expected = escalated(probs, complete, k, ESCALATION)[0]
        worst = max(worst, float(np.max(np.abs(np.array(list(part.probabilities.values())) - expected))))
    return worst


def expected_cpu(stops: list[tuple[int, int]], stages: dict) -> float | None:
    """CPU-s per song expected from where each song stopped: a song costs the analysis of the
    windows its sampled stages analysed (they nest), one analysed whole the full analysis on top,
    less the backbone of the windows already analysed (they are not embedded again)."""
    cost = lambda m: 0.0 if m == 0 else stages.get(str(m), {}).get("total")
    backbone = lambda m: 0.0 if m == 0 else stages.get(str(m), {}).get("backbone", 0.0)
    each = [(cost(sampled), cost("full") - backbone(sampled) if stage == 0 else 0.0) for stage, sampled in stops]
    if not each or any(c is None for pair in each for c in pair):
        return None
    return round(float(np.mean([a + b for a, b in each])), 4)


# ----------------------------------------------------------------------------- stages


def stage_cpu(paths: list[Path], ks: list[int | None], *, load=None) -> dict:
    """CPU seconds per song by stage, in this process on one thread, for k windows (None: full), no
    escalation; ``load()`` gives the predictor (default: the bundled model on one thread)."""
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
        p = load() if load else Predictor.load(threads=1)
        backend = p.classifier.backend  # the ONNX backend: its embedder and head session
        backend.embed = timed(backend.embed, "backbone")
        head = backend.head

        class Head:
            run = staticmethod(timed(head.run, "head"))

        backend.head = Head()
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
                    p.predict_file(path, patches=k, escalation=None)
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
    ap.add_argument("--ks", default="2,3,4,6,8,12", help="first stages to measure")
    ap.add_argument("--workers", type=int, default=None, help="default: one per core")
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "genrekit-bench" / "tagging_speed")
    ap.add_argument("--no-outside", action="store_true")
    ap.add_argument("--outside-clips", type=int, default=None, help="the first N outside clips (default: all)")
    ap.add_argument("--quick", action="store_true", help="a reduced run to check the script: 12 songs, k = 4, 8")
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = ap.parse_args()
    if args.render:
        data = json.loads((RESULTS / "tagging_speed.json").read_text())
        (RESULTS / "tagging_speed.md").write_text(markdown(data).rstrip() + "\n")
        return
    if args.quick:
        args.songs, args.timed_songs, args.stage_songs, args.ks = 12, 6, 1, "4,8"
        args.outside_clips = args.outside_clips or 40
    ks = [int(k) for k in args.ks.split(",")]
    if DEFAULT_PATCHES not in ks:
        ks = sorted({*ks, DEFAULT_PATCHES})
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
    windows = round(np.mean([len(r.timeline) for r in filter(None, full44)]))
    outside_fulls = None
    if not args.no_outside and (OUTSIDE / "manifest.csv").is_file():
        run = timed_pool(outside_paths(args.outside_clips), patches=None, workers=workers)
        outside_fulls = run.pop("results")
        runs["outside/full"] = run
        print("outside", run, flush=True)
    outside_song_fulls = None
    if not args.no_outside and (OUTSIDE / "manifest.csv").is_file():
        outside_songs = build_outside_songs(args.cache)
        outside_song_paths = [s["paths"]["stereo44k"] for s in outside_songs]
        run = timed_pool(outside_song_paths, patches=None, workers=workers)
        outside_song_fulls = run.pop("results")
        runs["outside songs/full"] = run
        print("outside songs", run, flush=True)
    schemes = {"default": ESCALATION, "z3": ALTERNATIVE, "k only": None}
    agree = {}
    for k in ks:
        for name, esc in schemes.items():
            row = {"all": agreement(full44, k, esc)}
            for kind, idx in kinds.items():
                row[kind] = agreement([full44[i] for i in idx], k, esc)
            row["mono22k_timed_songs"] = agreement(fulls["mono22k"], k, esc)
            if outside_fulls is not None:
                row["outside"] = agreement(outside_fulls, k, esc)
            if outside_song_fulls is not None:
                row["outside_songs"] = agreement(outside_song_fulls, k, esc)
            agree[f"{k}/{name}"] = row

    sizes = sorted({m for k in ks for m in stage_sizes(k, windows, ESCALATION)} | set(ks))
    stage_paths = [songs[i]["paths"]["stereo44k"] for i in timed_idx[: args.stage_songs]]
    stages = stage_cpu(stage_paths, [None, *sizes])
    print("stages", stages, flush=True)
    cpu_per_song = {k: expected_cpu(agree[f"{k}/default"]["all"]["stops"], stages) for k in ks}
    # sizing a library: the expected CPU per song of each kind at the default
    by_kind = {
        kind: expected_cpu(agree[f"{DEFAULT_PATCHES}/default"][kind]["stops"], stages)
        for kind in ("same", "mixed", "outside_songs")
        if kind in agree[f"{DEFAULT_PATCHES}/default"]
    }

    reaching = [k for k in ks if agree[f"{k}/default"]["all"]["top1"] >= TARGET]
    recommended = min(reaching, key=lambda k: cpu_per_song[k] or float("inf")) if reaching else None

    checks = {}
    for k in ks:
        paths = [songs[i]["paths"]["stereo44k"] for i in timed_idx]
        run = timed_pool(paths, patches=k, workers=workers)
        checks[str(k)] = check_sampled(run.pop("results"), [full44[i] for i in timed_idx], k)
        runs[f"stereo44k/{k}"] = run
        print("stereo44k", k, run, flush=True)
    if outside_song_fulls is not None:
        run = timed_pool(outside_song_paths, patches=DEFAULT_PATCHES, workers=workers)
        checks[f"outside songs/{DEFAULT_PATCHES}"] = check_sampled(
            run.pop("results"), outside_song_fulls, DEFAULT_PATCHES
        )
        runs[f"outside songs/{DEFAULT_PATCHES}"] = run
    run = timed_pool([songs[i]["paths"]["mono22k"] for i in timed_idx], patches=DEFAULT_PATCHES, workers=workers)
    checks[f"mono22k/{DEFAULT_PATCHES}"] = check_sampled(run.pop("results"), fulls["mono22k"], DEFAULT_PATCHES)
    runs[f"mono22k/{DEFAULT_PATCHES}"] = run

    where = cpu()
    a = agree[f"{DEFAULT_PATCHES}/default"]
    summary = {
        "tagging_files_per_s": runs[f"stereo44k/{DEFAULT_PATCHES}"]["files_per_s"],
        "tagging_full_files_per_s": runs["stereo44k/full"]["files_per_s"],
        "tagging_cpu": f"{where['cpu_model']} ({os.cpu_count()} cores; {', '.join(where['vector_extensions'])})",
        "tagging_top1_agreement": a["all"]["top1"],
        "tagging_top1_agreement_same_genre": a["same"]["top1"],
        "tagging_top1_agreement_mixed": a["mixed"]["top1"],
        "tagging_top1_agreement_outside": a["outside"]["top1"] if outside_fulls is not None else None,
        "tagging_top1_agreement_outside_songs": a["outside_songs"]["top1"] if outside_song_fulls is not None else None,
        "tagging_outside_songs_files_per_s": runs.get(f"outside songs/{DEFAULT_PATCHES}", {}).get("files_per_s"),
        "tagging_top3_agreement": a["all"]["top3"],
        "tagging_confident_agreement": a["all"]["confident"],
        "tagging_default_patches": DEFAULT_PATCHES,
        "tagging_cpu_s_per_song": cpu_per_song[DEFAULT_PATCHES],
    }
    if args.quick:
        summary = {}  # a check of the script: nothing to quote
    data = {
        **where,
        "workers": workers,
        "songs": len(songs),
        "same_genre_songs": len(kinds["same"]),
        "mixed_songs": len(kinds["mixed"]),
        "timed_songs": len(timed_idx),
        "formats": FORMATS,
        "ks": ks,
        "windows_per_song": windows,
        "escalation": {n: e and vars(e) for n, e in schemes.items()},
        "build_s": round(build_s, 1),
        "k_recommended": recommended,
        "k_reaching_target": reaching,
        "runs": runs,
        "agreement": {
            k: {g: {n: v for n, v in x.items() if n != "stops"} for g, x in row.items()} for k, row in agree.items()
        },
        "outside": {
            "windows_per_clip": round(float(np.mean([len(r.timeline) for r in filter(None, outside_fulls)])), 2)
        }
        if outside_fulls is not None
        else None,
        "expected_cpu_s_per_song": {str(k): v for k, v in cpu_per_song.items()},
        "expected_cpu_s_per_song_by_kind": by_kind,
        "outside_songs": len(outside_song_fulls) if outside_song_fulls is not None else 0,
        "sampled_vs_simulated_max_abs_diff": checks,
        "stage_cpu_s_per_song": stages,
        "summary": summary or {"quick": True},
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "precision_int8": "not measured (see the markdown)",
    }
    if args.quick:
        out = Path(tempfile.gettempdir()) / "genrekit-bench" / "tagging_speed_quick.md"
        out.write_text(markdown(data))
        (out.with_suffix(".json")).write_text(json.dumps(data, indent=1, default=str))
        print(f"quick run: {out} (benchmarks/results and summary.json left as they are)")
        return
    write_results("tagging_speed", data, markdown(data))
    update_summary(summary)
    print(summary)


def markdown(d: dict) -> str:
    runs, agree, k0 = d["runs"], d["agreement"], DEFAULT_PATCHES
    d["summary"] if not d.get("quick") else {}
    rows = [
        [
            key,
            run["files"],
            run["files_per_s"],
            run["files_per_s_with_startup"],
            run["startup_and_first_s"],
            run["loadavg_before"][0],
            run["loadavg_after"][0],
        ]
        for key, run in runs.items()
    ]
    ag, stops = [], []
    for key, a in agree.items():
        out, songs_out = a.get("outside", {}), a.get("outside_songs", {})
        ag.append(
            [
                key,
                a["all"]["top1"],
                a["same"]["top1"],
                a["mixed"]["top1"],
                out.get("top1", "-"),
                songs_out.get("top1", "-"),
                a["all"]["top3"],
                a["same"]["top3"],
                a["mixed"]["top3"],
                out.get("top3", "-"),
                a["all"]["confident"],
                out.get("confident", "-"),
                a["mono22k_timed_songs"]["top1"],
            ]
        )
        if key.endswith("/k only"):
            continue
        for group in ("same", "mixed", "outside", "outside_songs"):
            if group in a:
                share = a[group]["stop_share"]
                stops.append([key, group, *(share.get(st, 0.0) for st in ("1", "2", "3", "full"))])
    st = [
        [k, v["decode"], v["mel"], v["backbone"], v["head"], v["other"], v["total"]]
        for k, v in d["stage_cpu_s_per_song"].items()
    ]
    exp = [
        [k, v, v and round(1 / v, 2), runs.get(f"stereo44k/{k}", {}).get("files_per_s")]
        for k, v in d["expected_cpu_s_per_song"].items()
    ]
    kind_names = {"same": "same-genre GTZAN songs", "mixed": "six-genre GTZAN songs", "outside_songs": "outside songs"}
    sizing = [
        [kind_names[kind], v, v and round(1 / v, 2), v and round(3600 / v)]
        for kind, v in d.get("expected_cpu_s_per_song_by_kind", {}).items()
    ]
    esc = d["escalation"]["default"]
    rate = runs.get(f"stereo44k/{k0}", {}).get("files_per_s")
    per_core = rate and round(rate / d["workers"], 3)
    rec = d.get("k_recommended")
    rec_line = (
        f"the measurement recommends k = {rec}: of the first stages with top-1 agreement >= {TARGET} on the "
        f"joined songs ({d['k_reaching_target']}), the one of least expected CPU per song"
        if rec is not None
        else f"no first stage of {d['ks']} reaches top-1 agreement >= {TARGET} on the joined songs"
    )
    if rec is not None and rec != k0:
        more = d["expected_cpu_s_per_song"][str(k0)] / d["expected_cpu_s_per_song"][str(rec)] - 1
        rec_line += (
            f"; the shipped default is k = {k0} (genrekit.tagging.core.DEFAULT_PATCHES), {more:.0%} more CPU "
            "per song: a few % is within the noise of the stage timings"
        )
    head = (
        "**A quick run (--quick): a check of the script on a reduced set, not figures to quote.**\n\n"
        if d.get("quick")
        else ""
    )
    a = agree[f"{k0}/default"]
    out1 = a.get("outside", {}).get("top1", "-")
    songs1 = a.get("outside_songs", {}).get("top1", "-")
    return f"""# Tagging speed: k spread patches, more in stages while unsettled, one worker process per core

{head}CPU: {d["cpu_model"]} ({", ".join(d["vector_extensions"])}); {d["workers"]} worker processes
(one onnxruntime thread each, BLAS held to one thread in each). {d["songs"]} three-minute songs
({d["same_genre_songs"]} of six GTZAN clips of one genre, {d["mixed_songs"]} of six genres; about
{d["windows_per_song"]} windows each), as 44.1 kHz stereo MP3 at 320 kbps and 22 kHz mono MP3 at 128 kbps;
{d["seconds"]:.0f} s in all. The load averages before and after each timed run are in the runs' table.

## Headline
- library default: **k = {k0}** spread windows, then {k0 * esc["growth"]}, {k0 * esc["growth"] ** 2}... while the top
  genre is not settled (its mean lead over the runner-up, window by window, more than z = {esc["z"]} standard
  errors with the finite-population correction), then every window; {rec_line};
- songs/s, 44.1 kHz stereo MP3, {d["workers"]} workers: **{rate}** at the default ({per_core} songs per
  core-second), against **{runs["stereo44k/full"]["files_per_s"]}** for the full analysis (target: 4 songs/s);
- expected CPU per song at the default, one process on one thread: {d["expected_cpu_s_per_song"].get(str(k0))} s
  (from where the songs stopped and the CPU of each stage), against {d["stage_cpu_s_per_song"]["full"]["total"]} s
  for the full analysis;
- agreement with the full analysis at the default: top genre {a["all"]["top1"]} (same-genre {a["same"]["top1"]},
  mixed {a["mixed"]["top1"]}, outside clips {out1}, outside songs {songs1}: checks, not chosen on), top-3 set {a["all"]["top3"]},
  `confident` {a["all"]["confident"]}.

## Runs (process pool, the default escalation)
songs/s is counted from the first result to the last (the workers' start-up apart, in its own column).

{md_table(["run", "files", "songs/s", "songs/s with start-up", "start-up + first (s)", "load before", "load after"], rows)}

## Agreement with the full analysis
Rows: first stage k / escalation (default: growth {esc["growth"]}, z = {esc["z"]}; z3: the same with z = 3;
k only: the k windows, never more). The windows are taken from the full analysis as the sampled
analysis chooses them; the real runs give the same probabilities (largest difference:
{max(d["sampled_vs_simulated_max_abs_diff"].values()):.2g}). Outside clips last 30 s (about
{(d["outside"] or {}).get("windows_per_clip", "-")} windows): from k = 10 on they are analysed whole.

{md_table(["k / escalation", "top-1 all", "same-genre", "mixed", "outside", "outside songs", "top-3 all", "top-3 same", "top-3 mixed", "top-3 outside", "confident", "confident outside", "top-1 22 kHz mono"], ag)}

## Where the songs stopped
Share of songs whose analysis stopped at stage 1 (k windows), 2 ({esc["growth"]}k), 3 ({esc["growth"] ** 2}k) or
was analysed whole.

{md_table(["k / escalation", "songs", "stage 1", "stage 2", "stage 3", "whole"], stops)}

## CPU seconds per song
By stage, one process on one thread, {len(st) and "a few"} 44.1 kHz stereo songs, k windows without escalation:

{md_table(["windows", "decode", "mel", "backbone", "head", "other (presence, levelling, glue)", "total"], st)}

Expected per song with the default escalation (each song costs the stage it stopped at; one
analysed whole costs its last sampled stage and the full analysis less the backbone of the windows
already analysed), against the pool's rate:

{md_table(["first stage k", "CPU-s per song", "songs per core-second", "pool songs/s"], exp)}

## Sizing a library
Expected CPU per song at the default (k = {k0}), by kind of song: a library of songs that each hold
one genre runs at the first row's rate, one of medleys at the second's. Outside songs are six
clips of one label from `../shared/data/outside` joined ({d.get("outside_songs", 0)} songs: real
recordings at a song's length, measured only); their pool rate, timed: {runs.get(f"outside songs/{k0}", {}).get("files_per_s", "-")} songs/s.

{md_table(["songs", "CPU-s per song", "songs per core-second", "songs per core-hour"], sizing)}

## The second and third genres
The top-3 set agrees much less than the top genre at small k: the escalation settles the first
genre only. A sampled prediction says so: its `analysed` field reads "m of n windows", its timeline
runs are left empty, and the schema documents that only the first genre of `top` / `genres` is as
stable as the full analysis's. Who needs the ranked list runs `--full`.

## int8
Measured apart, the same way (the same songs, the outside clips, the default sampling):
`benchmarks/int8.py`, results in `int8.md`; shipped as `--precision int8`, fp32 stays the default.
"""


if __name__ == "__main__":
    main()
