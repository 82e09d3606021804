"""The ``genrekit`` command: train, evaluate, compare, predict, models, render, serve."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path

from genrekit import __version__
from genrekit.audio import GenrekitError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset folder (GTZAN root or <label>/<audio files>)")
    p.add_argument("--input", default="auto", choices=["auto", "audio", "images"], help="which GTZAN part to use")
    p.add_argument("--cache-dir", help="feature cache (default $GENREKIT_CACHE or ~/.cache/genrekit)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_feature_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", default="logmel", choices=["logmel", "kaggle-image"])
    p.add_argument("--n-mels", type=int, default=128)
    p.add_argument("--segment-seconds", type=float, default=3.0)
    p.add_argument("--overlap", type=float, default=0.5, help="window overlap in [0, 1)")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from genrekit.train import TrainConfig

    d = TrainConfig()
    p.add_argument("--model", default=d.model, help="architecture (see 'genrekit models')")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience (epochs)")
    p.add_argument("--windows-per-track", type=int, default=d.windows_per_track)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--no-balance", action="store_true", help="do not balance classes")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share of the training side")


def _add_protocol_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--split", default=default, choices=["random", "kfold", "filtered", "none"])
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seeds", type=int, default=5, help="random splits for --split random (compare)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--splits-dir", help="folder of train/valid/test_filtered.txt (default: <data>/splits)")


def _train_config(a):
    from genrekit.train import TrainConfig

    return TrainConfig(
        model=a.model, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, patience=a.patience,
        windows_per_track=a.windows_per_track, augment=not a.no_augment, balance=not a.no_balance, seed=a.seed,
    )  # fmt: skip


def _feature_config(a):
    from genrekit.features import FeatureConfig

    return FeatureConfig(kind=a.features, n_mels=a.n_mels, segment_seconds=a.segment_seconds, segment_overlap=a.overlap)


def _prepare(a, feature_config=None, labels=None):
    from genrekit.experiment import prepare

    return prepare(
        a.data, input_kind=a.input, feature_config=feature_config, labels=labels,
        cache_dir=a.cache_dir, progress=not a.no_progress,
    )  # fmt: skip


def _splits_dir(a) -> str | None:
    return a.splits_dir or (str(Path(a.data) / "splits") if (Path(a.data) / "splits").is_dir() else None)


def _print_metrics(rep: dict, header: str) -> None:
    t, s = rep["track"], rep["segment"]
    print(f"{header}: {t['n']} tracks, {s['n']} segments")
    print(f"  track   accuracy {t['accuracy']:.3f}  balanced {t['balanced_accuracy']:.3f}  macro-F1 {t['macro_f1']:.3f}")
    print(f"  segment accuracy {s['accuracy']:.3f}  balanced {s['balanced_accuracy']:.3f}  macro-F1 {s['macro_f1']:.3f}")
    print("  per genre (track level): " + ", ".join(f"{g} {v['recall']:.2f}" for g, v in t["per_class"].items()))


def cmd_train(a) -> None:
    import numpy as np

    from genrekit.experiment import evaluate, fit, protocol_folds, write_report
    from genrekit.models import model_spec

    model_spec(a.model)  # fail before any feature is computed

    data = _prepare(a, _feature_config(a))
    config = _train_config(a)
    out = Path(a.out)
    if a.split == "none":
        from genrekit.experiment import carve_validation

        train_idx, val_idx = carve_validation(np.arange(len(data.y)), data.y, fraction=a.val_fraction, seed=a.seed)
        test_idx = np.zeros(0, dtype=int)
        notes = {}
    else:
        folds, notes = protocol_folds(
            data, a.split, seeds=1, folds=a.folds, test_size=a.test_size,
            splits_dir=_splits_dir(a), val_fraction=a.val_fraction,
        )  # fmt: skip
        fold = folds[0] if a.split != "random" else replace(folds[0], name=f"seed{a.seed}")
        train_idx, val_idx, test_idx = fold.train, fold.val, fold.test
        for part, missing in notes.get("missing_ids", {}).items():
            if missing:
                print(f"note: {len(missing)} clip(s) of the {part} list are not in the data: {', '.join(missing[:5])}"
                      + (" ..." if len(missing) > 5 else ""), file=sys.stderr)  # fmt: skip
    ckpt, result = fit(
        data, train_idx, val_idx, config, progress=not a.no_progress,
        metadata={
            "protocol": a.split if a.split != "none" else "all data",
            "test_ids": [data.tracks[i].id for i in test_idx],
            "trained_on": f"{len(train_idx)} tracks of {data.path} ({data.tracks[0].kind})",
            "skipped_unreadable": data.failed,
            "split_notes": {k: v for k, v in notes.items() if k != "missing_ids"},
        },
    )  # fmt: skip
    report = None
    if len(test_idx):
        report = evaluate(ckpt, data, test_idx)
        ckpt.metadata["accuracy"] = {
            "track_accuracy": report["track"]["accuracy"],
            "track_balanced_accuracy": report["track"]["balanced_accuracy"],
            "n_test_tracks": int(len(test_idx)),
        }
    path = ckpt.save(out / "model.pt")
    print(f"model saved to {path} (best epoch {result.best_epoch} of {len(result.history)}, {result.seconds:.0f} s)")
    if report is not None:
        write_report(report, out / "report", history=result.history, title=config.model)
        _print_metrics(report, "test")
        print(f"report: {out / 'report'} (report.json, confusion_*.png/csv, per_genre.csv, curves.png)")
    else:
        from genrekit.plots import curves_png

        curves_png(result.history, out / "curves.png", title=config.model)
    if data.failed:
        print(f"skipped {len(data.failed)} unreadable track(s): {', '.join(data.failed)}", file=sys.stderr)


def cmd_evaluate(a) -> None:
    import numpy as np

    from genrekit.checkpoint import load_checkpoint
    from genrekit.experiment import evaluate, write_report
    from genrekit.splits import clip_id

    ckpt = load_checkpoint(a.model)
    data = _prepare(a, ckpt.feature_config, labels=ckpt.labels)
    if a.split_file:
        listed = {clip_id(line) for line in Path(a.split_file).read_text().splitlines() if line.strip()}
        idx = np.array([i for i, t in enumerate(data.ids) if t in listed], dtype=int)
        missing = len(listed) - len(idx)
        if missing:
            print(f"note: {missing} clip(s) of {a.split_file} are not in the data", file=sys.stderr)
    elif a.subset == "test" and ckpt.metadata.get("test_ids"):
        wanted = set(ckpt.metadata["test_ids"])
        idx = np.array([i for i, t in enumerate(data.ids) if t in wanted], dtype=int)
    else:
        idx = np.arange(len(data.ids))
    if not len(idx):
        raise GenrekitError("no track to evaluate: the chosen subset matches no track of the data")
    report = evaluate(ckpt, data, idx)
    out = write_report(report, a.out, title=ckpt.model_name)
    _print_metrics(report, "evaluation")
    print(f"report: {out}")


def cmd_compare(a) -> None:
    from genrekit.experiment import comparison_markdown, protocol_folds, run_protocol
    from genrekit.models import model_names, model_spec
    from genrekit.plots import comparison_png

    names = model_names() if a.models == "all" else [m.strip() for m in a.models.split(",") if m.strip()]
    for name in names:
        model_spec(name)  # fail before any training
    data = _prepare(a, _feature_config(a))
    folds, notes = protocol_folds(
        data, a.split, seeds=a.seeds, folds=a.folds, test_size=a.test_size,
        splits_dir=_splits_dir(a), val_fraction=a.val_fraction,
    )  # fmt: skip
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        cfg = replace(_train_config(a), model=name)
        results.append(run_protocol(data, folds, cfg, progress=not a.no_progress, out_dir=out / "runs"))
        md = comparison_markdown(results, a.split)
        (out / "compare.md").write_text(md)  # rewritten after each model: nothing computed is lost
        (out / "compare.json").write_text(json.dumps({"protocol": a.split, "notes": notes, "results": results}, indent=2))
    comparison_png([r["model"] for r in results], [r["accuracy_mean"] for r in results],
                   [r["accuracy_sd"] for r in results], out / "compare.png", "track accuracy")  # fmt: skip
    print(md)
    print(f"written: {out / 'compare.md'}, {out / 'compare.json'}, {out / 'compare.png'}")


def cmd_predict(a) -> None:
    from genrekit.library import run_library

    summary = run_library(
        a.inputs, model=a.model, top_k=a.top_k, fmt=a.format, output=a.output, workers=a.workers,
        timeline=a.timeline, progress=not a.no_progress,
    )  # fmt: skip
    if summary.failed and summary.done == 0 and summary.skipped == 0:
        sys.exit(1)


def cmd_models(a) -> None:
    from genrekit.checkpoint import load_checkpoint
    from genrekit.models import DEFAULT_MODEL, model_names, model_spec
    from genrekit.predictor import bundled_model_path

    paths = [bundled_model_path()] + [Path(p) for p in a.model]
    print("Trained models:")
    for p in paths:
        if not p.exists():
            print(f"  {p}: missing")
            continue
        c = load_checkpoint(p)
        m = c.metadata
        acc = m.get("accuracy", {})
        print(f"  {p.name}{' (bundled)' if p == bundled_model_path() else ''}: {c.model_name}, "
              f"{len(c.labels)} genres, features {c.feature_config.kind}")  # fmt: skip
        print(f"      trained on: {m.get('trained_on', '?')}")
        print(f"      protocol:   {m.get('protocol', '?')}")
        if acc:
            print("      measured:   " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in acc.items()))
        if m.get("description"):
            print(f"      {m['description']}")
    print("\nArchitectures (genrekit train --model NAME):")
    for n in model_names():
        print(f"  {n:<18} {'[default] ' if n == DEFAULT_MODEL else ''}{model_spec(n).source}")


def cmd_render(a) -> None:
    from genrekit.audio import load_audio
    from genrekit.kaggle_image import render_image, save_png

    out = Path(a.output or Path(a.audio).with_suffix(".png").name)
    save_png(render_image(load_audio(a.audio, sr=22050), 22050), out)
    print(f"written {out}")


def cmd_serve(a) -> None:
    from genrekit.serve import main as serve_main

    serve_main(host=a.host, port=a.port, model=a.model, max_upload_mb=a.max_upload_mb, max_duration_s=a.max_duration_s)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genrekit", description="Music genre classification from audio.")
    parser.add_argument("--version", action="version", version=f"genrekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="genres of audio files or whole folders")
    p.add_argument("inputs", nargs="+", help="audio files and/or folders (searched recursively)")
    p.add_argument("--model", help="checkpoint to use (default: the bundled model)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--format", default="table", choices=["table", "json", "csv"])
    p.add_argument("--output", "-o", help="write results to this file; a rerun skips files already in it")
    p.add_argument("--timeline", action="store_true", help="show the per-segment timeline (table format)")
    p.add_argument("--workers", type=int, default=2, help="files decoded in parallel")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("train", help="train a model and evaluate it on a held-out split")
    _add_data_args(p)
    _add_feature_args(p)
    _add_train_args(p)
    _add_protocol_args(p, default="random")
    p.add_argument("--out", default="runs/train", help="output folder (model.pt, report/)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset")
    p.add_argument("--model", required=True, help="checkpoint (.pt)")
    _add_data_args(p)
    p.add_argument("--subset", default="test", choices=["test", "all"],
                   help="'test': the checkpoint's held-out tracks when it recorded them")  # fmt: skip
    p.add_argument("--split-file", help="evaluate only the clips listed in this file")
    p.add_argument("--out", default="runs/evaluate")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="several models under one protocol (mean ± sd)")
    _add_data_args(p)
    _add_feature_args(p)
    _add_train_args(p)
    _add_protocol_args(p, default="kfold")
    p.add_argument("--models", default="all", help="comma-separated names, or 'all'")
    p.add_argument("--out", default="runs/compare")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("models", help="list the bundled and given models, and the architectures")
    p.add_argument("model", nargs="*", help="checkpoint files to describe")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("render", help="render audio as a Kaggle GTZAN spectrogram image")
    p.add_argument("audio")
    p.add_argument("-o", "--output", help="PNG path (default: <audio name>.png)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("serve", help="web page and REST API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", help="checkpoint to serve (default: the bundled model)")
    p.add_argument("--max-upload-mb", type=float, default=50.0)
    p.add_argument("--max-duration-s", type=float, default=900.0)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *_: f"warning: {msg}\n"
    try:
        args.func(args)
    except GenrekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
