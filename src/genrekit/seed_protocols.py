"""The seed documents' own protocols, and the same architectures under an honest one.

Each seed document reports a figure under a protocol of its own: its split, its unit (whole
images, 3-s segments, 2-s patches), its optimiser and budget. :data:`SEED_PROTOCOLS` writes each
one down as data (:mod:`genrekit.seed_documents`), and :func:`run_seed_protocol` trains the seed's architecture under it and,
beside it, under

* ``track``: the same split shares drawn over clips instead of segments (only for seeds that
  split segments), which isolates the segment leak: every window of a clip on one side;
* ``filtered``: the fault-filtered, artist-conscious GTZAN split (Kereliuk, Sturm & Larsen 2015),
  the honest protocol; the figure is read on its test side, never used to train or select.

The samples are what the seed trained on: fixed, non-overlapping windows of each clip (or the
whole clip when the window spans it), each its own sample, so a segment-level split puts
windows of one clip on both sides exactly as the seed did. Accuracy is measured at the seed's
own level (segments, or clips for whole-image seeds); ``track``/``filtered`` runs also report
clip accuracy (mean of the clip's window probabilities).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from genrekit.comparison import Run, run_comparison
from genrekit.config import TrainConfig
from genrekit.datasets import DatasetError
from genrekit.evaluate import classification_metrics
from genrekit.experiment import Data, prepare
from genrekit.features import make_feature_config
from genrekit.features.windows import pad_frames
from genrekit.inference import Classifier
from genrekit.models import build_model
from genrekit.seed_documents import PROTOCOL_NAMES, SEED_PROTOCOLS, SeedProtocol, on_images
from genrekit.splits import Fold, make_split
from genrekit.train import default_device, seeded, train

__all__ = [
    "PROTOCOL_NAMES",
    "SEED_PROTOCOLS",
    "Samples",
    "SeedProtocol",
    "cut_samples",
    "hardware",
    "on_images",
    "run_seed_protocol",
    "split_samples",
    "subset_clips",
]


def subset_clips(data: Data, per_genre: int, *, seed: int = 0) -> Data:
    """At most ``per_genre`` clips of each genre, drawn at random with ``seed`` (in data order)."""
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(data.y == c))[:per_genre] for c in np.unique(data.y)])
    )
    return replace(
        data, tracks=[data.tracks[i] for i in keep], features=[data.features[i] for i in keep], y=data.y[keep]
    )


@dataclass
class Samples:
    """The seed's samples: one fixed window each, with its class and the clip it was cut from."""

    features: list[np.ndarray]
    y: np.ndarray
    clip: np.ndarray  # index into the data's tracks

    def of_clips(self, clips: np.ndarray) -> np.ndarray:
        """Indices of the samples cut from ``clips``."""
        return np.flatnonzero(np.isin(self.clip, clips))


def cut_samples(data: Data) -> Samples:
    """Every clip cut into consecutive windows of the data's ``segment_frames``; a remainder
    shorter than a window is dropped (a clip shorter than one window is padded to one)."""
    size = data.feature_config.segment_frames
    features: list[np.ndarray] = []
    y: list[int] = []
    clip: list[int] = []
    for i, matrix in enumerate(data.features):
        matrix = pad_frames(matrix, size)
        windows = [matrix[:, k * size : (k + 1) * size] for k in range(matrix.shape[1] // size)]
        features.extend(np.ascontiguousarray(w) for w in windows)
        y.extend([data.y[i]] * len(windows))
        clip.extend([i] * len(windows))
    return Samples(features, np.array(y), np.array(clip))


def split_samples(
    protocol: SeedProtocol, variant: str, data: Data, samples: Samples, *, seed: int, splits_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample indices (train, val, test) of one run, cut by :func:`~genrekit.splits.make_split`.

    ``variant``: ``reproduced`` (the seed's own split: its shares over samples or clips), ``track``
    (its shares over clips) or ``filtered`` (the fault-filtered lists in ``splits_dir``, over clips).
    """
    if variant == "reproduced" and protocol.split_by == "segment":
        fold = make_split(
            "shares", ids=[str(i) for i in range(len(samples.y))], labels=samples.y, seed=seed, shares=protocol.shares
        ).folds[0]
        return fold.train, fold.val, fold.test
    if variant in ("reproduced", "track"):
        fold = make_split("shares", ids=data.ids, labels=data.y, seed=seed, shares=protocol.shares).folds[0]
    elif variant == "filtered":
        fold = make_split("filtered", ids=data.ids, labels=data.track_labels, splits_dir=splits_dir).folds[0]
    else:
        raise DatasetError(f"unknown variant '{variant}'; use reproduced, track or filtered")
    return samples.of_clips(fold.train), samples.of_clips(fold.val), samples.of_clips(fold.test)


def _runner(protocol: SeedProtocol, data: Data, samples: Samples, *, config: TrainConfig, device, progress: bool):
    """The runs of :func:`run_seed_protocol`: the seed's model trained on the samples of a fold
    with the fold's seed, measured at the seed's level on the side its figure is read on."""

    def run(r: Run) -> dict:
        seed, f = r.index, data.feature_config  # fold i of a variant is drawn, and trains, with seed i
        train_idx, val_idx, test_idx = r.fold.train, r.fold.val, r.fold.test
        # the seed's figure is read on its validation side (S001): that side then takes no part in training
        on_validation = r.variant == "reproduced" and protocol.reported == "validation"
        measured = val_idx if on_validation else test_idx
        watched = val_idx if len(val_idx) and not on_validation else None
        with seeded(seed):
            net = build_model(r.model, n_classes=len(data.labels), input_shape=(f.n_bins, f.segment_frames))
        result = train(
            net,
            samples.features,
            samples.y,
            f,
            train_idx=train_idx,
            val_idx=watched,
            config=replace(config, **r.params, seed=seed),
            device=device,
            progress=progress,
            desc=f"{protocol.key} {r.model} {r.variant} seed {seed}",
        )
        classifier = Classifier(result.model, f, data.labels, device=device)
        probs = np.stack([w.mean(axis=0) for w in classifier.analyse_tracks([samples.features[i] for i in measured])])
        level = "segment" if len(samples.y) > len(data.y) else "clip"  # several windows per clip
        row = {
            "variant": r.variant,
            "seed": seed,
            "level": level,
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "n_measured": len(measured),
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 1),
            "accuracy": classification_metrics(samples.y[measured], probs.argmax(1), data.labels)["accuracy"],
            "train_accuracy": result.history[-1]["train_acc"],
        }
        if level == "segment" and r.variant != "reproduced":  # clips are whole on one side: score them too
            clips = samples.clip[measured]
            order = np.unique(clips)
            clip_probs = np.stack([probs[clips == c].mean(axis=0) for c in order])
            row["clip_accuracy"] = classification_metrics(data.y[order], clip_probs.argmax(1), data.labels)["accuracy"]
        return row

    return run


def run_seed_protocol(
    protocol: str | SeedProtocol,
    data_root: str | os.PathLike,
    *,
    splits_dir: str | os.PathLike | None = None,
    variants: tuple[str, ...] | None = None,
    repetitions: int | None = None,
    max_epochs: int | None = None,
    models: tuple[str, ...] | None = None,
    clips_per_genre: int | None = None,
    precision: str = "fp32",
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    on_result=None,
) -> dict:
    """Train the seed's architecture(s) under its own protocol and the honest ones.

    Parameters
    ----------
    protocol : one of :data:`PROTOCOL_NAMES`, or a :class:`SeedProtocol`
    data_root : the GTZAN root (``genres_original``, ``images_original``)
    splits_dir : the fault-filtered split lists (default: ``<data_root>/splits``)
    variants : default ``reproduced``, ``track`` (segment-splitting seeds only), ``filtered``
    repetitions : runs of the random variants (seeds 0, 1, ...; default: the seed's own); the
        filtered split is fixed and runs once
    max_epochs : cap on the seed's epochs where 2 cores cannot afford them (recorded)
    models : a subset of the seed's architectures
    clips_per_genre : train and test on at most this many clips of each genre (a smaller budget; recorded)
    precision : ``bf16`` trains under bfloat16 autocast (recorded; for CPUs with AMX and GPUs)
    on_result : called with the partial result after every run (nothing computed is lost),
        e.g. ``functools.partial(genrekit.comparison.write_comparison, out_dir=...)``

    Returns
    -------
    dict
        the one ``compare.json`` schema (:mod:`genrekit.comparison`): ``protocol`` (the seed's, as
        :meth:`SeedProtocol.to_dict`), ``budget``, ``data``, ``hardware`` and ``models`` (model ->
        variant -> runs, ``accuracy_mean``/``_sd``, ``clip_accuracy_mean``/``_sd`` ...)

    Raises
    ------
    DatasetError
        unknown protocol, or data without the tracks the protocol needs
    """
    if isinstance(protocol, str):
        if protocol not in SEED_PROTOCOLS:
            raise DatasetError(f"unknown protocol '{protocol}'; choose one of: {', '.join(PROTOCOL_NAMES)}")
        protocol = SEED_PROTOCOLS[protocol]
    splits_dir = Path(splits_dir) if splits_dir is not None else Path(data_root) / "splits"
    device = torch.device(device) if device is not None else default_device()
    if variants is None:
        variants = ("reproduced", "track", "filtered") if protocol.split_by == "segment" else ("reproduced", "filtered")
    repetitions = repetitions or protocol.repetitions
    features = dict(protocol.features)
    data = prepare(
        data_root,
        input_kind=protocol.input_kind,
        feature_config=make_feature_config(features.pop("kind"), **features),
        labels=list(protocol.genres) if protocol.genres else None,
        cache_dir=cache_dir,
        progress=progress,
    )
    if clips_per_genre:
        data = subset_clips(data, clips_per_genre)
    samples = cut_samples(data)
    epochs = protocol.train.epochs if max_epochs is None else min(max_epochs, protocol.train.epochs)
    config = replace(protocol.train, epochs=epochs, patience=min(protocol.train.patience, epochs), precision=precision)
    about = {
        "protocol": protocol.to_dict(),
        "budget": {
            "epochs": config.epochs,
            "seed_epochs": protocol.train.epochs,
            "repetitions": repetitions,
            "seed_repetitions": protocol.repetitions,
            "precision": precision,
            "clips_per_genre": clips_per_genre,
        },
        "data": {
            "root": str(data_root),
            "input_kind": protocol.input_kind,
            "clips": len(data.y),
            "samples": len(samples.y),
            "window": [data.feature_config.n_bins, data.feature_config.segment_frames],
            "unreadable": data.failed,
        },
        "hardware": hardware(device),
    }

    def folds(variant: str):
        seeds = range(1 if variant == "filtered" else repetitions)  # the filtered split is one fixed split
        name = "filtered" if variant == "filtered" else "seed{}"
        return lambda: [
            Fold(name.format(seed), *split_samples(protocol, variant, data, samples, seed=seed, splits_dir=splits_dir))
            for seed in seeds
        ]

    return run_comparison(
        models={m: protocol.models[m] for m in models or tuple(protocol.models)},
        variants={v: folds(v) for v in variants},
        run=_runner(protocol, data, samples, config=config, device=device, progress=progress),
        about=about,
        on_result=on_result,
    )


def hardware(device: torch.device) -> dict:
    """Where the runs trained: device, CPU and thread count."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "device": str(device),
        "gpu": gpu,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
