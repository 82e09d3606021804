"""An int8 musicnn backbone against the fp32 one: CPU per patch, and agreement with the fp32 full analysis.

1. quantise: ``scripts/quantize_backbone.py``'s static quantisation (QDQ, per-channel), calibrated
   on GTZAN training-split clips that none of the benchmark's songs is made of (never the outside
   set), written outside the repository (``--work``), with its head and a card beside it;
   ``--dynamic`` adds dynamic quantisation (timed only: it is slower than fp32 on a CPU);
2. CPU per patch: the backbone as :mod:`genrekit.runtime` runs it (chunks of
   ``runtime.PATCH_CHUNK`` patches, one onnxruntime thread), on real input patches,
   ``time.process_time``, fp32 and int8 alternated;
3. full analyses, fp32 and int8, of :func:`tagging_speed.build_songs`'s joined songs (44.1 kHz stereo
   MP3, cached in tagging_speed's cache) and of the outside dev set's clips (a check only: nothing
   is chosen, fitted or calibrated on them), in worker processes of one thread each;
4. agreement of the top genre, the top-3 set and ``confident`` with the fp32 full analysis for the
   int8 full analysis and for int8 with the library's default sampling (k =
   ``DEFAULT_PATCHES``, the default escalation, as :func:`tagging_speed.escalated` takes it from the
   windows), same-genre and mixed songs apart; the largest probability difference per window;
5. CPU per song by stage (:func:`tagging_speed.stage_cpu`) for both backbones, and the songs/s
   expected on the cores from where the songs stopped (:func:`tagging_speed.expected_cpu`).

    python benchmarks/int8.py [--songs 60] [--quick] [--dynamic] [--render]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))
import quantize_backbone as qb
from _results import RESULTS, SHARED_DATA, cpu, md_table, update_summary, write_results
from tagging_speed import (
    CONFIDENT,
    ESCALATION,
    TARGET,
    build_songs,
    escalated,
    expected_cpu,
    outside_paths,
    stage_cpu,
    stage_sizes,
    windows_of,
)

from genrekit.runtime import file_sha256
from genrekit.tagging.core import DEFAULT_PATCHES

CACHE = Path(tempfile.gettempdir()) / "genrekit-bench"


# ----------------------------------------------------------------------------- models


def bundled_sha256() -> str | None:
    """SHA-256 of the bundled int8 backbone (``None``: none is shipped)."""
    path = qb.BUNDLED / "musicnn_msd.int8.onnx"
    return file_sha256(path) if path.is_file() else None


def int8_card(work: Path, backbone: Path) -> Path:
    """A card in ``work`` naming the bundled head and the int8 ``backbone`` (their SHA-256 its own)."""
    d = json.loads(qb.CARD.read_text())
    name = backbone.name
    shutil.copy(qb.BUNDLED / d["head"], work / d["head"])
    d["backbones"] = {"msd": name}
    d["sha256"] = {d["head"]: file_sha256(work / d["head"]), name: file_sha256(backbone)}
    card = work / f"int8-{backbone.stem}.onnx.json"
    card.write_text(json.dumps(d, indent=1))
    return card


def predictor(card: Path | None):
    """The bundled model (``card`` None) or the export ``card`` names, one onnxruntime thread."""
    from genrekit.predictor import Predictor
    from genrekit.runtime import OnnxModel

    return Predictor.load(threads=1) if card is None else Predictor(OnnxModel(card, threads=1))


def cpu_per_patch(cards: dict[str, Path | None], patches: np.ndarray, *, repeats: int) -> tuple[dict, dict]:
    """CPU-s per patch of each backbone's embedder (as the runtime batches it) on ``patches``
    ``(n, 96, 187)``, one thread, the median of ``repeats`` alternated runs; and each one's speed-up
    over the first (``fp32``): the median of the ratios within a repeat, which ran side by side."""
    from threadpoolctl import threadpool_limits

    embed = {name: predictor(card).classifier.backend.embed for name, card in cards.items()}
    times: dict[str, list[float]] = {name: [] for name in cards}
    with threadpool_limits(limits=1):
        for fn in embed.values():
            fn(patches[:4])  # warm up
        for _ in range(repeats):
            for name, fn in embed.items():
                t = time.process_time()
                fn(patches)
                times[name].append((time.process_time() - t) / len(patches))
    first = times[next(iter(cards))]
    per_patch = {name: round(float(np.median(ts)), 5) for name, ts in times.items()}
    speedup = {name: round(float(np.median(np.divide(first, ts))), 3) for name, ts in times.items()}
    return per_patch, speedup


def held_out_windows(clips: list[Path], card: Path | None) -> list[np.ndarray]:
    """Every window's probabilities of each of ``clips`` (in this process, one thread)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        p = predictor(card)
        return [windows_of(p.predict_file(c))[0] for c in clips]


def held_out_check(fp32: list[np.ndarray], int8: list[np.ndarray]) -> dict:
    """How close an int8 export's window probabilities are to fp32's."""
    pairs = list(zip(fp32, int8))
    d = np.concatenate([np.abs(a - b).max(axis=1) for a, b in pairs])
    return {
        "clips": len(pairs),
        "clip_top1": round(float(np.mean([np.argmax(a.mean(0)) == np.argmax(b.mean(0)) for a, b in pairs])), 4),
        "window_top1": round(float(np.mean(np.concatenate([a.argmax(1) == b.argmax(1) for a, b in pairs]))), 4),
        "window_max_diff_median": round(float(np.median(d)), 4),
        "window_max_diff_p99": round(float(np.quantile(d, 0.99)), 4),
        "window_max_diff_max": round(float(d.max()), 4),
    }


# ----------------------------------------------------------------------------- full analyses

_WORKER: dict = {}


def _start(cards: dict[str, Path | None]) -> None:
    from threadpoolctl import threadpool_limits

    _WORKER["limits"] = threadpool_limits(limits=1)  # BLAS on one thread in this worker
    _WORKER["predictors"] = {name: predictor(card) for name, card in cards.items()}


def _analyse(path: Path) -> dict | str:
    """Every window's probabilities and the complete patches of ``path`` for each backbone, or why not."""
    out = {}
    for name, p in _WORKER["predictors"].items():
        try:
            result = p.predict_file(path)
        except Exception as exc:  # noqa: BLE001 - a bad file is recorded, the run goes on
            return f"{path.name}: {exc}"
        if result.no_music is not None:
            return f"{path.name}: {result.no_music}"
        out[name] = windows_of(result)
    return out


def full_analyses(paths: list[Path], cards: dict[str, Path | None], *, workers: int) -> tuple[list, list[str]]:
    """Per path, ``{backbone: (window probabilities, complete patches)}`` (``None`` for a bad one), and the errors."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(cards,)) as pool:
        done = list(pool.map(_analyse, paths))
    return [d if isinstance(d, dict) else None for d in done], [d for d in done if isinstance(d, str)]


# ----------------------------------------------------------------------------- agreement


def compare(analyses: list, name: str, k: int | None) -> dict:
    """Agreement with the fp32 full analysis of backbone ``name``'s full analysis (``k`` None) or
    its sampled one (first stage ``k``, the default escalation, decided on its own windows)."""
    top1, top3, conf, stops = [], [], [], []
    for a in filter(None, analyses):
        full = a["fp32"][0].mean(axis=0)
        probs, complete = a[name]
        part, stage, sampled = escalated(probs, complete, k, ESCALATION) if k else (probs.mean(axis=0), 0, 0)
        stops.append((stage, sampled))
        top1.append(int(np.argmax(full) == np.argmax(part)))
        top3.append(int(set(np.argsort(-full)[:3]) == set(np.argsort(-part)[:3])))
        conf.append(int((full.max() >= CONFIDENT) == (part.max() >= CONFIDENT)))
    mean = lambda xs: round(float(np.mean(xs)), 4) if xs else None
    return {"top1": mean(top1), "top3": mean(top3), "confident": mean(conf), "n": len(top1), "stops": stops}


def differences(analyses: list, name: str) -> dict:
    """How far backbone ``name``'s probabilities are from fp32's: per window and per song (the mean)."""
    window, song = [], []
    for a in filter(None, analyses):
        d = np.abs(a[name][0] - a["fp32"][0])
        window += list(d.max(axis=1))
        song.append(float(np.abs(a[name][0].mean(axis=0) - a["fp32"][0].mean(axis=0)).max()))
    if not window:
        return {}
    q = lambda xs, p: round(float(np.quantile(xs, p)), 4)
    return {
        "windows": len(window),
        "window_max": q(window, 1.0),
        "window_p99": q(window, 0.99),
        "window_median": q(window, 0.5),
        "song_max": q(song, 1.0),
        "song_median": q(song, 0.5),
    }


def flips(analyses: list, names: list[str], labels: list[str], name: str) -> list[dict]:
    """The songs whose top genre in backbone ``name``'s full analysis is not fp32's, with fp32's lead."""
    out = []
    for a, song in zip(analyses, names):
        if a is None:
            continue
        full, other = a["fp32"][0].mean(axis=0), a[name][0].mean(axis=0)
        if np.argmax(full) != np.argmax(other):
            first, second = np.sort(full)[::-1][:2]
            out.append(
                {
                    "song": song,
                    "fp32": labels[int(np.argmax(full))],
                    name: labels[int(np.argmax(other))],
                    "fp32_top": round(float(first), 4),
                    "fp32_lead": round(float(first - second), 4),
                }
            )
    return out


# ----------------------------------------------------------------------------- run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=60)
    ap.add_argument("--stage-songs", type=int, default=3, help="songs the stages are timed on")
    ap.add_argument("--per-genre", type=int, default=4, help="calibration clips per genre")
    ap.add_argument(
        "--held-out",
        type=int,
        default=30,
        help="clips the variants are compared on (neither calibrated on nor in the songs)",
    )
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--cache", type=Path, default=CACHE / "tagging_speed", help="tagging_speed's songs")
    ap.add_argument("--work", type=Path, default=CACHE / "int8", help="where the int8 files are written")
    ap.add_argument("--outside-clips", type=int, default=None, help="the first N outside clips (default: all)")
    ap.add_argument("--dynamic", action="store_true", help="also time dynamic quantisation")
    ap.add_argument(
        "--quick", action="store_true", help="a reduced run to check the script: 12 songs, 40 outside clips"
    )
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = ap.parse_args()
    measured = args.work / f"musicnn_msd.{qb.DEFAULT_VARIANT}.onnx"
    if args.render:
        data = json.loads((RESULTS / "int8.json").read_text())
        if "int8_sha256" not in data and measured.is_file():  # a run from before the field
            data["int8_sha256"] = file_sha256(measured)
        data["shipped"] = data.get("int8_sha256") is not None and data["int8_sha256"] == bundled_sha256()
        (RESULTS / "int8.json").write_text(json.dumps(data, indent=2) + "\n")
        (RESULTS / "int8.md").write_text(markdown(data).rstrip() + "\n")
        return
    if args.quick:
        args.songs, args.stage_songs, args.outside_clips, args.held_out = 12, 1, args.outside_clips or 40, 6
    started = time.perf_counter()
    args.cache.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    songs = build_songs(args.songs, args.cache, args.data)
    used = {stem for s in songs for stem in s["clips"]}

    clips = qb.calibration_clips(data=args.data, per_genre=args.per_genre, exclude=used)
    patches = qb.input_patches(clips)
    quantised, cards = {}, {}
    for variant, what in qb.VARIANTS.items():
        path = args.work / f"musicnn_msd.{variant}.onnx"
        quantised[variant] = qb.quantize(out=path, patches=patches, **what)
        cards[variant] = int8_card(args.work, path)
    if args.dynamic:
        path = args.work / "musicnn_msd.dynamic.onnx"
        quantised["dynamic"] = qb.quantize(out=path, patches=None, dynamic=True)
        cards["dynamic"] = int8_card(args.work, path)
    print("quantised", {k: v["int8_ops"] for k, v in quantised.items()}, flush=True)
    per_patch, speedup = cpu_per_patch({"fp32": None, **cards}, patches[:40, 0], repeats=3 if args.quick else 9)
    print("CPU per patch", per_patch, flush=True)
    taken = used | {c.stem for c in clips}
    held_out = qb.calibration_clips(data=args.data, per_genre=-(-args.held_out // 10), exclude=taken, seed=1)
    reference = held_out_windows(held_out, None)
    variants = {v: held_out_check(reference, held_out_windows(held_out, cards[v])) for v in qb.VARIANTS}
    print("variants", variants, flush=True)
    cards = {"fp32": None, "int8": cards[qb.DEFAULT_VARIANT]}

    song_paths = [s["paths"]["stereo44k"] for s in songs]
    joined, errors = full_analyses(song_paths, cards, workers=args.workers)
    print("songs analysed", flush=True)
    outside, outside_errors = full_analyses(outside_paths(args.outside_clips), cards, workers=args.workers)
    print("outside analysed", flush=True)
    groups = {
        "all": joined,
        "same": [a for a, s in zip(joined, songs) if s["kind"] == "same"],
        "mixed": [a for a, s in zip(joined, songs) if s["kind"] == "mixed"],
        "outside": outside,
    }
    runs = {"int8/full": ("int8", None), f"int8/{DEFAULT_PATCHES}": ("int8", DEFAULT_PATCHES)}
    runs[f"fp32/{DEFAULT_PATCHES}"] = ("fp32", DEFAULT_PATCHES)
    agree = {run: {g: compare(a, name, k) for g, a in groups.items()} for run, (name, k) in runs.items()}
    labels = json.loads(qb.CARD.read_text())["labels"]
    outside_names = [p.name for p in outside_paths(args.outside_clips)]

    windows = round(np.mean([len(a["fp32"][0]) for a in filter(None, joined)]))
    sizes = [None, *stage_sizes(DEFAULT_PATCHES, windows, ESCALATION)]
    stage_paths = song_paths[:: max(1, len(song_paths) // args.stage_songs)][: args.stage_songs]
    stages = {
        name: stage_cpu(stage_paths, sizes, load=lambda card=card: predictor(card)) for name, card in cards.items()
    }
    print("stages", stages, flush=True)
    expected = {name: expected_cpu(agree[f"{name}/{DEFAULT_PATCHES}"]["all"]["stops"], stages[name]) for name in cards}
    a = agree[f"int8/{DEFAULT_PATCHES}"]
    keeps = all(
        agree[run][g]["top1"] >= TARGET for run in ("int8/full", f"int8/{DEFAULT_PATCHES}") for g in ("all", "outside")
    )
    where = cpu()
    data = {
        **where,
        "onnxruntime": __import__("onnxruntime").__version__,
        "quick": args.quick,
        "songs": len(songs),
        "same_genre_songs": len(groups["same"]),
        "mixed_songs": len(groups["mixed"]),
        "outside_clips": len(outside),
        "windows_per_song": windows,
        "workers": args.workers,
        "k": DEFAULT_PATCHES,
        "escalation": {"growth": ESCALATION.growth, "z": ESCALATION.z},
        "target": TARGET,
        "quantisation": quantised,
        "variant": qb.DEFAULT_VARIANT,
        "calibration_clips": [c.stem for c in clips],
        "calibration_patches": len(patches),
        "calibration_overlap_with_songs": len(used & {c.stem for c in clips}),
        "held_out_clips": [p.stem for p in held_out],
        "variants_on_held_out_clips": variants,
        "cpu_s_per_patch": per_patch,
        "cpu_speedup_per_patch": speedup,
        "agreement": {
            run: {g: {k: v for k, v in r.items() if k != "stops"} for g, r in rows.items()}
            for run, rows in agree.items()
        },
        "stop_share": {
            run: {g: stop_share(r["stops"]) for g, r in rows.items()}
            for run, rows in agree.items()
            if "full" not in run
        },
        "differences": {"joined": differences(joined, "int8"), "outside": differences(outside, "int8")},
        "flips_full": {
            "joined": flips(joined, [s["name"] for s in songs], labels, "int8"),
            "outside": flips(outside, outside_names, labels, "int8"),
        },
        "stage_cpu_s_per_song": stages,
        "expected_cpu_s_per_song": expected,
        "expected_songs_per_s": {n: v and round(args.workers / v, 3) for n, v in expected.items()},
        "errors": errors + outside_errors,
        "keeps_target": keeps,
        "int8_sha256": file_sha256(measured),
        "shipped": file_sha256(measured) == bundled_sha256(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_results("int8", data, markdown(data))
    if not args.quick:
        update_summary(
            {
                "int8_cpu_speedup": data["cpu_speedup_per_patch"][qb.DEFAULT_VARIANT],
                "int8_top1_agreement": a["all"]["top1"],
            }
        )
    print((RESULTS / "int8.md").read_text())


def stop_share(stops: list[tuple[int, int]]) -> dict[str, float]:
    """Share of songs stopping at each stage (``full``: analysed whole)."""
    at = [st for st, _ in stops]
    return {("full" if st == 0 else str(st)): round(at.count(st) / len(at), 4) for st in sorted(set(at))}


# ----------------------------------------------------------------------------- report


def genres(stems: list[str]) -> str:
    """``blues 4, jazz 3...``: how many of the clips ``stems`` each genre has."""
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem.split(".")[0]] = counts.get(stem.split(".")[0], 0) + 1
    return ", ".join(f"{g} {n}" for g, n in sorted(counts.items(), key=lambda x: -x[1]))


def markdown(d: dict) -> str:
    k, v = d["k"], d["variant"]
    q = d["quantisation"][v]
    per, speed = d["cpu_s_per_patch"], d["cpu_speedup_per_patch"]
    groups = ("all", "same", "mixed", "outside")
    ag = [
        [run, *(d["agreement"][run][g]["top1"] for g in groups), *(d["agreement"][run][g]["top3"] for g in groups)]
        + [d["agreement"][run][g]["confident"] for g in ("all", "outside")]
        for run in d["agreement"]
    ]
    stops = [
        [run, g, *(share.get(st, 0.0) for st in ("1", "2", "3", "full"))]
        for run, rows in d["stop_share"].items()
        for g, share in rows.items()
        if g != "all"
    ]
    st = [
        [name, size, v["decode"], v["mel"], v["backbone"], v["head"], v["other"], v["total"]]
        for name, rows in d["stage_cpu_s_per_song"].items()
        for size, v in rows.items()
    ]
    diff = [[g, *v.values()] for g, v in d["differences"].items() if v]
    flip_rows = [
        [g, f["song"], f["fp32"], f["int8"], f["fp32_top"], f["fp32_lead"]]
        for g, fs in d["flips_full"].items()
        for f in fs
    ]
    exp, rate = d["expected_cpu_s_per_song"], d["expected_songs_per_s"]
    a, full = d["agreement"][f"int8/{k}"], d["agreement"]["int8/full"]
    tried = [
        [
            name,
            d["quantisation"][name]["method"].split("calibration")[-1].strip(", ") or "everything",
            per[name],
            speed[name],
            *r.values(),
        ]
        for name, r in d["variants_on_held_out_clips"].items()
    ]
    ops = ", ".join(f"{op} x{n}" for op, n in q["int8_ops"].items())
    rest = ", ".join(f"{op} x{n}" for op, n in q["ops_after_optimisation"].items() if op not in q["int8_ops"])
    dynamic = d["quantisation"].get("dynamic")
    dyn_line = (
        f"\nDynamic quantisation ({dynamic['method']}; int8 operators: "
        f"{', '.join(f'{op} x{n}' for op, n in dynamic['int8_ops'].items())}) takes {per['dynamic']} CPU-s per patch, "
        f"{speed['dynamic']}x fp32's: onnxruntime's ConvInteger on a CPU is slower than its fp32 convolution, so it "
        "was measured no further.\n"
        if dynamic
        else ""
    )
    head = (
        "**A quick run (--quick): a check of the script on a reduced set, not figures to quote.**\n\n"
        if d.get("quick")
        else ""
    )
    verdict = (
        f"int8 keeps the target (top-1 agreement >= {d['target']} with the fp32 full analysis on the joined songs and "
        "the outside clips, sampled and whole)"
        if d["keeps_target"]
        else f"int8 does not keep the target (top-1 agreement >= {d['target']} with the fp32 full analysis on the "
        "joined songs and on the outside clips, with the default sampling and analysed whole)"
    )
    shipped = (
        "It is shipped as `--precision int8` on `genrekit predict` and `genrekit tag` (the bundled "
        "`musicnn_msd.int8.onnx` is the file measured here: the same SHA-256); fp32 stays the default."
        if d["shipped"]
        else "So `--precision int8` is not shipped: only `scripts/quantize_backbone.py` and this benchmark are."
    )
    return f"""# int8 musicnn backbone against fp32

{head}CPU: {d["cpu_model"]} ({", ".join(d["vector_extensions"])}); onnxruntime {d["onnxruntime"]}.
{d["songs"]} three-minute songs of `benchmarks/tagging_speed.py` (44.1 kHz stereo MP3 at 320 kbps;
{d["same_genre_songs"]} of six GTZAN clips of one genre, {d["mixed_songs"]} of six genres; about {d["windows_per_song"]}
windows each) and {d["outside_clips"]} clips of the outside dev set (a check only: nothing is chosen, fitted or
calibrated on them); {d["seconds"]:.0f} s in all.

## Headline
- {verdict}. {shipped}
- CPU per patch, one thread, as `genrekit.runtime` batches it: fp32 {per["fp32"]} s, int8 {per[v]} s:
  **{speed[v]}x**; expected CPU per song with the default sampling (k = {k}): fp32 {exp["fp32"]} s,
  int8 {exp["int8"]} s, i.e. {rate["fp32"]} against {rate["int8"]} songs/s on {d["workers"]} cores;
- top genre as the fp32 full analysis's, int8 with the default sampling: **{a["all"]["top1"]}** of the joined
  songs (same-genre {a["same"]["top1"]}, mixed {a["mixed"]["top1"]}), outside clips {a["outside"]["top1"]};
  int8 analysed whole: {full["all"]["top1"]} (same-genre {full["same"]["top1"]}, mixed {full["mixed"]["top1"]}),
  outside {full["outside"]["top1"]}.

## The int8 file
Variant `{v}`: {q["method"]}, after onnxruntime's pre-processing; calibrated on {d["calibration_patches"]}
input patches of {len(d["calibration_clips"])} GTZAN clips ({d["calibration_overlap_with_songs"]} of them in the
benchmark's songs; none outside); {q["bytes"] / 1e6:.2f} MB. Once onnxruntime has optimised it, these
operators run in int8: {ops}; the rest stay in float: {rest}. (musicnn normalises after its ReLUs, so its
batch norms cannot be folded into the convolutions: each int8 stretch ends in a dequantise.)
{dyn_line}
## What was tried
Static quantisation of more or less of the backbone (`scripts/quantize_backbone.py`'s `VARIANTS`),
each compared with fp32 on {len(d["held_out_clips"])} GTZAN clips (30 s) neither calibrated on nor in the songs (the
variant was chosen on these, never on the outside clips): the top genre of the clip and of each
window, and the largest probability difference per window. CPU per patch: median of alternated
runs on 40 real input patches, `time.process_time`, one onnxruntime thread, batches as the runtime's;
speed-up: the median ratio of fp32's time to the variant's within a round (they ran side by side).

{md_table(["variant", "what", "CPU-s per patch", "speed-up", "clips", "clip top-1", "window top-1", "window diff median", "window diff p99", "window diff max"], tried)}

fp32: {per["fp32"]} CPU-s per patch. The variant measured below and shipped is the script's default,
`{v}` (set from an earlier comparison of these variants on GTZAN clips): the timbral convolutions
hold 81 % of the backbone's 2.8 GFLOP per patch, the temporal ones 15 %, the mid-end 4 %, so
quantising those too saves little more CPU while it moves the probabilities more (the near-tie
mixed songs are what a precision change flips first).

## Agreement with the fp32 full analysis
Rows: backbone / first stage k (full: every window); the sampled rows take the windows from that
backbone's full analysis as the sampled analysis chooses them (default escalation: growth
{d["escalation"]["growth"]}, z = {d["escalation"]["z"]}, decided on that backbone's own windows); fp32/{k} is the shipped fp32 default,
for reference.

{md_table(["run", "top-1 all", "same-genre", "mixed", "outside", "top-3 all", "top-3 same", "top-3 mixed", "top-3 outside", "confident", "confident outside"], ag)}

Where the sampled analyses stopped (share of songs at stage 1: k windows, 2: 3k, 3: 9k, or whole):

{md_table(["run", "songs", "stage 1", "stage 2", "stage 3", "whole"], stops)}

## How far int8's probabilities are from fp32's
Largest absolute difference of any genre's probability, per window and per song (the mean of its windows).

{md_table(["set", "windows", "window max", "window p99", "window median", "song max", "song median"], diff)}

Songs and clips whose top genre the int8 full analysis changes, with the fp32 full analysis's top
probability and its lead over the runner-up:

{md_table(["set", "song", "fp32", "int8", "fp32 top", "fp32 lead"], flip_rows) if flip_rows else "none."}

## Caveats
- The songs use most GTZAN clips of eight genres, so few are left for calibration
  ({len(d["calibration_clips"])}: {genres(d["calibration_clips"])}) and for comparing the variants
  ({len(d["held_out_clips"])}: {genres(d["held_out_clips"])}): the variant was chosen on few clips; the
  agreement above, on every song and outside clip, is what decides.
- The cores were shared with other jobs: CPU time (`time.process_time`) moves with the load, so
  the speed-ups are the median of side-by-side rounds, and the per-song figures come from one pass.
- Top-3 sets and `confident` flags are compared too: the int8 full analysis keeps fewer top-3 sets
  than its top genres (the third genre is often a near tie).

## CPU seconds per song
By stage, one process on one thread, k windows without escalation (tagging_speed's `stage_cpu`):

{md_table(["backbone", "windows", "decode", "mel", "backbone", "head", "other", "total"], st)}
"""


if __name__ == "__main__":
    main()
