"""Issue 2 target (c): the 328-clip audio subset, stratified 5-fold track-level CV, log-mel features,
default model; balanced accuracy (the subset is unbalanced) and per-genre recall."""

from __future__ import annotations

import numpy as np
from _common import parser
from _results import md_table, update_summary, write_results

from genrekit.comparison import run_protocol
from genrekit.config import TrainConfig
from genrekit.experiment import prepare
from genrekit.features.logmel import LogMelConfig
from genrekit.models import DEFAULT_MODEL
from genrekit.splits import make_split


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--folds", type=int, default=5)
    a = p.parse_args()
    data = prepare(a.data, input_kind="audio", feature_config=LogMelConfig(), progress=not a.no_progress)
    split = make_split("kfold", ids=data.ids, labels=data.track_labels, seed=0, folds=a.folds)
    config = TrainConfig(epochs=a.epochs, windows_per_track=a.windows_per_track)
    r = run_protocol(data, split.folds, model=DEFAULT_MODEL, config=config, device=a.device, progress=not a.no_progress)
    recall = {g: float(np.mean([f["per_class_recall"][g] for f in r["runs"]])) for g in data.labels}
    counts = {g: int((data.y == i).sum()) for i, g in enumerate(data.labels)}
    md = (
        f"# Audio subset ({len(data.y)} clips), {a.folds}-fold track-level CV, log-mel, gknet\n\n"
        + md_table(
            ["measure", "mean ± sd"],
            [
                ["balanced accuracy", f"{r['balanced_accuracy_mean']:.3f} ± {r['balanced_accuracy_sd']:.3f}"],
                ["accuracy", f"{r['accuracy_mean']:.3f} ± {r['accuracy_sd']:.3f}"],
                ["macro-F1", f"{r['macro_f1_mean']:.3f} ± {r['macro_f1_sd']:.3f}"],
                ["segment accuracy", f"{r['segment_accuracy_mean']:.3f} ± {r['segment_accuracy_sd']:.3f}"],
                ["train seconds per fold", f"{r['train_seconds_mean']:.0f}"],
            ],
        )
        + "\n\nPer-genre recall (mean over folds):\n\n"
        + md_table(["genre", "clips", "recall"], [[g, counts[g], f"{recall[g]:.2f}"] for g in data.labels])
    )
    write_results(
        "audio_cv",
        {
            "result": r,
            "per_genre_recall": recall,
            "clips_per_genre": counts,
            "epochs_budget": a.epochs,
            "unreadable": data.failed,
        },
        md,
    )
    # audio_subset_cv_balanced_acc is the default model's figure (bundled_model.py)
    update_summary({"gknet_audio_subset_cv_balanced_acc": round(r["balanced_accuracy_mean"], 4)})
    print(md)


if __name__ == "__main__":
    main()
