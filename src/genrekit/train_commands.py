"""``genrekit train``, ``evaluate`` and ``compare``: their options, and each a few lines over
:mod:`genrekit.experiment` and :mod:`genrekit.comparison`.

Only the standard library is imported here (each command imports what it needs). Training
options are derived from :class:`TrainConfig`'s fields, feature settings are given as
``--feature KEY=VALUE`` and checked against the kind.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from genrekit.config import TrainConfig
from genrekit.errors import GenrekitError


def _literal(text: str):
    """A KEY=VALUE value as Python data: int, float, bool, None or the string itself."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _settings(pairs: list[str], what: str) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise GenrekitError(f"{what} '{pair}' is not KEY=VALUE")
        out[key.strip()] = _literal(value)
    return out


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset folder (GTZAN root or <label>/<audio files>)")
    p.add_argument("--input", default="auto", choices=["auto", "audio", "images"], help="which GTZAN part to use")
    p.add_argument("--cache-dir", help="feature cache (default $GENREKIT_CACHE or ~/.cache/genrekit)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_feature_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--features",
        default="auto",
        help="feature kind: logmel, kaggle-image (auto: kaggle-image for images, else logmel)",
    )
    p.add_argument(
        "--feature",
        action="append",
        metavar="KEY=VALUE",
        help="a setting of the feature kind, e.g. n_mels=64 or segment_seconds=6 (repeatable; "
        "'genrekit models' lists each kind's settings and defaults)",
    )


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="architecture (default: gknet; see 'genrekit models')")
    p.add_argument(
        "--model-param", action="append", metavar="KEY=VALUE", help="architecture hyper-parameter (repeatable)"
    )
    for f in dataclasses.fields(TrainConfig):
        name = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            p.add_argument(name, default=f.default, action=argparse.BooleanOptionalAction, help=f.metadata["help"])
        else:
            kind = {"int": int, "float": float}.get(f.type if isinstance(f.type, str) else f.type.__name__, str)
            p.add_argument(name, type=kind, default=f.default, choices=f.metadata["choices"], help=f.metadata["help"])
    p.add_argument("--device", help="where to train: cpu, cuda, cuda:1 ... (default: CUDA when available)")


def _add_protocol_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--split",
        default=default,
        choices=["random", "kfold", "filtered", "none"],
        help="track-level protocol ('none': train on every track)",
    )
    p.add_argument("--test-size", type=float, default=0.2, help="test share of the random protocol")
    p.add_argument("--folds", type=int, default=5, help="folds of the kfold protocol")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share of the training side")
    p.add_argument("--splits-dir", help="folder of train/valid/test_filtered.txt (default: <data>/splits)")


def add_training_args(p: argparse.ArgumentParser, *, split: str) -> None:
    """What train and compare share: data, features, training settings, protocol."""
    add_data_args(p)
    _add_feature_args(p)
    _add_train_args(p)
    _add_protocol_args(p, default=split)


def _train_config(a) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig)})


def _feature_config(a):
    """The --features/--feature choice; ``None`` lets the data choose (images: kaggle-image)."""
    from genrekit.features import DEFAULT_KIND, make_feature_config

    values = _settings(a.feature, "--feature")
    kind = a.features
    if kind == "auto":
        if a.input != "images" and not values:
            return None
        kind = "kaggle-image" if a.input == "images" else DEFAULT_KIND
    return make_feature_config(kind, **values)


def _model(a) -> tuple[str, dict]:
    from genrekit.models import DEFAULT_MODEL, model_spec

    name = a.model or DEFAULT_MODEL
    model_spec(name)  # fail before any feature is computed
    return name, _settings(a.model_param, "--model-param")


def _prepare(a, feature_config=None, labels=None):
    from genrekit.experiment import prepare

    return prepare(
        a.data,
        input_kind=a.input,
        feature_config=feature_config,
        labels=labels,
        cache_dir=a.cache_dir,
        progress=not a.no_progress,
    )


def _folds(a, data, seed: int, seeds: int = 1):
    from genrekit.experiment import protocol_folds

    folds, notes = protocol_folds(
        data,
        a.split,
        seed=seed,
        seeds=seeds,
        folds=a.folds,
        test_size=a.test_size,
        val_fraction=a.val_fraction,
        splits_dir=a.splits_dir,
    )
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return folds


def _print_metrics(rep: dict, header: str) -> None:
    t, s = rep["track"], rep["segment"]
    print(f"{header}: {t['n']} tracks, {s['n']} segments")
    print(
        f"  track   accuracy {t['accuracy']:.3f}  balanced {t['balanced_accuracy']:.3f}  macro-F1 {t['macro_f1']:.3f}"
    )
    print(
        f"  segment accuracy {s['accuracy']:.3f}  balanced {s['balanced_accuracy']:.3f}  macro-F1 {s['macro_f1']:.3f}"
    )
    print("  per genre (track level): " + ", ".join(f"{g} {v['recall']:.2f}" for g, v in t["per_class"].items()))


def cmd_train(a) -> None:
    from genrekit.experiment import train_and_report

    name, params = _model(a)
    if a.split == "kfold" and a.fold is None:
        raise GenrekitError(
            f"train --split kfold trains one fold: give --fold 0..{a.folds - 1}, "
            "or run 'genrekit compare --split kfold' to train and evaluate every fold"
        )
    data = _prepare(a, _feature_config(a))
    config = _train_config(a)
    folds = _folds(a, data, seed=config.seed)
    if a.fold is not None and not 0 <= a.fold < len(folds):
        raise GenrekitError(f"--fold {a.fold} does not exist: the {a.split} protocol has {len(folds)} fold(s)")
    fold = folds[a.fold or 0]
    print(
        f"training {name} on {data.path} ({data.feature_config.kind}), {a.split} split {fold.name}, seed {config.seed}: "
        f"{len(fold.train)} train / {len(fold.val)} validation / {len(fold.test)} test tracks"
    )
    done = train_and_report(
        data,
        fold,
        a.out,
        model=name,
        model_params=params,
        config=config,
        device=a.device,
        progress=not a.no_progress,
        metadata={
            "protocol": a.split if a.split != "none" else "all data",
            "trained_on": f"{len(fold.train)} tracks of {data.path} ({data.tracks[0].kind})",
            "skipped_unreadable": data.failed,
        },
    )
    r = done.result
    print(f"model saved to {done.model_path} (best epoch {r.best_epoch} of {len(r.history)}, {r.seconds:.0f} s)")
    if done.report is not None:
        _print_metrics(done.report, "test")
        print(f"report: {done.report_dir} (report.json, confusion_*.png/csv, per_genre.csv, curves.png)")
    else:
        print(
            f"not evaluated: no test tracks (--split {a.split}); the accuracies in {done.curves_path} are on "
            "its training windows and validation tracks, not an evaluation"
        )
    if data.failed:
        print(f"skipped {len(data.failed)} unreadable track(s): {', '.join(data.failed)}", file=sys.stderr)


def cmd_evaluate(a) -> None:
    from genrekit.checkpoint import load_checkpoint
    from genrekit.experiment import evaluate, select_tracks, write_report

    ckpt = load_checkpoint(a.model)
    data = _prepare(a, ckpt.feature_config, labels=ckpt.labels)
    idx, notes = select_tracks(data, ckpt, subset=a.subset, split_file=a.split_file, checkpoint_name=f"'{a.model}'")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    report = evaluate(ckpt, data, idx, allow_seen=a.allow_seen)
    out = write_report(report, a.out, title=ckpt.model_name)
    _print_metrics(report, "evaluation")
    print(f"report: {out}")


def cmd_compare(a) -> None:
    from genrekit.comparison import compare_models, write_comparison
    from genrekit.models import model_names, model_spec
    from genrekit.seed_protocols import SEED_PROTOCOLS, on_images, run_seed_protocol

    out = Path(a.out)
    if a.protocol:
        protocol = SEED_PROTOCOLS[a.protocol]
        run_seed_protocol(
            on_images(protocol) if a.input == "images" else protocol,
            a.data,
            splits_dir=a.splits_dir,
            repetitions=a.repetitions,
            max_epochs=a.max_epochs,
            precision=a.precision,
            device=a.device,
            cache_dir=a.cache_dir,
            progress=not a.no_progress,
            on_result=lambda partial: write_comparison(partial, out),
        )
    else:
        names = model_names() if a.models == "all" else [m.strip() for m in a.models.split(",") if m.strip()]
        for name in names:
            model_spec(name)  # fail before any training
        params = _settings(a.model_param, "--model-param")
        data = _prepare(a, _feature_config(a))
        config = _train_config(a)
        folds = _folds(a, data, seed=config.seed, seeds=a.seeds)
        compare_models(
            data,
            folds,
            protocol=a.split,
            models={n: params for n in names},
            config=config,
            device=a.device,
            progress=not a.no_progress,
            out_dir=out,
        )
    print((out / "compare.md").read_text())
    written = ["compare.md", "compare.json"] + ([] if a.protocol else ["compare.png"])
    print("written: " + ", ".join(str(out / f) for f in written))
