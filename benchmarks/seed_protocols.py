"""Issue 12: each seed document's architecture under its own protocol (split, unit, optimiser,
budget) and beside it under the honest ones: its shares drawn over clips (segment leak) and the
fault-filtered split. Results accumulate per protocol in results/seed_protocols.json, so the
protocols can be run one at a time (and a long one on a GPU session)."""

from __future__ import annotations

import json

from _common import parser
from _results import RESULTS, update_summary, write_results

from genrekit.comparison import comparison_markdown
from genrekit.seed_protocols import PROTOCOL_NAMES, SEED_PROTOCOLS, on_images, run_seed_protocol

HEADLINE_MODEL = {
    "seed000": "s000_cnn",
    "seed001": "s001_ann",
    "seed002": "s002_cnn",
    "seed003": "s003_cnn",
    "seed004": "s004_parallel_cnn",
}


def headline(result: dict) -> dict:
    """The claimed figure and, for the seed's headline model, the mean accuracy under its own
    protocol (``reproduced``), its shares drawn over clips (``track_level``, segment-splitting
    seeds only) and the fault-filtered split (``honest``); a variant not run is None."""
    key = result["protocol"]["key"]
    runs = result["models"].get(HEADLINE_MODEL[key], {})

    def mean(variant):
        return round(runs[variant]["accuracy_mean"], 4) if variant in runs else None

    out = {"claimed": result["protocol"]["claimed"], "reproduced": mean("reproduced"), "honest": mean("filtered")}
    if result["protocol"]["split_by"] == "segment":
        out["track_level"] = mean("track")
    return {**out, "model": HEADLINE_MODEL[key], "epochs": result["budget"]["epochs"]}


def _per_protocol(text: str | None, cast) -> dict:
    """'seed000=20,seed003=4' -> {'seed000': 20, 'seed003': 4}."""
    return {k: cast(v) for k, v in (item.split("=") for item in text.split(","))} if text else {}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--protocols", default=",".join(PROTOCOL_NAMES))
    p.add_argument("--max-epochs", help="cap per protocol, e.g. seed000=20,seed003=4 (default: the seed's own)")
    p.add_argument("--repetitions", help="runs per variant per protocol, e.g. seed003=2 (default: the seed's own)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--images", default="", help="audio protocols to run on the image matrices instead, e.g. seed003")
    p.add_argument("--clips-per-genre", help="subset per protocol, e.g. seed003=30 (default: every clip)")
    a = p.parse_args()
    caps, reps = _per_protocol(a.max_epochs, int), _per_protocol(a.repetitions, int)
    subsets, on_image_matrices = _per_protocol(a.clips_per_genre, int), set(filter(None, a.images.split(",")))
    out_json = RESULTS / "seed_protocols.json"
    results = json.loads(out_json.read_text())["results"] if out_json.exists() else {}

    def save(partial: dict) -> None:  # after every run: nothing computed is lost
        results[partial["protocol"]["key"]] = partial
        ordered = {k: results[k] for k in PROTOCOL_NAMES if k in results}
        md = (
            "# The seeds' own protocols, reproduced, and the same models honestly\n\n"
            "*reproduced*: the seed's architecture, unit, split, optimiser and budget as its document states "
            "(unstated choices in the JSON's `protocol.notes`); *same shares, split by track*: the same, with "
            "every window of a clip on one side; *fault-filtered*: the artist-conscious GTZAN split, test side "
            "never used to train or select. Accuracy at the seed's own level (segments or whole clips), mean ± sd "
            "over runs (seeds 0, 1, ...); clip accuracy too where clips are whole on one side. "
            "Where *epochs run* is below the seed's, the budget was cut to fit 2 CPU cores (see the JSON's "
            "`budget`, `data` and `hardware`).\n\n"
            + "\n".join(f"## {key}\n\n{comparison_markdown(r)}" for key, r in ordered.items())
        )
        write_results("seed_protocols", {"results": ordered}, md)
        update_summary({"seed_protocols": {k.replace("seed", "s"): headline(r) for k, r in ordered.items()}})

    for key in a.protocols.split(","):
        if key not in SEED_PROTOCOLS:
            raise SystemExit(f"unknown protocol '{key}'; choose from {', '.join(PROTOCOL_NAMES)}")
        protocol = on_images(SEED_PROTOCOLS[key]) if key in on_image_matrices else SEED_PROTOCOLS[key]
        run_seed_protocol(
            protocol,
            a.data,
            repetitions=reps.get(key),
            max_epochs=caps.get(key),
            clips_per_genre=subsets.get(key),
            device=a.device,
            precision=a.precision,
            progress=not a.no_progress,
            on_result=save,
        )
    print((RESULTS / "seed_protocols.md").read_text())


if __name__ == "__main__":
    main()
