"""Issues 2 (b) and 3 (4): the default model trained on Kaggle images with the fault-filtered split,
tested from the images and, for the test clips that have audio, from the audio itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import parser
from _results import md_table, update_summary, write_results

from genrekit.config import TrainConfig
from genrekit.datasets import load_dataset
from genrekit.datasets.cache import load_features
from genrekit.evaluate import evaluate_tracks
from genrekit.experiment import evaluate, fit, prepare
from genrekit.features.kaggle_image import KaggleImageConfig
from genrekit.inference import Classifier
from genrekit.models import DEFAULT_MODEL
from genrekit.splits import make_split


def main() -> None:
    a = parser(__doc__).parse_args()
    config = KaggleImageConfig()
    images = prepare(a.data, input_kind="images", feature_config=config, progress=not a.no_progress)
    split = make_split("filtered", ids=images.ids, labels=images.track_labels, splits_dir=Path(a.data) / "splits")
    (fold,) = split.folds
    ckpt, result = fit(
        images,
        fold,
        model=DEFAULT_MODEL,
        config=TrainConfig(epochs=a.epochs, windows_per_track=a.windows_per_track),
        device=a.device,
        progress=not a.no_progress,
    )
    test = evaluate(ckpt, images, fold.test)  # refuses test clips the model trained or validated on
    classifier = Classifier(ckpt.build(), config, images.labels)

    # the same held-out clips, from audio: rendered to the image matrix, then the same model
    audio_tracks = {t.id: t for t in load_dataset(a.data, input_kind="audio")}
    both = [i for i in fold.test if images.tracks[i].id in audio_tracks]
    audio = load_features([audio_tracks[images.tracks[i].id] for i in both], config, progress=not a.no_progress)
    kept = [i for i in both if images.tracks[i].id in {t.id for t in audio.tracks}]
    y = images.y[kept]
    from_images = evaluate_tracks(classifier, [images.features[i] for i in kept], y)
    from_audio = evaluate_tracks(classifier, audio.features, y)
    agree = float(np.mean(from_images["track_probabilities"].argmax(1) == from_audio["track_probabilities"].argmax(1)))

    res = {
        "filtered_test_acc": test["track"]["accuracy"],
        "filtered_test_balanced_acc": test["track"]["balanced_accuracy"],
        "filtered_test_n": len(fold.test),
        "filtered_missing": {part: len(ids) for part, ids in split.notes["missing_ids"].items()},
        "bridge_clips": len(kept),
        "bridge_image_acc": from_images["track"]["accuracy"],
        "bridge_audio_acc": from_audio["track"]["accuracy"],
        "bridge_prediction_agreement": agree,
        "best_epoch": result.best_epoch,
        "epochs_budget": a.epochs,
        "train_seconds": round(result.seconds, 1),
        "per_genre_recall_filtered_test": {g: v["recall"] for g, v in test["track"]["per_class"].items()},
        "audio_unreadable": audio.failed,
    }
    md = "# Images ↔ audio bridge, fault-filtered split\n\n" + md_table(
        ["measure", "value"],
        [
            [
                "filtered test accuracy, from images (all test clips)",
                f"{res['filtered_test_acc']:.3f} (n={len(fold.test)})",
            ],
            ["filtered test balanced accuracy", f"{res['filtered_test_balanced_acc']:.3f}"],
            ["test clips that also have audio", len(kept)],
            ["accuracy on those clips from images", f"{res['bridge_image_acc']:.3f}"],
            ["accuracy on those clips from audio (rendered)", f"{res['bridge_audio_acc']:.3f}"],
            ["same top genre, image vs audio", f"{agree:.3f}"],
            ["training", f"{res['train_seconds']:.0f} s, best epoch {result.best_epoch} of {len(result.history)}"],
        ],
    )
    write_results("bridge", res, md)
    update_summary(
        {
            "images_filtered_test_acc": round(res["filtered_test_acc"], 4),
            "bridge_filtered_test_acc": round(res["filtered_test_acc"], 4),
            "bridge_image_acc": round(res["bridge_image_acc"], 4),
            "bridge_audio_acc": round(res["bridge_audio_acc"], 4),
        }
    )
    print(md)


if __name__ == "__main__":
    main()
