"""The recipe of the bundled model: gknet on the Kaggle-image features of all 999 GTZAN images.

Run as ``make bundled-model``. No validation side (every track trains: the ``none`` protocol with
``val_fraction=0``), a fixed number of epochs; the checkpoint records the ids it trained on. The
accuracy stored in the checkpoint is the one measured for the same recipe under the held-out
protocols (benchmarks/results/bridge.json, images_protocols.json).
"""
from __future__ import annotations

import json
from pathlib import Path

from _common import parser
from _results import RESULTS, update_summary

from genrekit.checkpoint import bundled_model_path
from genrekit.config import TrainConfig
from genrekit.experiment import fit, prepare
from genrekit.kaggle_image import KaggleImageConfig
from genrekit.models import DEFAULT_MODEL
from genrekit.splits import make_split


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--out", type=Path, default=None, help="where to write the checkpoint (default: the bundled model)")
    a = p.parse_args()
    data = prepare(a.data, input_kind="images", feature_config=KaggleImageConfig(), progress=not a.no_progress)
    accuracy = {}
    for name, key, label in [("bridge", "filtered_test_acc", "fault-filtered split, test"),
                             ("bridge", "bridge_audio_acc", "fault-filtered test clips with audio, from audio"),
                             ("images_protocols", None, "random 80/20 split, mean over seeds")]:  # fmt: skip
        path = RESULTS / f"{name}.json"
        if path.exists():
            d = json.loads(path.read_text())
            value = d.get(key) if key else d.get("results", {}).get(DEFAULT_MODEL, {}).get("accuracy_mean")
            if value is not None:
                accuracy[label] = round(float(value), 4)
    (fold,) = make_split("none", ids=data.ids, labels=data.track_labels, val_fraction=0).folds
    ckpt, result = fit(
        data, fold, model=DEFAULT_MODEL, config=TrainConfig(epochs=a.epochs, windows_per_track=a.windows_per_track),
        device=a.device, progress=not a.no_progress,
        metadata={
            "description": "genrekit default model (gknet) on the Kaggle GTZAN image features; hears audio via the renderer",
            "trained_on": f"all {len(fold.train)} GTZAN Kaggle images (10 genres)",
            "protocol": "final model on all data; accuracy measured for the same recipe on held-out splits",
            "accuracy": accuracy,
            "recipe": "make bundled-model (benchmarks/bundled_model.py)",
        },
    )  # fmt: skip
    path = ckpt.save(a.out or bundled_model_path())
    print(f"model written to {path} ({path.stat().st_size / 1e6:.2f} MB, {result.seconds:.0f} s, "
          f"{len(ckpt.split['train'])} training ids recorded)")  # fmt: skip
    if a.out is None:  # only the bundled model's figures go to the summary
        update_summary({"bundled_model_name": path.name, "train_default_seconds": round(result.seconds, 1)})


if __name__ == "__main__":
    main()
