"""Issue 2 targets (a): Kaggle images, stratified random 80/20 track split x N seeds, for the
default model and every seed architecture under the same protocol."""

from __future__ import annotations

import json

from _common import parser
from _results import RESULTS, md_table, update_summary, write_results

from genrekit.comparison import run_protocol
from genrekit.config import TrainConfig
from genrekit.experiment import prepare
from genrekit.features.kaggle_image import KaggleImageConfig
from genrekit.models import DEFAULT_MODEL, model_names
from genrekit.splits import make_split


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed-model-seeds", type=int, default=None, help="fewer splits for the seed architectures")
    p.add_argument("--seed-model-epochs", type=int, default=None)
    p.add_argument("--models", default="all")
    a = p.parse_args()
    data = prepare(a.data, input_kind="images", feature_config=KaggleImageConfig(), progress=not a.no_progress)
    names = model_names() if a.models == "all" else a.models.split(",")
    out_json = RESULTS / "images_protocols.json"
    previous = json.loads(out_json.read_text()).get("results", {}) if out_json.exists() else {}
    results = dict(previous)
    for name in names:
        is_default = name == DEFAULT_MODEL
        seeds = a.seeds if is_default else (a.seed_model_seeds or a.seeds)
        epochs = a.epochs if is_default else (a.seed_model_epochs or a.epochs)
        # one stratified 80/20 split per seed 0..seeds-1 (split i trains with seed i)
        folds = [
            make_split("random", ids=data.ids, labels=data.track_labels, seed=s, test_size=0.2).folds[0]
            for s in range(seeds)
        ]
        cfg = TrainConfig(epochs=epochs, windows_per_track=a.windows_per_track)
        r = run_protocol(data, folds, model=name, config=cfg, device=a.device, progress=not a.no_progress)
        r["epochs_budget"] = epochs
        results[name] = r
        rows = [
            [
                n,
                len(v["runs"]),
                v["epochs_budget"],
                f"{v['accuracy_mean']:.3f} ± {v['accuracy_sd']:.3f}",
                f"{v['balanced_accuracy_mean']:.3f}",
                f"{v['macro_f1_mean']:.3f}",
                f"{v['segment_accuracy_mean']:.3f}",
                f"{v['train_seconds_mean']:.0f}",
            ]
            for n, v in sorted(results.items(), key=lambda kv: -kv[1]["accuracy_mean"])
        ]
        md = (
            "# Kaggle images, stratified random 80/20 track split\n\n"
            "Features: the matrix the images encode (decoded colour map, 128 mel bands x 334 columns), "
            "3-s windows (33 columns), track = mean of window probabilities. 10 % of the training side "
            "is held out for early stopping. Same protocol, splits and training loop for every model.\n\n"
            + md_table(
                [
                    "model",
                    "splits",
                    "max epochs",
                    "track accuracy (mean ± sd)",
                    "balanced acc.",
                    "macro-F1",
                    "segment acc.",
                    "train s/split",
                ],
                rows,
            )
        )
        write_results("images_protocols", {"protocol": "random 80/20, stratified, track level", "results": results}, md)
        summary = {
            "seed_models_images_random_acc": {
                n: round(v["accuracy_mean"], 4) for n, v in results.items() if n != DEFAULT_MODEL
            }
        }
        if DEFAULT_MODEL in results:
            summary["images_random_acc_mean"] = round(results[DEFAULT_MODEL]["accuracy_mean"], 4)
            summary["images_random_acc_sd"] = round(results[DEFAULT_MODEL]["accuracy_sd"], 4)
        update_summary(summary)
        print(md)


if __name__ == "__main__":
    main()
