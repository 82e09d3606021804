"""Issue 10: heads on the frozen musicnn backbone, side by side with musicnn zero-shot and gknet.

On the 328-clip audio subset, the same 5 folds as ``audio_cv.py`` (stratified k-fold, seed 0):
balanced accuracy and per-genre recall of (a) musicnn's own tags read zero-shot, for the genres
that an MSD tag names, (b) the genre head on the embeddings, (c) gknet on log-mel (read from
``results/audio_cv.json``). Then the fault-filtered split: the head trained on the train+valid
clips that have audio, tested on the 75 test clips with audio, with a 95 % Wilson interval.

Writes results/musicnn_heads.{json,md} and the summary keys ``head_only_cv_balanced_acc``,
``head_only_filtered_test_acc`` (the plain head, without the default model's gate and tag prior:
``bundled_model.py`` writes the default model's ``audio_subset_cv_balanced_acc`` and
``filtered_audio_test_acc``) and ``musicnn_zero_shot_balanced_acc``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from _common import parser
from _results import RESULTS, md_table, update_summary, write_results

from genrekit.comparison import run_protocol
from genrekit.config import TrainConfig
from genrekit.evaluate import classification_metrics
from genrekit.experiment import evaluate, fit, prepare
from genrekit.features import make_feature_config
from genrekit.models.musicnn import MSD_TAGS
from genrekit.splits import Fold, make_split

# the genres an MSD tag names (classical, disco and reggae have none)
ZERO_SHOT_TAGS = {
    "blues": ["blues"],
    "country": ["country"],
    "hiphop": ["Hip-Hop"],
    "jazz": ["jazz"],
    "metal": ["metal", "heavy metal"],
    "pop": ["pop"],
    "rock": ["rock", "classic rock", "hard rock"],
}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k / n."""
    p, d = k / n, 1 + z * z / n
    centre, half = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return float(centre - half), float(centre + half)


def zero_shot(data, idx) -> dict:
    """Genre = the MSD tag (of those naming a genre) with the highest clip-mean probability."""
    tags_at = data.feature_config.n_bins - 50  # the tag probabilities end each msd embedding frame
    genres = [g for g in data.labels if g in ZERO_SHOT_TAGS]
    cols = {g: [tags_at + MSD_TAGS.index(t) for t in ZERO_SHOT_TAGS[g]] for g in genres}
    pred = []
    for i in idx:
        mean = data.features[i].astype(np.float32).mean(axis=1)
        pred.append(data.labels.index(max(genres, key=lambda g: mean[cols[g]].max())))
    return classification_metrics(data.y[idx], np.array(pred), data.labels)


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(epochs=30, windows_per_track=10)
    p.add_argument("--backbones", default="msd")
    p.add_argument("--embedding", default="penultimate+tags")
    p.add_argument("--segment-seconds", type=float, default=3.0)
    p.add_argument("--hidden", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.0, help="0: no early stopping (fixed epochs)")
    a = p.parse_args()
    features = make_feature_config(
        "musicnn", backbones=a.backbones, embedding=a.embedding, segment_seconds=a.segment_seconds
    )
    data = prepare(a.data, input_kind="audio", feature_config=features, progress=not a.no_progress)
    config = TrainConfig(epochs=a.epochs, windows_per_track=a.windows_per_track, batch_size=64)
    params = {"hidden": a.hidden} if a.hidden else {}
    split = make_split("kfold", ids=data.ids, labels=data.track_labels, seed=0, val_fraction=a.val_fraction)
    head = run_protocol(
        data,
        split.folds,
        model="embedding_head",
        model_params=params,
        config=config,
        device=a.device,
        progress=not a.no_progress,
    )
    tags_last = a.backbones.split("+")[-1] == "msd" and a.embedding.split("+")[-1] == "tags"
    zs = [zero_shot(data, f.test) for f in split.folds] if tags_last else []
    gknet = json.loads((RESULTS / "audio_cv.json").read_text())

    filtered = make_split("filtered", ids=data.ids, labels=data.track_labels, splits_dir=Path(a.data) / "splits")
    (f,) = filtered.folds
    train = np.sort(np.concatenate([f.train, f.val]))  # valid is training data once no early stopping is used
    ckpt, _ = fit(
        data,
        Fold("filtered", train, np.zeros(0, int), f.test),
        model="embedding_head",
        model_params=params,
        config=config,
        device=a.device,
        progress=not a.no_progress,
    )
    test = evaluate(ckpt, data, f.test)
    k, n = round(test["track"]["accuracy"] * len(f.test)), len(f.test)

    def recall(folds, key):
        return {g: float(np.mean([x[key][g] for x in folds])) for g in data.labels}

    rows = [
        [
            "musicnn zero-shot (MSD tags; 7 genres named)",
            *(
                f"{np.mean([m[k] for m in zs]):.3f} ± {np.std([m[k] for m in zs], ddof=1):.3f}"
                for k in ("balanced_accuracy", "accuracy")
            ),
        ]
        if zs
        else ["musicnn zero-shot", "n/a", "n/a"],
        [
            "musicnn + genre head",
            f"{head['balanced_accuracy_mean']:.3f} ± {head['balanced_accuracy_sd']:.3f}",
            f"{head['accuracy_mean']:.3f} ± {head['accuracy_sd']:.3f}",
        ],
        [
            "gknet on log-mel (audio_cv.json)",
            f"{gknet['result']['balanced_accuracy_mean']:.3f} ± {gknet['result']['balanced_accuracy_sd']:.3f}",
            f"{gknet['result']['accuracy_mean']:.3f} ± {gknet['result']['accuracy_sd']:.3f}",
        ],
    ]
    head_recall = recall(head["runs"], "per_class_recall")
    zs_recall = {g: float(np.mean([m["per_class"][g]["recall"] for m in zs])) for g in data.labels} if zs else {}
    md = (
        f"# musicnn heads: audio subset ({len(data.y)} clips), the 5 folds of audio_cv.py\n\n"
        f"Features: {features.to_dict()}; head: embedding_head {params or ''}, {a.epochs} epochs, "
        f"{a.windows_per_track} windows per track, validation share {a.val_fraction}.\n\n"
        + md_table(["model", "balanced accuracy", "accuracy"], rows)
        + "\n\nPer-genre recall (mean over folds):\n\n"
        + md_table(
            ["genre", "zero-shot", "head", "gknet"],
            [
                [
                    g,
                    f"{zs_recall[g]:.2f}" if g in ZERO_SHOT_TAGS and zs else "-",
                    f"{head_recall[g]:.2f}",
                    f"{gknet['per_genre_recall'][g]:.2f}",
                ]
                for g in data.labels
            ],
        )
        + f"\n\nFault-filtered split, test clips with audio: accuracy {test['track']['accuracy']:.3f} "
        f"(n = {n}, 95 % interval {wilson(k, n)[0]:.3f}–{wilson(k, n)[1]:.3f}), balanced "
        f"{test['track']['balanced_accuracy']:.3f}; trained on the {len(train)} train+valid clips with audio.\n"
    )
    write_results(
        "musicnn_heads",
        {
            "features": features.to_dict(),
            "head_params": params,
            "train_config": config.to_dict(),
            "val_fraction": a.val_fraction,
            "cv_head": head,
            "cv_zero_shot": zs,
            "gknet_audio_cv": gknet["result"],
            "per_genre_recall": {"head": head_recall, "zero_shot": zs_recall, "gknet": gknet["per_genre_recall"]},
            "filtered_audio_test": {
                "accuracy": test["track"]["accuracy"],
                "n": n,
                "interval95": wilson(k, n),
                "balanced_accuracy": test["track"]["balanced_accuracy"],
                "n_train": len(train),
                "per_genre_recall": {g: v["recall"] for g, v in test["track"]["per_class"].items()},
            },
        },
        md,
    )
    update_summary(
        {
            "head_only_cv_balanced_acc": round(head["balanced_accuracy_mean"], 4),
            "head_only_cv_balanced_acc_sd": round(head["balanced_accuracy_sd"], 4),
            "gknet_audio_subset_cv_balanced_acc": round(gknet["result"]["balanced_accuracy_mean"], 4),
            "head_only_filtered_test_acc": round(test["track"]["accuracy"], 4),
            "head_only_filtered_test_acc_interval95": [round(v, 4) for v in wilson(k, n)],
            **(
                {"musicnn_zero_shot_balanced_acc": round(float(np.mean([m["balanced_accuracy"] for m in zs])), 4)}
                if zs
                else {}
            ),
        }
    )
    print(md)


if __name__ == "__main__":
    main()
