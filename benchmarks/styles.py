"""Styles (the musicnn MSD tags) on our data: does each tag that names a genre find that genre?

For every GTZAN clip with audio and every outside clip (measuring only: nothing is fitted), the
bundled model's style probabilities (``genrekit.tagging.styles.predict_with_styles``, the same
pass as the genre). Per tag that names a genre of the set, the ROC-AUC of the tag's probability
for "this clip is of that genre" against all other clips (1.0: the tag ranks every clip of the
genre above every other; 0.5: chance). On the outside set the Emotify ``electronic`` clips, which
no GTZAN genre fits, are scored with the electronic tags, and how often they rank in the top 5.

    python benchmarks/styles.py [--data ../shared/data/gtzan] [--outside ../shared/data/outside] [--clips N]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import SHARED_DATA, md_table, update_summary, write_results

from genrekit.predictor import Predictor
from genrekit.tagging.styles import predict_with_styles

# genre of the data set -> the MSD tags that name it
GENRE_TAGS = {
    "rock": ["rock"],
    "pop": ["pop"],
    "jazz": ["jazz"],
    "metal": ["metal", "heavy metal"],
    "blues": ["blues"],
    "country": ["country"],
    "hiphop": ["Hip-Hop"],
    "disco": ["dance", "funk"],
    "other": ["electronic", "electronica", "electro", "House"],
}


def auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC-AUC by ranks (ties count half); None without both classes."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def clips(data: Path, outside: Path, limit: int) -> dict[str, list[tuple[Path, str]]]:
    gtzan = [(p, p.parent.name) for p in sorted((data / "genres_original").glob("*/*")) if p.is_file()]
    with open(outside / "manifest.csv") as f:
        out = [(outside / r["path"], r["genre"]) for r in csv.DictReader(f)]
    if limit:
        gtzan, out = gtzan[:: max(1, len(gtzan) // limit)], out[:: max(1, len(out) // limit)]
    return {"gtzan": gtzan, "outside": out}


def measure(predictor: Predictor, items: list[tuple[Path, str]]) -> tuple[np.ndarray, list[str], list[str]]:
    rows, labels, tags = [], [], None
    for path, genre in items:
        try:
            _, styles = predict_with_styles(predictor, path)
        except Exception as exc:  # noqa: BLE001 - a faulty clip is left out and said
            print(f"skipped {path}: {exc}", file=sys.stderr)
            continue
        if not styles:
            continue
        tags = tags or list(styles)
        rows.append([styles[t] for t in tags])
        labels.append(genre)
    return np.array(rows), labels, tags or []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--outside", type=Path, default=SHARED_DATA.parent / "outside")
    ap.add_argument("--clips", type=int, default=0, help="about this many clips per set (0: all)")
    a = ap.parse_args()
    predictor = Predictor.load()
    t0 = time.perf_counter()
    result, md_rows = {}, []
    for name, items in clips(a.data, a.outside, a.clips).items():
        x, labels, tags = measure(predictor, items)
        y = np.array(labels)
        per = {}
        for genre, names in GENRE_TAGS.items():
            for tag in names:
                if (y == genre).any():
                    per[f"{genre}:{tag}"] = auc(x[:, tags.index(tag)], y == genre)
                    md_rows.append([name, genre, int((y == genre).sum()), tag, f"{per[f'{genre}:{tag}']:.3f}"])
        top5 = np.argsort(-x, axis=1)[:, :5]
        electronic = [tags.index(t) for t in GENRE_TAGS["other"]]
        other = y == "other"
        in_top5 = float(np.mean([bool(set(row) & set(electronic)) for row in top5[other]])) if other.any() else None
        firsts = {genre: names[0] for genre, names in GENRE_TAGS.items()}
        main_aucs = [per[f"{g}:{t}"] for g, t in firsts.items() if f"{g}:{t}" in per and per[f"{g}:{t}"] is not None]
        result[name] = {
            "clips": len(labels),
            "auc": per,
            "mean_auc_first_tag": float(np.mean(main_aucs)),
            "other_with_an_electronic_tag_in_top5": in_top5,
        }
    seconds = time.perf_counter() - t0
    summary = {
        "styles_gtzan_mean_auc": round(result["gtzan"]["mean_auc_first_tag"], 3),
        "styles_outside_mean_auc": round(result["outside"]["mean_auc_first_tag"], 3),
        "styles_outside_electronic_auc": round(result["outside"]["auc"].get("other:electronic") or 0, 3),
    }
    md = f"""# Styles: the musicnn MSD tags on our data (benchmarks/styles.py)

The bundled model's 50 style probabilities (MSD_musicnn's tags, the mean over a clip's 3-s patches),
scored as detectors of the genres they name: ROC-AUC of the tag for "clip of that genre" against all
other clips of the set (0.5: chance). Nothing is fitted; {seconds:.0f} s.

{md_table(["set", "genre", "clips", "tag", "ROC-AUC"], md_rows)}

Mean over each genre's first tag: GTZAN {summary["styles_gtzan_mean_auc"]}, outside {summary["styles_outside_mean_auc"]}.
Outside `other` (Emotify electronic, no GTZAN genre fits): `electronic` AUC {summary["styles_outside_electronic_auc"]};
clips with an electronic tag (electronic, electronica, electro, House) among their top 5 styles:
{result["outside"]["other_with_an_electronic_tag_in_top5"]}.
"""
    write_results("styles", {"summary": summary, **result, "seconds": seconds}, md)
    update_summary(summary)
    print(md)


if __name__ == "__main__":
    main()
