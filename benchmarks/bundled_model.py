"""The recipe of the bundled model: gknet on the Kaggle-image features of all 999 GTZAN images.

Run as ``make bundled-model``. No validation side (every track trains), a fixed number of epochs;
the accuracy stored in the checkpoint is the one measured for the same recipe under the
held-out protocols (benchmarks/results/bridge.json, images_protocols.json).
"""
from __future__ import annotations

import json

import numpy as np

from _common import parser
from _results import RESULTS, update_summary

from genrekit.experiment import fit, prepare
from genrekit.features import FeatureConfig
from genrekit.predictor import bundled_model_path
from genrekit.train import TrainConfig


def main() -> None:
    a = parser(__doc__).parse_args()
    data = prepare(a.data, input_kind="images", feature_config=FeatureConfig(kind="kaggle-image"), progress=not a.no_progress)
    accuracy = {}
    for name, key, label in [("bridge", "filtered_test_acc", "fault-filtered split, test"),
                             ("bridge", "bridge_audio_acc", "fault-filtered test clips with audio, from audio"),
                             ("images_protocols", None, "random 80/20 split, mean over seeds")]:  # fmt: skip
        path = RESULTS / f"{name}.json"
        if path.exists():
            d = json.loads(path.read_text())
            value = d.get(key) if key else d.get("results", {}).get("gknet", {}).get("accuracy_mean")
            if value is not None:
                accuracy[label] = round(float(value), 4)
    ckpt, result = fit(
        data, np.arange(len(data.y)), None, TrainConfig(epochs=a.epochs, windows_per_track=a.windows_per_track),
        progress=not a.no_progress,
        metadata={
            "description": "genrekit default model (gknet) on the Kaggle GTZAN image features; hears audio via the renderer",
            "trained_on": f"all {len(data.y)} GTZAN Kaggle images (10 genres)",
            "protocol": "final model on all data; accuracy measured for the same recipe on held-out splits",
            "accuracy": accuracy,
            "recipe": "make bundled-model (benchmarks/bundled_model.py)",
        },
    )  # fmt: skip
    path = ckpt.save(bundled_model_path())
    print(f"bundled model written to {path} ({path.stat().st_size / 1e6:.2f} MB, {result.seconds:.0f} s)")
    update_summary({"bundled_model_name": path.name, "train_default_seconds": round(result.seconds, 1)})


if __name__ == "__main__":
    main()
