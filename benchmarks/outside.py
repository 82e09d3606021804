"""Issue 17: the bundled model (or any checkpoint) on music that is not GTZAN, through ``genrekit predict``.

Runs the real CLI (``--format jsonl -o``) on ``../shared/data/outside`` (``manifest.csv``: 213
clips; eight GTZAN genres plus ``other``, electronic music that fits none of the ten) and on a few
synthetic signals generated here (sine, sweep, clicks, a voice from espeak-ng when installed).
The outside set is for measuring and choosing only: nothing here fits anything on it.

Reports balanced accuracy over the eight genres present, per-genre recall with counts, top-3
accuracy, the confusion matrix (PNG), how often ``confident`` predictions are right and how many
are flagged, the expected calibration error with a reliability diagram (PNG), on ``other`` the
share flagged unsure (not confident, or no music), and what the synthetic signals get.

Writes results/outside.{json,md} (``--name`` for another checkpoint), plots under results/plots/,
and, for the bundled model only, the summary keys ``outside_balanced_acc``,
``outside_confident_precision``, ``outside_confident_share``, ``outside_ece``,
``outside_other_unsure_share``, ``outside_top3_acc`` and ``synthetic_confident``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _results import RESULTS, SHARED_DATA, md_table, update_summary, write_results

OUTSIDE = Path(os.environ.get("GENREKIT_OUTSIDE", SHARED_DATA.parent / "outside"))
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
UNSURE = "unsure"  # the confusion matrix's column for a clip without a confident genre
ECE_BINS = 10


def read_row(row: dict) -> dict:
    """One prediction of the CLI's JSON output as ``{path, probabilities, genre, confident, no_music}``.

    The one place that knows the CLI's schema: ``probabilities`` (every genre) when present, else
    the ``top`` list; ``genre`` is ``None`` for no music or an error.
    """
    probs = row.get("probabilities") or {t["genre"]: t["probability"] for t in row.get("top") or []}
    return {
        "path": row["path"],
        "probabilities": {g: float(p) for g, p in probs.items() if p is not None},
        "genre": row.get("genre"),
        "confident": bool(row.get("confident")) and not row.get("no_music") and not row.get("error"),
        "no_music": row.get("no_music") or row.get("error"),
    }


def cli_predict(files: list[Path], *, model: str | None) -> dict[str, dict]:
    """Predictions of ``genrekit predict`` on ``files``, keyed by resolved path."""
    exe = shutil.which("genrekit", path=str(Path(sys.executable).parent)) or "genrekit"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "outside.jsonl"
        listing = Path(tmp) / "inputs"
        listing.mkdir()
        for i, f in enumerate(files):  # one folder of links: one CLI run, names kept unique
            (listing / f"{i:04d}_{f.name}").symlink_to(f.resolve())
        cmd = [exe, "predict", str(listing), "--format", "jsonl", "-o", str(out), "--no-progress", "--top-k", "10"]
        subprocess.run(cmd + (["--model", model] if model else []), check=True, stdout=subprocess.DEVNULL)
        rows = [read_row(json.loads(line)) for line in out.read_text().splitlines() if line.strip()]
    real = {str(f.resolve()) for f in files}
    by_link = {f"{i:04d}_{f.name}": str(f.resolve()) for i, f in enumerate(files)}
    # the CLI names a file by its link or by the file it points to
    return {(r["path"] if r["path"] in real else by_link[Path(r["path"]).name]): r for r in rows}


def calibration(conf: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> tuple[float, list[dict]]:
    """Expected calibration error (equal-width bins of the top probability) and the bins' figures."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
            table.append(
                {
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                    "n": int(m.sum()),
                    "confidence": float(conf[m].mean()),
                    "accuracy": float(correct[m].mean()),
                }
            )
    return float(ece), table


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def reliability_png(table: list[dict], path: Path, title: str) -> None:
    """Accuracy against mean confidence per bin, bar widths the bins, counts written on them."""
    fig = _figure(4.5, 4.5)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for b in table:
        ax.bar(
            b["lo"], b["accuracy"], width=b["hi"] - b["lo"], align="edge", color="tab:blue", alpha=0.7, edgecolor="k"
        )
        ax.text((b["lo"] + b["hi"]) / 2, b["accuracy"] + 0.02, str(b["n"]), ha="center", fontsize=7)
    ax.plot([b["confidence"] for b in table], [b["accuracy"] for b in table], "o-", color="tab:red", label="mean conf.")
    ax.set(xlim=(0, 1), ylim=(0, 1.08), xlabel="top probability", ylabel="accuracy", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def confusion_png(counts: list[list[int]], rows: list[str], cols: list[str], path: Path, title: str) -> None:
    """A rectangular confusion matrix: counts, colour normalised per row."""
    cm = np.asarray(counts, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = _figure(1.5 + 0.55 * len(cols), 1.2 + 0.5 * len(rows))
    ax = fig.add_subplot()
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel="predicted (unsure: not confident or no music)", ylabel="label", title=title)
    for i, j in zip(*np.nonzero(cm)):
        ax.text(
            j, i, int(cm[i, j]), ha="center", va="center", fontsize=8, color="white" if norm[i, j] > 0.5 else "black"
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def synthetic_signals(folder: Path) -> list[Path]:
    """Signals that are not music, written as 16-bit WAV: tone, sweep, clicks, and a voice if espeak-ng is here."""
    import soundfile as sf

    sr, n = 22050, 22050 * 10
    t = np.arange(n) / sr
    signals = {
        "sine_440hz": 0.5 * np.sin(2 * np.pi * 440 * t),
        "sweep_50_8000hz": 0.5 * np.sin(2 * np.pi * 50 * 10 / np.log(160) * (160 ** (t / 10) - 1)),
        "clicks_2hz": np.where(np.arange(n) % (sr // 2) < 20, 0.8, 0.0),
        "sine_chord": 0.2 * sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)),
    }
    paths = []
    for name, y in signals.items():
        paths.append(folder / f"{name}.wav")
        sf.write(paths[-1], y.astype(np.float32), sr, subtype="PCM_16")
    espeak = shutil.which("espeak-ng")
    if espeak:
        text = (
            "This is a speaking voice and not a piece of music. It reads a few sentences about the weather, "
            "the train timetable and the price of bread, so that a genre classifier has something to hear."
        )
        paths.append(folder / "espeak_voice.wav")
        subprocess.run([espeak, "-w", str(paths[-1]), text], check=True)
    return paths


def cpu() -> dict:
    """The CPU's model name and its vector extensions (Linux), as a figure's context."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    field = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in info.splitlines()[:40])}
    flags = field.get("flags", "").split()
    return {"model": field.get("model name"), "vector": [f for f in flags if f.startswith(("avx", "sse4", "fma"))]}


def measure(manifest: list[dict], preds: dict[str, dict]) -> dict:
    """Every figure of the outside set from the manifest's labels and the CLI's predictions."""
    rows = [(m["genre"], preds[str((OUTSIDE / m["path"]).resolve())]) for m in manifest]
    present = sorted({g for g, _ in rows if g != "other"})
    genre_rows = [(g, p) for g, p in rows if g != "other"]
    recall = {
        g: {"n": sum(t == g for t, _ in genre_rows), "right": sum(t == g and p["genre"] == g for t, p in genre_rows)}
        for g in present
    }
    for v in recall.values():
        v["recall"] = v["right"] / v["n"]
    top3 = np.mean([g in sorted(p["probabilities"], key=lambda k: -p["probabilities"][k])[:3] for g, p in genre_rows])
    conf = np.array(
        [max(p["probabilities"].values(), default=0.0) if not p["no_music"] else 0.0 for _, p in genre_rows]
    )
    correct = np.array([p["genre"] == g for g, p in genre_rows], dtype=float)
    flagged = np.array([p["confident"] for _, p in genre_rows])
    ece, table = calibration(conf, correct)
    other = [p for g, p in rows if g == "other"]
    cols = [*GENRES, UNSURE]
    confusion = [
        [sum(t == g and (p["genre"] if p["confident"] else UNSURE) == c for t, p in rows) for c in cols]
        for g in [*present, "other"]
    ]
    argmax = [[sum(t == g and p["genre"] == c for t, p in rows) for c in GENRES] for g in [*present, "other"]]
    return {
        "n": len(rows),
        "genres": present,
        "balanced_accuracy": float(np.mean([v["recall"] for v in recall.values()])),
        "accuracy": float(correct.mean()),
        "top3_accuracy": float(top3),
        "per_genre": recall,
        "confident_share": float(flagged.mean()),
        "confident_precision": float(correct[flagged].mean()) if flagged.any() else None,
        "confident_n": int(flagged.sum()),
        "ece": ece,
        "reliability": table,
        "other_n": len(other),
        "other_unsure_share": float(np.mean([not p["confident"] for p in other])) if other else None,
        "other_genres": {g: sum(p["genre"] == g for p in other) for g in GENRES},
        "confusion_rows": [*present, "other"],
        "confusion_cols_flagged": cols,
        "confusion_flagged": confusion,
        "confusion_argmax": argmax,
    }


def report(name: str, model: str, r: dict, synth: list[dict]) -> str:
    """The markdown of one run."""
    pg = r["per_genre"]
    prec = "n/a" if r["confident_precision"] is None else f"{r['confident_precision']:.3f}"
    return (
        f"# Outside GTZAN ({name}): {model}\n\n"
        f"{r['n']} clips of `../shared/data/outside` through `genrekit predict --format jsonl`; labels from their "
        "own datasets (classical/pop/rock from Emotify, the rest from Panda 4Q: read per-genre recall, not only "
        "the headline).\n\n"
        + md_table(
            ["figure", "value"],
            [
                ["balanced accuracy (8 genres)", f"{r['balanced_accuracy']:.3f}"],
                ["accuracy (clips of the 8 genres)", f"{r['accuracy']:.3f}"],
                ["top-3 accuracy", f"{r['top3_accuracy']:.3f}"],
                ["confident: precision", f"{prec} ({r['confident_n']} clips)"],
                ["confident: share of clips", f"{r['confident_share']:.3f}"],
                [f"ECE ({ECE_BINS} bins, top probability)", f"{r['ece']:.3f}"],
                ["`other` flagged unsure", f"{r['other_unsure_share']:.3f} of {r['other_n']}"],
            ],
        )
        + "\n\nPer-genre recall:\n\n"
        + md_table(
            ["genre", "right / clips", "recall"],
            [[g, f"{v['right']} / {v['n']}", f"{v['recall']:.2f}"] for g, v in pg.items()],
        )
        + "\n\nConfusion (rows: label; columns: the genre when confident, else unsure):\n\n"
        + md_table(
            ["label", *r["confusion_cols_flagged"]],
            [[g, *row] for g, row in zip(r["confusion_rows"], r["confusion_flagged"])],
        )
        + "\n\n`other` (electronic) clips, most probable genre: "
        + ", ".join(f"{g} {n}" for g, n in r["other_genres"].items() if n)
        + "\n\nReliability (clips of the 8 genres; a no-music clip counts as confidence 0):\n\n"
        + md_table(
            ["bin", "clips", "mean confidence", "accuracy"],
            [
                [f"{b['lo']:.1f}–{b['hi']:.1f}", b["n"], f"{b['confidence']:.2f}", f"{b['accuracy']:.2f}"]
                for b in r["reliability"]
            ],
        )
        + "\n\nSynthetic signals (not music):\n\n"
        + md_table(
            ["signal", "genre", "top probability", "confident", "no music"],
            [[s["name"], s["genre"] or "-", f"{s['top']:.2f}", s["confident"], s["no_music"] or "-"] for s in synth],
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=None, help="checkpoint (default: the bundled model)")
    p.add_argument("--name", default="outside", help="results/<name>.{json,md}; summary keys only for 'outside'")
    a = p.parse_args()
    with open(OUTSIDE / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    files = [OUTSIDE / m["path"] for m in manifest]
    with tempfile.TemporaryDirectory() as tmp:
        synth_files = synthetic_signals(Path(tmp))
        preds = cli_predict(files + synth_files, model=a.model)
        synth = []
        for f in synth_files:
            s = preds[str(f.resolve())]
            synth.append(
                {
                    "name": f.stem,
                    "genre": s["genre"],
                    "confident": s["confident"],
                    "no_music": s["no_music"],
                    "top": max(s["probabilities"].values(), default=0.0),
                }
            )
    r = measure(manifest, preds)
    model = a.model or "bundled musicnn-gtzan"
    plots = RESULTS / "plots"
    confusion_png(
        r["confusion_flagged"],
        r["confusion_rows"],
        r["confusion_cols_flagged"],
        plots / f"{a.name}_confusion.png",
        title=f"outside: {model}",
    )
    reliability_png(r["reliability"], plots / f"{a.name}_reliability.png", f"outside: ECE {r['ece']:.3f}")
    md = report(a.name, model, r, synth)
    write_results(
        a.name, {"cpu": cpu(), "model": model, "manifest": str(OUTSIDE / "manifest.csv"), **r, "synthetic": synth}, md
    )
    if a.name == "outside":
        update_summary(
            {
                "outside_balanced_acc": round(r["balanced_accuracy"], 4),
                "outside_top3_acc": round(r["top3_accuracy"], 4),
                "outside_confident_precision": None
                if r["confident_precision"] is None
                else round(r["confident_precision"], 4),
                "outside_confident_share": round(r["confident_share"], 4),
                "outside_ece": round(r["ece"], 4),
                "outside_other_unsure_share": round(r["other_unsure_share"], 4),
                "synthetic_confident": sum(s["confident"] for s in synth),
            }
        )
    print(md)


if __name__ == "__main__":
    main()
