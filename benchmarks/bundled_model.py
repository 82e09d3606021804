"""The recipes of the bundled models (``make bundled-model`` writes the default one).

``musicnn`` (the default, ``musicnn-gtzan.pt``): the genre head (``embedding_head``, linear) on the
frozen MSD musicnn embeddings (penultimate + tags, one per 3-s patch) of all the GTZAN clips that
have audio, 30 epochs, no validation side. A variant that also trains on the clips we only have as
Kaggle images (``images`` in :class:`outside_variants.Variant`: their embeddings reconstructed,
``_image_variants.py``) can be shipped by naming its row as the recipe's ``variant``; the one
tried (bridged, weight 1/4) was not shipped (results/outside_images_candidate.md). ``gknet`` (``gknet-gtzan.pt``): gknet on the
Kaggle-image features of all 999 GTZAN images, 20 epochs. Every track trains (the ``none``
protocol with ``val_fraction=0``); the checkpoint records the ids it trained on. The accuracy
stored in the checkpoint is the one measured for the same recipe under held-out protocols
(results/outside_variants.json: GTZAN 5-fold CV, the fault-filtered test and the outside set;
results/bridge.json and images_protocols.json for gknet).

Calibration (``musicnn``): the same recipe is trained on each of the 5 GTZAN folds (stratified,
seed 0); the temperature that best fits the probabilities of the held-out clips and of two augmented
copies of each (codecs, EQ, pitch, noise: ``_augment.py``) is baked into the head
(``temperature`` of ``embedding_head``, applied after training, so torch and ONNX agree), and the
``confident`` threshold is the lowest top probability at which those held-out predictions are right
95 % of the time (:func:`outside_variants.calibrate`). The threshold in use is
:class:`genrekit.presence.PresenceConfig`'s ``confident``: this script says when they differ.

Out of distribution (``musicnn``): the genre means and the shared, shrunk covariance of the
training patches' embeddings are stored in the head (buffers ``ood_means``, ``ood_precision``);
a window whose least Mahalanobis distance to a genre (per dimension) exceeds the 99th percentile
of the held-out GTZAN windows' (the 5 folds' models' own fits) keeps a tenth of its probabilities
and is otherwise uniform, so a clip made mostly of such windows is never ``confident``. The
``confident`` threshold is chosen on the gated held-out probabilities.

Tag prior (``musicnn``): the MSD tagger's own log-odds of the tags naming seven of the genres
(``_tag_prior.py``: written down from the tag names, never tuned) are added, with weight 2, to the
head's log-probabilities of those genres before the temperature, moving probability only among them
(``prior_rows``/``prior_weight`` of ``embedding_head``); the temperature and thresholds are fitted
with the prior in place. The weight is the best outside of the three fixed before any figure (0.5, 1,
2): results/outside_variants.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from _common import parser
from _results import RESULTS, update_summary

from genrekit.calibration import confident_threshold, expected_calibration_error, ood_gated, track_probabilities
from genrekit.checkpoint import bundled_model_path
from genrekit.config import TrainConfig
from genrekit.experiment import fit, prepare
from genrekit.features import make_feature_config
from genrekit.presence import PresenceConfig
from genrekit.splits import Fold, make_split

RECIPES = {
    "musicnn": {
        "file": "musicnn-gtzan.pt",
        "input": "audio",
        "features": ("musicnn", {}),
        "model": "embedding_head",
        "train": {"epochs": 30, "windows_per_track": 10, "batch_size": 64},
        "description": "frozen musicnn (MSD) embeddings + a linear genre head trained on GTZAN audio, with the MSD tags "
        "as a prior for the genres they name, temperature-calibrated, unsure out of distribution",
        "trained_on": "all {n} GTZAN clips with audio (10 genres)",
        # its figures in results/outside_variants.json
        "variant": "tag prior (not centred) among the genres it names, weight 2 (a priori) + OOD gate p99",
        "accuracy": [
            ("outside_variants", ("cv_balanced_mean",), "GTZAN audio 5-fold CV, balanced"),
            ("outside_variants", ("cv_balanced_sd",), "GTZAN audio 5-fold CV, balanced, sd"),
            ("outside_variants", ("filtered_test_acc",), "GTZAN fault-filtered test clips with audio"),
            ("outside_variants", ("outside_balanced_acc",), "outside GTZAN (8 genres), balanced"),
            ("outside_variants", ("outside_confident_precision",), "outside GTZAN, confident precision"),
            ("outside_variants", ("outside_confident_share",), "outside GTZAN, confident share"),
            ("outside_variants", ("outside_ece",), "outside GTZAN, ECE"),
            ("outside_variants", ("outside_other_unsure_share",), "outside GTZAN, non-genre music unsure"),
        ],
    },
    "gknet": {
        "file": "gknet-gtzan.pt",
        "input": "images",
        "features": ("kaggle-image", {}),
        "model": "gknet",
        "train": {"epochs": 20, "windows_per_track": 4},
        "description": "gknet on the Kaggle GTZAN image features; hears audio via the renderer",
        "trained_on": "all {n} GTZAN Kaggle images (10 genres)",
        "accuracy": [
            ("bridge", ("filtered_test_acc",), "fault-filtered split, test"),
            ("bridge", ("bridge_audio_acc",), "fault-filtered test clips with audio, from audio"),
            ("images_protocols", ("results", "gknet", "accuracy_mean"), "random 80/20 split, mean over seeds"),
        ],
    },
}


def measured(recipe: dict) -> dict:
    """The figures measured for this recipe on held-out data, from the committed results."""
    out = {}
    for name, keys, label in recipe["accuracy"]:
        path = RESULTS / f"{name}.json"
        value = json.loads(path.read_text()) if path.exists() else None
        if name == "outside_variants" and value:  # the row of this recipe's variant
            value = next((v for v in value["variants"] if v["variant"] == recipe["variant"]), None)
        for k in keys:
            value = value.get(k) if isinstance(value, dict) else None
        if value is not None:
            out[label] = round(float(value), 4)
    return out


def variant_of(recipe: dict):
    """The :class:`outside_variants.Variant` a recipe ships (its head, training and augmented copies)."""
    from outside_variants import VARIANTS

    return next(v for v in VARIANTS if v.name == recipe["variant"])


def calibrated(recipe: dict, data, device, clips=None) -> dict:
    """Temperature, OOD threshold and confident threshold of ``recipe`` from its GTZAN out-of-fold predictions
    (``clips``: the image-only clips of a variant that trains on them, :class:`_image_variants.ImageClips`)."""
    from outside_variants import (
        PRECISION,
        calibrate,
        image_trainer,
        ood_threshold,
        out_of_fold,
        prior_applied,
        trainer,
        windowed,
    )

    variant = variant_of(recipe)
    folds = make_split("kfold", ids=data.ids, labels=data.track_labels, seed=0, val_fraction=0).folds
    trained = (
        image_trainer(variant, data, device, clips, np.arange(len(clips.tracks)))
        if variant.images
        else trainer(variant, data, device)
    )
    oof, scores = out_of_fold(trained, data, folds, cfg=windowed(data, variant).feature_config)
    if variant.prior:  # the head adds the tag prior before the temperature: calibrated with it
        everything = Fold("all", np.arange(len(data.y)), np.zeros(0, int), np.zeros(0, int))
        oof = prior_applied({"oof": oof, "test": [], "outside": []}, variant, data, [], folds, everything)["oof"]
    y = np.tile(data.y, len(oof) // len(data.y))
    cal = calibrate(oof, y)
    if variant.ood:  # the threshold of the gated held-out probabilities, at the temperature fitted before the gate
        thr = ood_threshold(scores[: len(data.y)], variant.ood)
        gated = [
            ood_gated(
                window_log_probs=w, scores=s, threshold=thr, keep=variant.ood_keep, temperature=cal["temperature"]
            )
            for w, s in zip(oof, scores)
        ]
        p = track_probabilities(window_log_probs=gated, temperature=1.0)
        cal.update(
            {
                "ood_threshold": round(thr, 4),
                "ood_keep": variant.ood_keep,
                "confident_threshold": confident_threshold(
                    confidence=p.max(1), correct=p.argmax(1) == y, precision=PRECISION
                ),
                "oof_ece_after": expected_calibration_error(confidence=p.max(1), correct=p.argmax(1) == y),
                "rule": cal["rule"]
                + f"; OOD threshold: the {variant.ood:g}th percentile of the held-out GTZAN windows' "
                "scores (each fold's genre means and covariance), and the confident threshold of the gated ones",
            }
        )
    if cal["confident_threshold"] != PresenceConfig().confident:
        print(
            f"NOTE: the rule gives the confident threshold {cal['confident_threshold']}, PresenceConfig uses "
            f"{PresenceConfig().confident}: set PresenceConfig.confident to it"
        )
    return cal


def default_model_figures() -> dict:
    """The summary keys of the default model's held-out GTZAN figures: those of its recipe's variant
    (results/outside_variants.json, the shipped recipe with its gate and prior)."""
    m = measured(RECIPES["musicnn"])
    return {
        "audio_subset_cv_balanced_acc": m.get("GTZAN audio 5-fold CV, balanced"),
        "audio_subset_cv_balanced_acc_sd": m.get("GTZAN audio 5-fold CV, balanced, sd"),
        "filtered_audio_test_acc": m.get("GTZAN fault-filtered test clips with audio"),
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--recipe", choices=list(RECIPES), default="musicnn")
    p.add_argument("--out", type=Path, default=None, help="where to write the checkpoint (default: the bundled file)")
    p.add_argument(
        "--figures-only",
        action="store_true",
        help="train nothing: only put the default recipe's held-out GTZAN figures into summary.json",
    )
    p.set_defaults(epochs=None, windows_per_track=None)
    a = p.parse_args()
    r = RECIPES[a.recipe]
    if a.figures_only:
        update_summary(default_model_figures())
        return
    kind, settings = r["features"]
    data = prepare(
        a.data, input_kind=r["input"], feature_config=make_feature_config(kind, **settings), progress=not a.no_progress
    )
    train = {**r["train"], **{k: v for k, v in (("epochs", a.epochs), ("windows_per_track", a.windows_per_track)) if v}}
    (fold,) = make_split("none", ids=data.ids, labels=data.track_labels, val_fraction=0).folds
    calibration, params, train_data, n_images = None, {}, data, 0
    if "variant" in r:  # the head, training settings and augmented copies of the variant it ships
        from outside_variants import BASE_TRAIN, windowed, with_copies

        v = variant_of(r)
        clips = None
        if v.images:  # the image-only clips (their embeddings reconstructed: _image_variants.py)
            from _image_variants import ImageClips

            clips = ImageClips(root=a.data, data=data)
            n_images = len(clips.tracks)
        calibration, params = calibrated(r, data, a.device, clips), dict(v.params)
        train = {**BASE_TRAIN, **v.train, **{k: x for k, x in train.items() if k not in BASE_TRAIN}}
        train_data = with_copies(windowed(data, v), v.copies)
        idx = np.arange(len(train_data.y))
        if clips is not None:
            ext, idx = clips.training_data(
                data=data,
                train=np.arange(len(data.y)),
                images=np.arange(n_images),
                bridge=v.bridge,
                domain=v.domain,
                image_weight=v.image_weight,
            )
            train_data = windowed(ext, v)
        fold = Fold("none", idx, np.zeros(0, int), np.zeros(0, int))
    ckpt, result = fit(
        train_data,
        fold,
        model=r["model"],
        model_params=params,
        config=TrainConfig(**train),
        device=a.device,
        progress=not a.no_progress,
        metadata={
            "description": r["description"],
            "trained_on": r["trained_on"].format(n=len(data.y), n_images=n_images),
            "protocol": "final model on all data; accuracy measured for the same recipe on held-out splits",
            "accuracy": measured(r),
            "recipe": f"benchmarks/bundled_model.py --recipe {a.recipe}",
            **({"calibration": calibration} if calibration else {}),
        },
    )
    if calibration:  # after training: the temperature only rescales the trained head's logits
        ckpt.model_params = {**ckpt.model_params, "temperature": calibration["temperature"]}
    if calibration and v.prior:  # the MSD-tag prior among the genres the tags name (_tag_prior.py), in the head
        if v.prior == "fitted" or v.prior_centred or not v.prior_among_named:
            raise SystemExit(f"the head applies the tags' own log-odds among the named genres only, not '{v.name}'")
        from _tag_prior import prior_rows

        rows = prior_rows(labels=data.labels)
        ckpt.model_params = {**ckpt.model_params, "prior_rows": rows, "prior_weight": float(v.prior)}
    if calibration and "ood_threshold" in calibration:  # the gate: genre means and precision of all training windows
        import torch
        from outside_variants import ood_fit, windowed

        means, precision = ood_fit(data, np.arange(len(data.y)), windowed(data, v).feature_config)
        ckpt.model_params = {
            **ckpt.model_params,
            "ood_threshold": calibration["ood_threshold"],
            "ood_keep": calibration["ood_keep"],
        }
        ckpt.state_dict = {
            **ckpt.state_dict,
            "ood_means": torch.tensor(means, dtype=torch.float32),
            "ood_precision": torch.tensor(precision, dtype=torch.float32),
        }
    path = ckpt.save(a.out or bundled_model_path().with_name(r["file"]))
    print(
        f"model written to {path} ({path.stat().st_size / 1e6:.2f} MB, {result.seconds:.0f} s, "
        f"{len(ckpt.split['train'])} training ids recorded)"
    )
    if a.out is None and path == bundled_model_path():  # only the default bundled model's figures
        update_summary(
            {
                "bundled_model_name": path.name,
                "train_default_seconds": round(result.seconds, 1),
                **(default_model_figures() if a.recipe == "musicnn" else {}),
            }
        )


if __name__ == "__main__":
    main()
