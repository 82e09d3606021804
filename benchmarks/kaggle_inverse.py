"""Issue 17: how close musicnn embeddings reconstructed from the Kaggle images are to the real audio's.

On the GTZAN clips that have both audio and an image: the cosine similarity of the clip-mean
embeddings (penultimate + tags, 250 values; and the penultimate 200 alone), and the one that
matters, the shipped head's top genre on the reconstruction vs on the real audio (the head was
trained on these very audio clips, so its agreement with itself is the measure, not its accuracy).

Routes (:mod:`genrekit.features.kaggle_inverse`):
- ``spectral``: the image's mel power mapped onto musicnn's 96 bands and frames, through the backbone;
- ``rendered``: the clip's own audio rendered to its Kaggle image and inverted the same way (shows
  what the image loses, without the PNG; it is the domain fix's image-route copy of an audio clip);
- ``spectral + bridge``: a ridge map image-route patch embedding → audio patch embedding, fitted on
  the other folds' clips (5 folds, stratified, seed 0), applied to held-out clips;
- ``griffin-lim``: audio from the image by librosa's NNLS + Griffin-Lim (32 iterations), then the
  normal musicnn path; timed, and measured on a few clips only if it is slow.

Writes results/kaggle_inverse.{json,md}.
"""

from __future__ import annotations

import time

import numpy as np
from _common import parser
from _images import image_route_features
from _results import cpu, md_table, write_results

from genrekit.audio import resample
from genrekit.checkpoint import load_checkpoint
from genrekit.datasets import load_dataset
from genrekit.experiment import prepare
from genrekit.features import extract, make_feature_config
from genrekit.features.kaggle_image import image_features
from genrekit.features.kaggle_inverse import griffin_lim_audio
from genrekit.features.musicnn import EMBEDDING_SIZES
from genrekit.inference import Classifier
from genrekit.splits import make_split

RIDGE = 10.0  # the bridge's ridge penalty (on standardised embeddings)


def cosines(a: list[np.ndarray], b: list[np.ndarray], dims: slice = slice(None)) -> np.ndarray:
    """Per clip, the cosine similarity of the clip-mean embeddings of ``a`` and ``b``."""
    ma = np.stack([x.astype(np.float32).mean(axis=1)[dims] for x in a])
    mb = np.stack([x.astype(np.float32).mean(axis=1)[dims] for x in b])
    return (ma * mb).sum(1) / (np.linalg.norm(ma, axis=1) * np.linalg.norm(mb, axis=1))


def fit_bridge(*, image: list[np.ndarray], audio: list[np.ndarray], ridge: float = RIDGE):
    """A ridge map image-route patch embeddings → audio patch embeddings, from paired clips.

    Patches are paired in time order (both routes cut a 30-s clip into the same 3-s patches)."""
    x = np.concatenate([f[:, : min(f.shape[1], g.shape[1])].T for f, g in zip(image, audio)]).astype(np.float64)
    y = np.concatenate([g[:, : min(f.shape[1], g.shape[1])].T for f, g in zip(image, audio)]).astype(np.float64)
    mx, sx, my = x.mean(0), x.std(0) + 1e-6, y.mean(0)
    z = (x - mx) / sx
    w = np.linalg.solve(z.T @ z + ridge * len(z) / 100 * np.eye(z.shape[1]), z.T @ (y - my))

    def apply(f: np.ndarray) -> np.ndarray:
        return (((f.T.astype(np.float64) - mx) / sx) @ w + my).T.astype(np.float32)

    return apply


def top_genres(clf: Classifier, feats: list[np.ndarray]) -> np.ndarray:
    return np.array([w.mean(axis=0).argmax() for w in clf.analyse_tracks(feats)])


def balanced(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == k] == k) for k in np.unique(y)]))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--griffin-lim", type=int, default=10, help="clips (one per genre first) for the Griffin-Lim route")
    a = p.parse_args()
    cfg = make_feature_config("musicnn")
    data = prepare(a.data, input_kind="audio", feature_config=cfg, progress=False)
    images = {t.id: t for t in load_dataset(a.data, input_kind="images")}
    pairs = [i for i, t in enumerate(data.tracks) if t.id in images]
    real = [data.features[i] for i in pairs]
    y = data.y[pairs]
    routes = {
        "spectral": [
            image_route_features(path=images[data.tracks[i].id].path, source="image", config=cfg) for i in pairs
        ],
        "rendered": [image_route_features(path=data.tracks[i].path, source="rendered", config=cfg) for i in pairs],
    }
    folds = make_split(
        "kfold", ids=[data.ids[i] for i in pairs], labels=[data.track_labels[i] for i in pairs], seed=0, val_fraction=0
    ).folds
    bridged: list = [None] * len(pairs)
    for f in folds:
        apply = fit_bridge(image=[routes["spectral"][i] for i in f.train], audio=[real[i] for i in f.train])
        for i in f.test:
            bridged[i] = apply(routes["spectral"][i])
    routes["spectral + bridge (held-out folds)"] = bridged

    ckpt = load_checkpoint()
    clf = Classifier(ckpt.build(), ckpt.feature_config, ckpt.labels)
    real_top = top_genres(clf, real)
    pen = slice(0, EMBEDDING_SIZES["penultimate"])

    def closeness(feats: list[np.ndarray], idx: np.ndarray) -> dict:
        top = top_genres(clf, feats)
        return {
            "clips": len(idx),
            "cosine_mean": float(cosines([real[i] for i in idx], feats).mean()),
            "cosine_penultimate_mean": float(cosines([real[i] for i in idx], feats, pen).mean()),
            "top_genre_agreement": float(np.mean(top == real_top[idx])),
            "balanced_acc_vs_labels": balanced(y[idx], top),
            "real_audio_balanced_acc_same_clips": balanced(y[idx], real_top[idx]),
            "per_genre_agreement": {
                data.labels[k]: f"{int(np.sum((top == real_top[idx])[y[idx] == k]))}/{int(np.sum(y[idx] == k))}"
                for k in np.unique(y[idx])
            },
        }

    everything = np.arange(len(pairs))
    results = {name: closeness(feats, everything) for name, feats in routes.items()}
    results["rendered vs image: cosine"] = float(cosines(routes["rendered"], routes["spectral"]).mean())

    # Griffin-Lim: one clip per genre first, then the next ones, timed
    order = sorted(everything, key=lambda i: (np.sum(y[: i + 1] == y[i]), y[i]))[: a.griffin_lim]
    gl, seconds = [], []
    for i in order:
        t0 = time.perf_counter()
        audio = griffin_lim_audio(db=image_features(images[data.tracks[i].id].path))
        gl.append(extract(cfg, resample(audio, 22050, 16000), sr=16000))
        seconds.append(time.perf_counter() - t0)
    idx = np.array(order)
    results["griffin-lim"] = {**closeness(gl, idx), "seconds_per_clip": float(np.mean(seconds))}
    results["spectral, same clips as griffin-lim"] = closeness([routes["spectral"][i] for i in idx], idx)
    results["griffin-lim: minutes for the 665 image-only clips (estimate)"] = float(np.mean(seconds) * 665 / 60)

    rows = [
        [
            name,
            r["clips"],
            f"{r['cosine_mean']:.3f}",
            f"{r['cosine_penultimate_mean']:.3f}",
            f"{r['top_genre_agreement']:.3f}",
            f"{r['balanced_acc_vs_labels']:.3f} (real audio {r['real_audio_balanced_acc_same_clips']:.3f})",
            ", ".join(f"{g} {v}" for g, v in r["per_genre_agreement"].items()),
        ]
        for name, r in results.items()
        if isinstance(r, dict)
    ]
    md = (
        "# Audio reconstructed from the Kaggle images: how close to the real audio's embeddings\n\n"
        f"{len(pairs)} GTZAN clips with audio and image. Cosine: clip-mean musicnn MSD embedding (penultimate + "
        "tags; penultimate alone) of the reconstruction vs the real audio. Agreement: the shipped head's top genre on "
        "the reconstruction equals its top genre on the real audio (the head trained on these audio clips, so its "
        "accuracy on the real audio is a training figure). `rendered`: the clip's audio rendered to its image "
        "(`kaggle_render.render_matrix`) and inverted as the PNGs are; cosine rendered vs PNG route: "
        f"{results['rendered vs image: cosine']:.4f}. Bridge: ridge map image-route → audio patch embeddings fitted "
        "on the other 4 folds' clips. Griffin-Lim: librosa NNLS + 32 iterations, "
        f"{results['griffin-lim']['seconds_per_clip']:.1f} s per clip here (≈ "
        f"{results['griffin-lim: minutes for the 665 image-only clips (estimate)']:.0f} min for the 665 image-only "
        "clips), so measured on a few clips. What the reconstructed clips do to a head trained on them: the `images:` "
        "rows of outside_variants.md; the best one, trained as the bundled model, was not shipped "
        "(outside_images_candidate.md).\n\n"
        + md_table(
            [
                "route",
                "clips",
                "cosine",
                "cosine (penultimate)",
                "head top-genre agreement",
                "balanced acc vs labels",
                "agreement per genre",
            ],
            rows,
        )
    )
    write_results("kaggle_inverse", {**cpu(), "ridge": RIDGE, "routes": results}, md)
    print(md)


if __name__ == "__main__":
    main()
