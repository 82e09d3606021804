"""Issue 17: every head variant tried, with its three figures side by side, and the calibration of each.

For each variant: the GTZAN 5-fold CV balanced accuracy (mean ± sd; the folds of
``musicnn_heads.py``: stratified k-fold, seed 0) on the clips with audio, the fault-filtered test
accuracy (trained on train+valid), and the balanced accuracy over the eight genres of
``../shared/data/outside`` of the variant trained on every clip (as ``bundled_model.py`` does).
The outside set is only measured: the temperature is fitted on the CV folds' out-of-fold windows
and the ``confident`` threshold chosen there (:mod:`genrekit.calibration`; rule: the lowest
threshold at which out-of-fold predictions are right ``PRECISION`` of the time).

An out-of-distribution gate (``ood``): each fold also fits the genre means and shared, shrunk
covariance of its training windows' embeddings (:func:`genrekit.calibration.fit_ood`), or reads
the windows' electronic-music tags; a window scoring beyond a percentile of the clean held-out
windows' scores (chosen a priori: 95 or 99) is gated as :class:`genrekit.models.heads.EmbeddingHead`
gates it (:func:`genrekit.calibration.ood_gated`). ``bundled_model.py`` ships the p99 Mahalanobis one.

The MSD-tag prior (``prior``, :mod:`_tag_prior`): the log-odds of the MSD tags naming seven of the
genres, a mapping fixed from the tag names, added to the head's window log-probabilities with a
weight fixed a priori (or fitted out of fold), before the temperature and the gate; a head on the
tags only (``first_input``) and one trained with the prior inside it are rows of the same block.

Fine-tuned top (``finetune``, :mod:`_finetune`): the MSD musicnn's mid-end and back end (or the
back end only) fine-tuned with the genre head on GTZAN patches, clean and augmented, from its cached
frozen front end; the OOD gate and the tag prior still read the frozen tagger's embedding.

The outside figures are computed in process on the cached embeddings (the same frames and windows
as ``genrekit predict``); ``outside.py`` measures the shipped model through the CLI.

Writes results/outside_variants.{json,md}.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import _finetune as ft
import _tag_prior as tp
import numpy as np
from _common import parser
from _results import RESULTS, md_table, write_results
from outside import OUTSIDE

from genrekit.calibration import (
    confident_threshold,
    expected_calibration_error,
    fit_ood,
    fit_temperature,
    ood_gated,
    ood_scores,
    track_probabilities,
)
from genrekit.config import TrainConfig
from genrekit.datasets import Track
from genrekit.datasets.cache import load_features
from genrekit.datasets.gtzan import GENRES
from genrekit.experiment import Data, fit, prepare
from genrekit.features import make_feature_config
from genrekit.features.musicnn import EMBEDDING_SIZES, embedding_sizes
from genrekit.features.windows import stream_windows
from genrekit.inference import Classifier
from genrekit.splits import Fold, make_split

PRECISION = 0.95  # out-of-fold GTZAN precision asked of `confident`: a margin for music that is not GTZAN
# calibration is fitted on the held-out clips and on augmented copies of them (codecs, EQ, pitch,
# noise: _augment.py), which stand for recordings unlike GTZAN's
CALIBRATION_COPIES = 2


@dataclass
class Variant:
    """One recipe: backbones, head parameters, training settings and augmented copies per clip."""

    name: str
    backbones: str = "msd"
    params: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    copies: int = 0
    members: tuple[str, ...] = ()  # an ensemble: the mean of these variants' probabilities
    calibration_copies: int = CALIBRATION_COPIES  # 0 where the backbone's augmented copies are not computed
    segment_seconds: float = 3.0  # the head's windows (3 s: one musicnn patch)
    ood: float = 0.0  # > 0: windows beyond this percentile of held-out GTZAN windows' OOD score are gated
    ood_keep: float = 0.1  # the share of a gated window's probabilities kept (EmbeddingHead's ood_keep)
    ood_score: str = "mahalanobis"  # or "electronic tags": the window's strongest MSD electronic-music tag
    prior: float | str = 0.0  # the MSD-tag prior's weight (_tag_prior.py), or "fitted" (with a bias, out of fold)
    prior_among_named: bool = False  # the prior only moves probability among the genres it names
    prior_centred: bool = True  # the prior less its median over the training windows (False: the tags' own log-odds)
    # --- the 665 image-only clips (issue 17, kaggle_inverse; _image_variants.py) ---
    images: bool = False  # train on the image-only clips' spectral-route embeddings too
    bridge: bool = False  # ... mapped by a ridge map fitted on the fold's training audio clips
    domain: bool = False  # ... and on the rendered image-route copy of each training audio clip
    image_weight: float = 1.0  # an image-only clip is drawn this often relative to an audio clip
    # --- end of the image-only clips' fields ---
    # the taggers whose MSD-tag log-odds are averaged into the prior (default: the variant's own)
    prior_from: tuple[str, ...] = ()
    finetune: ft.FinetuneConfig | None = None  # the top of the MSD musicnn fine-tuned (_finetune.py)


SHIPPED = "tag prior (not centred) among the genres it names, weight 2 (a priori) + OOD gate p99"
VGG_SHIPPED = "VGG MSD: shipped recipe (tag prior not centred among the named genres, weight 2) + OOD gate p99"
# the shipped prior, read from the original frozen tagger's tags
FINETUNE_PRIOR = {"prior": 2.0, "prior_among_named": True, "prior_centred": False}
FINETUNED = (  # the control (0 epochs: the linear probe on clean + copies, nothing fine-tuned), then the recipes
    ("none, linear probe only (control)", ft.FinetuneConfig(midend=False, epochs=0)),
    *((f"back end, L2-SP {lam:g}", ft.FinetuneConfig(midend=False, l2sp=lam)) for lam in (0.01, 0.1, 1.0)),
    *((f"mid-end + back end, L2-SP {lam:g}", ft.FinetuneConfig(midend=True, l2sp=lam)) for lam in (0.1, 1.0)),
)
VARIANTS = [
    Variant("linear head (today's recipe)"),
    Variant("linear head, mixup 0.4", train={"mixup": 0.4}),
    Variant("MLP head (256), dropout 0.5", params={"hidden": 256, "dropout": 0.5}),
    Variant("linear head + 2 augmented copies", copies=2),
    Variant("linear head + 2 augmented copies, mixup 0.4", copies=2, train={"mixup": 0.4}),
    # MTT's augmented copies were not computed (30 min on 2 shared cores): calibrated on clean clips only
    Variant("linear head on MTT musicnn", backbones="mtt", calibration_copies=0),
    Variant("linear head on MSD+MTT", backbones="msd+mtt", calibration_copies=0),
    Variant(
        "ensemble: MSD head + MTT head",
        members=("linear head (today's recipe)", "linear head on MTT musicnn"),
        calibration_copies=0,
    ),
    Variant("linear head + OOD gate (p95 of held-out windows)", ood=95),
    Variant("linear head + OOD gate (p99 of held-out windows)", ood=99),
    Variant("statistics pooling (mean+std), 15-s windows", params={"pooling": "mean+std"}, segment_seconds=15),
    Variant("statistics pooling (mean+std), 30-s windows", params={"pooling": "mean+std"}, segment_seconds=30),
    Variant("mean pooling, 15-s windows", segment_seconds=15),
    # --- attention pooling over a window's 3-s patches; its control is the mean with the shipped recipe ---
    Variant("attention pooling, 15-s windows", params={"pooling": "attention"}, segment_seconds=15),
    *(
        Variant(
            f"{pooling} pooling, 15-s windows, shipped recipe (tag prior not centred among the named genres, "
            "weight 2, OOD gate p99)",
            params={"pooling": pooling} if pooling == "attention" else {},
            segment_seconds=15,
            ood=99,
            prior=2.0,
            prior_among_named=True,
            prior_centred=False,
        )
        for pooling in ("mean", "attention")
    ),
    # --- end of the attention-pooling rows ---
    Variant("linear head + electronic-tags gate (p99 of held-out windows)", ood=99, ood_score="electronic tags"),
    # --- the MSD tags as a prior for the genres they name (_tag_prior.py); all with the shipped p99 gate ---
    *(Variant(f"tag prior, weight {w:g} (a priori) + OOD gate p99", ood=99, prior=w) for w in (0.5, 1, 2)),
    Variant("tag prior, weight + genre bias fitted out of fold + OOD gate p99", ood=99, prior="fitted"),
    *(
        Variant(
            f"tag prior among the genres it names, weight {w:g} (a priori) + OOD gate p99",
            ood=99,
            prior=w,
            prior_among_named=True,
        )
        for w in (0.5, 1, 2)
    ),
    *(
        Variant(
            f"tag prior (not centred) among the genres it names, weight {w:g} (a priori) + OOD gate p99",
            ood=99,
            prior=w,
            prior_among_named=True,
            prior_centred=False,
        )
        for w in (0.5, 1, 2)
    ),
    # beyond the a-priori weights, to see the trend only (not a candidate: it would be a weight chosen outside)
    Variant(
        "tag prior (not centred) among the genres it names, weight 4 (trend only) + OOD gate p99",
        ood=99,
        prior=4.0,
        prior_among_named=True,
        prior_centred=False,
    ),
    # the head trained with the prior (not centred, among the named genres) inside it: it learns what the tags miss
    *(
        Variant(
            f"head trained with the tag prior in it (not centred, among the named genres, weight {w:g}) + OOD gate p99",
            ood=99,
            params={"prior_rows": tp.prior_rows(labels=list(GENRES)), "prior_weight": w},
        )
        for w in (1.0, 2.0)
    ),
    Variant("linear head on the 50 MSD tags only + OOD gate p99", ood=99, params={"first_input": 200}),
    Variant(
        "ensemble: shipped head + tags-only head, OOD gate p99",
        members=(
            "linear head + OOD gate (p99 of held-out windows)",
            "linear head on the 50 MSD tags only + OOD gate p99",
        ),
        ood=99,
    ),
    # --- end of the tag-prior block ---
    # --- the 665 image-only clips through the spectral route (issue 17, kaggle_inverse) ---
    Variant("images: + 665 image-only clips, OOD gate p99", ood=99, images=True),
    Variant("images: + 665 image-only clips, weight 1/4, OOD gate p99", ood=99, images=True, image_weight=0.25),
    Variant("images: + 665 image-only clips, bridged, OOD gate p99", ood=99, images=True, bridge=True),
    Variant(
        "images: + 665 image-only clips, bridged, weight 1/4, OOD gate p99",
        ood=99,
        images=True,
        bridge=True,
        image_weight=0.25,
    ),
    Variant("images: + 665 image-only clips + rendered copies, OOD gate p99", ood=99, images=True, domain=True),
    # --- end of the image-only clips' rows ---
    # --- the musicnn wheel's MSD VGG tagger (issue 17; backbone vgg_msd: genrekit.models.vgg) ---
    # ensembles: the mean of the members' window probabilities (decided before any figure, as the rows above)
    Variant("VGG MSD: linear head", backbones="vgg_msd"),
    Variant(VGG_SHIPPED, backbones="vgg_msd", ood=99, prior=2.0, prior_among_named=True, prior_centred=False),
    Variant(
        "VGG MSD: ensemble of the shipped musicnn recipe and the VGG linear head, OOD gate p99",
        members=(SHIPPED, "VGG MSD: linear head"),
        ood=99,
    ),
    Variant(
        "VGG MSD: ensemble of the shipped musicnn recipe and the VGG shipped recipe, OOD gate p99",
        members=(SHIPPED, VGG_SHIPPED),
        ood=99,
    ),
    Variant(
        "VGG MSD: shipped recipe, tag prior of the musicnn MSD and VGG MSD log-odds averaged",
        ood=99,
        prior=2.0,
        prior_among_named=True,
        prior_centred=False,
        prior_from=("msd", "vgg_msd"),
    ),
    Variant("VGG MSD: linear head on musicnn MSD + VGG MSD stacked", backbones="msd+vgg_msd"),
    Variant(
        "VGG MSD: shipped recipe on musicnn MSD + VGG MSD stacked (musicnn's tag prior)",
        backbones="msd+vgg_msd",
        ood=99,
        prior=2.0,
        prior_among_named=True,
        prior_centred=False,
    ),
    # MTT_vgg's augmented copies were not computed (as for MTT musicnn): calibrated on clean clips only
    Variant("VGG MTT: linear head", backbones="vgg_mtt", calibration_copies=0),
    # --- end of the VGG rows ---
    # --- the top of the MSD musicnn fine-tuned with augmentation (_finetune.py; LP-FT, L2-SP, a priori settings) ---
    *(
        Variant(f"fine-tuned top: {name}{extra} + OOD gate p99", ood=99, finetune=config, **prior)
        for name, config in FINETUNED
        for extra, prior in (("", {}), (", tag prior (not centred, among the named genres, weight 2)", FINETUNE_PRIOR))
    ),
    # --- end of the fine-tuned rows ---
]
# the MSD tags that name music no GTZAN genre fits (the tag prior of the "electronic tags" gate)
ELECTRONIC_TAGS = ("electronic", "dance", "House", "electro", "electronica")
BASE_TRAIN = {"epochs": 30, "windows_per_track": 10, "batch_size": 64}


def outside_tracks() -> list[Track]:
    with open(OUTSIDE / "manifest.csv", newline="") as f:
        return [Track(m["path"], m["genre"], OUTSIDE / m["path"], "audio") for m in csv.DictReader(f)]


def with_copies(data: Data, copies: int) -> Data:
    """``data`` followed by ``copies`` augmented copies of every clip (ids ``<id>#<copy>``)."""
    if not copies:
        return data
    from _augment import augmented_features

    tracks, feats = list(data.tracks), list(data.features)
    for c in range(copies):
        for t in data.tracks:
            tracks.append(Track(f"{t.id}#{c}", t.label, t.path, t.kind))
            feats.append(augmented_features(path=t.path, config=data.feature_config, copy=c))
    return Data(data.path, tracks, feats, np.tile(data.y, copies + 1), data.labels, data.feature_config, data.failed)


def features(backbones: str, root: str, tracks: list[Track], cache: dict) -> tuple[Data, list[np.ndarray]]:
    """GTZAN data and outside features of ``backbones``; ``msd+mtt`` stacks the two single ones."""
    if backbones not in cache:
        cfg = make_feature_config("musicnn", backbones=backbones)
        if "+" in backbones:  # the frames of msd+mtt are msd's rows then mtt's
            parts = [features(b, root, tracks, cache) for b in backbones.split("+")]
            d0 = parts[0][0]
            assert all(p[0].ids == d0.ids for p in parts)
            data = Data(
                d0.path,
                d0.tracks,
                [np.vstack(f) for f in zip(*(p[0].features for p in parts))],
                d0.y,
                d0.labels,
                cfg,
                d0.failed,
            )
            cache[backbones] = (data, [np.vstack(f) for f in zip(*(p[1] for p in parts))])
        else:
            data = prepare(root, input_kind="audio", feature_config=cfg, progress=False)
            cache[backbones] = (data, load_features(tracks, cfg, progress=False).features)
    return cache[backbones]


def window_log_probs(ckpt, feats: list[np.ndarray]) -> list[np.ndarray]:
    c = Classifier(ckpt.build(), ckpt.feature_config, ckpt.labels)
    return [np.log(np.clip(w, 1e-12, None)) for w in c.analyse_tracks(feats)]


def windowed(data: Data, v: Variant) -> Data:
    """``data`` with the windows of ``v``."""
    cfg = dataclasses.replace(data.feature_config, segment_seconds=v.segment_seconds)
    return dataclasses.replace(data, feature_config=cfg)


def window_means(feats: list[np.ndarray], cfg) -> list[np.ndarray]:
    """Per track, the mean embedding of each of its windows ``(n_windows, dim)`` (what the head pools)."""
    size, hop = cfg.segment_frames, cfg.hop_frames
    return [np.stack([w.mean(axis=1) for _, w in stream_windows([f], size=size, hop=hop)]) for f in feats]


def ood_fit(data: Data, idx: np.ndarray, cfg, kind: str = "mahalanobis"):
    """Genre means and precision of the windows of clips ``idx`` (:func:`genrekit.calibration.fit_ood`);
    ``None`` for a config whose gate reads the tags (:func:`tag_scores`)."""
    if kind != "mahalanobis":
        return None
    means = window_means([data.features[i] for i in idx], cfg)
    y = np.concatenate([[data.y[i]] * len(m) for i, m in zip(idx, means)])
    return fit_ood(embeddings=np.concatenate(means), y=y, n_classes=len(data.labels))


def tag_scores(feats: list[np.ndarray], cfg) -> list[np.ndarray]:
    """Per window, the strongest of the MSD tags :data:`ELECTRONIC_TAGS` (the embedding's tag rows)."""
    from genrekit.features.musicnn_tags import MSD_TAGS

    rows = [EMBEDDING_SIZES["penultimate"] + MSD_TAGS.index(t) for t in ELECTRONIC_TAGS]
    return [m[:, rows].max(axis=1) for m in window_means(feats, cfg)]


def scored(fitted, feats: list[np.ndarray], cfg) -> list[np.ndarray]:
    if fitted is None:
        return tag_scores(feats, cfg)
    means, precision = fitted
    return [ood_scores(embeddings=m, means=means, precision=precision) for m in window_means(feats, cfg)]


def balanced(y: np.ndarray, pred: np.ndarray, classes) -> float:
    return float(np.mean([np.mean(pred[y == k] == k) for k in classes]))


def fit_head(data: Data, idx: np.ndarray, v: Variant, config: TrainConfig, device):
    """The head of ``v`` trained on clips ``idx`` of ``data`` (no validation side)."""
    ckpt, _ = fit(
        data,
        Fold("f", idx, np.zeros(0, int), np.zeros(0, int)),
        model="embedding_head",
        model_params=v.params,
        config=config,
        device=device,
        progress=False,
    )
    return ckpt


def trainer(v: Variant, data: Data, device):
    """A function training ``v`` on clips ``train_idx`` of ``data`` (with their augmented copies)."""
    n = len(data.y)
    aug = with_copies(windowed(data, v), v.copies)
    config = TrainConfig(**{**BASE_TRAIN, **v.train})

    def trained(train_idx: np.ndarray):
        idx = np.concatenate([train_idx + k * n for k in range(v.copies + 1)])
        return fit_head(aug, idx, v, config, device)

    return trained


def out_of_fold(
    trained, data: Data, folds: list[Fold], copies: int = CALIBRATION_COPIES, cfg=None, kind: str = "mahalanobis"
) -> list[np.ndarray] | tuple[list[np.ndarray], list[np.ndarray]]:
    """Every clip's window log-probabilities from the model of the fold that held it out, followed by
    those of ``copies`` augmented copies of every clip (the same fold's model). With the windows'
    ``cfg``, also each window's OOD score against the fold's training windows."""
    n = len(data.y)
    held = with_copies(data, copies)
    oof: list = [None] * (n * (copies + 1))
    for f in folds:
        idx = np.concatenate([f.test + k * n for k in range(copies + 1)])
        for i, w in zip(idx, window_log_probs(trained(f.train), [held.features[i] for i in idx])):
            oof[i] = w
    return oof if cfg is None else (oof, held_out_scores(held, data, folds, cfg, kind))


def held_out_scores(held: Data, data: Data, folds: list[Fold], cfg, kind: str = "mahalanobis") -> list[np.ndarray]:
    """Each window's OOD score of the clips of ``held`` (``data``'s, then their augmented copies)
    against the training windows of the fold that held the clip out."""
    n = len(data.y)
    scores: list = [None] * len(held.features)
    for f in folds:
        idx = np.concatenate([f.test + k * n for k in range(len(held.features) // n)])
        for i, s in zip(idx, scored(ood_fit(data, f.train, cfg, kind), [held.features[i] for i in idx], cfg)):
            scores[i] = s
    return scores


def gate_scores(
    data: Data, filtered: Fold, out_feats: list[np.ndarray], cfg, kind: str = "mahalanobis"
) -> dict[str, list[np.ndarray]]:
    """The OOD scores of the filtered test's windows and the outside set's, against the windows
    of the clips their models were trained on."""
    train = np.sort(np.concatenate([filtered.train, filtered.val]))
    test = [data.features[i] for i in filtered.test]
    return {
        "test_scores": scored(ood_fit(data, train, cfg, kind), test, cfg),
        "outside_scores": scored(ood_fit(data, np.arange(len(data.y)), cfg, kind), out_feats, cfg),
    }


def calibrate(oof: list[np.ndarray], y: np.ndarray) -> dict:
    """Temperature and confident threshold from out-of-fold windows, with the ECE before and after."""
    p1 = track_probabilities(window_log_probs=oof, temperature=1.0)
    t = fit_temperature(window_log_probs=oof, y=y)
    pt = track_probabilities(window_log_probs=oof, temperature=t)
    return {
        "temperature": round(t, 4),
        "confident_threshold": confident_threshold(
            confidence=pt.max(1), correct=pt.argmax(1) == y, precision=PRECISION
        ),
        "rule": f"temperature: least NLL of the GTZAN 5-fold out-of-fold clips and {CALIBRATION_COPIES} augmented "
        f"copies of each; threshold: the lowest top probability at which those are right at least "
        f"{PRECISION:.0%} of the time",
        "oof_ece_before": expected_calibration_error(confidence=p1.max(1), correct=p1.argmax(1) == y),
        "oof_ece_after": expected_calibration_error(confidence=pt.max(1), correct=pt.argmax(1) == y),
    }


def run(
    v: Variant,
    data: Data,
    out_feats: list[np.ndarray],
    filtered: Fold,
    folds: list[Fold],
    device,
    trained=None,
    filtered_trained=None,
) -> dict:
    """OOF window log-probabilities, the filtered test's and the outside set's of one variant;
    ``trained`` (default: :func:`trainer`) trains it on given clips, ``filtered_trained`` (default:
    ``trained``) for the filtered test."""
    trained = trained or trainer(v, data, device)
    train = np.sort(np.concatenate([filtered.train, filtered.val]))
    test = [data.features[i] for i in filtered.test]
    cfg = windowed(data, v).feature_config
    oof, scores = out_of_fold(trained, data, folds, v.calibration_copies, cfg, v.ood_score)
    return {
        "oof": oof,
        "test": window_log_probs((filtered_trained or trained)(train), test),
        "outside": window_log_probs(trained(np.arange(len(data.y))), out_feats),
        "oof_scores": scores,
        **gate_scores(data, filtered, out_feats, cfg, v.ood_score),
    }


def tag_offset(backbones: str) -> int:
    """The row of the first MSD tag in a ``penultimate+tags`` frame of ``backbones`` (its first backbone's)."""
    return embedding_sizes(backbones.split("+")[0])["penultimate"]


def prior_applied(
    r: dict,
    v: Variant,
    data: Data,
    out_feats: list[np.ndarray],
    folds: list[Fold],
    filtered: Fold,
    sources: list[tuple[Data, list[np.ndarray], int]] | None = None,
):
    """``r`` with the MSD-tag prior of ``v`` added to every window (:mod:`_tag_prior`).

    Each model's prior is centred on the windows it was trained on; a fitted weight and bias come,
    for a fold's held-out windows, from the other folds' held-out windows (nested, as the gate's
    threshold), and for the test and outside models from every held-out window. ``sources``: per
    tagger whose log-odds are averaged, its GTZAN data, outside features and first tag row (default:
    ``data``'s own tags)."""
    n, cfg = len(data.y), windowed(data, v).feature_config
    copies = len(r["oof"]) // n
    sources = sources or [(data, out_feats, tag_offset(v.backbones))]
    assert all(d.ids == data.ids and len(o) == len(out_feats) for d, o, _ in sources)

    def averaged(feats_of) -> list[np.ndarray]:
        per = [
            tp.raw_scores(window_means=window_means(feats_of(d, o), cfg), labels=data.labels, offset=k)
            for d, o, k in sources
        ]
        return [np.mean(x, axis=0) for x in zip(*per)]

    raw = averaged(lambda d, o: with_copies(d, copies - 1).features)

    def centred(idx: np.ndarray, train: np.ndarray, scores: list[np.ndarray] = raw) -> list[np.ndarray]:
        """The ``scores`` of tracks ``idx`` centred on the training clips ``train``."""
        c = tp.centre(scores=[raw[i] for i in train], labels=data.labels) if v.prior_centred else 0.0
        return [scores[i] - c for i in idx]

    oof_s: list = [None] * len(r["oof"])
    for f in folds:
        idx = np.concatenate([f.test + k * n for k in range(copies)])
        for i, s in zip(idx, centred(idx, f.train)):
            oof_s[i] = s
    test_s = centred(filtered.test, np.sort(np.concatenate([filtered.train, filtered.val])))
    out_raw = averaged(lambda d, o: o)
    out_s = centred(np.arange(len(out_raw)), np.arange(n), out_raw)
    yy = np.tile(data.y, copies)

    def fitted(idx):
        if v.prior != "fitted":
            return float(v.prior), None
        return tp.fit_weight(window_log_probs=[r["oof"][i] for i in idx], scores=[oof_s[i] for i in idx], y=yy[idx])

    among = tp.named(labels=data.labels) if v.prior_among_named else None

    def added(x: np.ndarray, s: np.ndarray, w: float, b) -> np.ndarray:
        return tp.with_prior(window_log_probs=x, scores=s, weight=w, bias=b, among=among)

    oof = list(r["oof"])
    for f in folds:
        held = set(f.test)
        others = np.array([i for i in range(len(oof)) if i % n not in held])
        w, b = fitted(others)
        for i in np.concatenate([f.test + k * n for k in range(copies)]):
            oof[i] = added(r["oof"][i], oof_s[i], w, b)
    w, b = fitted(np.arange(len(oof)))
    return {
        **r,
        "oof": oof,
        "test": [added(x, s, w, b) for x, s in zip(r["test"], test_s)],
        "outside": [added(x, s, w, b) for x, s in zip(r["outside"], out_s)],
        "prior_weight": round(w, 4),
        **({"prior_bias": [round(float(x), 4) for x in b]} if b is not None else {}),
    }


# --- the 665 image-only clips (issue 17, kaggle_inverse) ---
IMAGES_NOTE = (
    "Rows `images:` add the 665 GTZAN clips we only have as Kaggle images, their musicnn embeddings "
    "reconstructed from the PNG (`genrekit.features.kaggle_inverse`, spectral route; closeness: kaggle_inverse.md). "
    "CV folds train on the fold's audio clips + all 665 (a held-out audio clip's own image is never among them, "
    "but other clips of the same artist may be: the filtered column is the honest one); the filtered test model "
    "only on images of clips in the train/valid lists; bridged: a ridge map image-route → audio patch embeddings "
    "fitted on the fold's training audio clips (rendered to images and inverted); rendered copies: that image-route "
    "copy of each training audio clip as well; weight 1/4: each audio clip listed 4 times. The OOD gate's fit, the "
    "temperature and the thresholds come from the audio clips only, as in the other rows.\n\n"
)


def image_trainer(v: Variant, data: Data, device, clips, images: np.ndarray):
    """A function training ``v`` on audio clips ``train_idx`` of ``data`` and the image-only clips ``images``."""
    config = TrainConfig(**{**BASE_TRAIN, **v.train})

    def trained(train_idx: np.ndarray):
        ext, idx = clips.training_data(
            data=data, train=train_idx, images=images, bridge=v.bridge, domain=v.domain, image_weight=v.image_weight
        )
        return fit_head(windowed(ext, v), idx, v, config, device)

    return trained


def run_images(v: Variant, data: Data, out_feats: list[np.ndarray], filtered: Fold, folds: list[Fold], device, clips):
    """:func:`run` for a variant that trains on the image-only clips ``clips`` (_image_variants.ImageClips) too."""

    every = image_trainer(v, data, device, clips, np.arange(len(clips.tracks)))
    filtered_only = image_trainer(v, data, device, clips, clips.filtered)
    return run(v, data, out_feats, filtered, folds, device, trained=every, filtered_trained=filtered_only)


# --- end of the image-only clips' code ---

VGG_NOTE = (
    "Rows `VGG MSD:` (`VGG MTT:`) use the musicnn wheel's MSD (MTT) VGG tagger (`genrekit.models.vgg`, features "
    '`backbones="vgg_msd"` or `"vgg_mtt"`: its flattened last pooling, 256, and its 50 tags per 3-s patch) on the '
    "same patches, with the same calibration (2 augmented copies per clip; VGG MTT: none, *) and gate; its tag "
    "prior reads the VGG's own MSD tags. Ensembles: the mean of the members' window probabilities (chosen a priori), gated by the first "
    "member's Mahalanobis scores (musicnn MSD's, as shipped). Averaged prior: the shipped musicnn head, its "
    "prior's per-genre log-odds the mean of musicnn MSD's and VGG MSD's. Stacked: each patch's musicnn MSD "
    "frame (250) then its VGG MSD frame (306); the gate reads all 556 rows, the prior musicnn's tags.\n\n"
)


def run_finetuned(
    v: Variant,
    data: Data,
    out_feats: list[np.ndarray],
    out_tracks: list[Track],
    filtered: Fold,
    folds: list[Fold],
    cache,
):
    """:func:`run` for a variant with a fine-tuned top (:mod:`_finetune`); the OOD gate reads the frozen embedding."""
    cfg, copies = windowed(data, v).feature_config, v.calibration_copies
    held = with_copies(data, copies)
    r = ft.finetuned(
        config=v.finetune,
        data=data,
        embeddings=held.features,
        outside=[t.path for t in out_tracks],
        folds=folds,
        filtered=filtered,
        copies=copies,
        cache=cache,
    )
    assert [len(w) for w in r["outside"]] == [f.shape[1] for f in out_feats], "outside patches and windows disagree"
    return {**r, "oof_scores": held_out_scores(held, data, folds, cfg), **gate_scores(data, filtered, out_feats, cfg)}


def ood_threshold(scores: list[np.ndarray], percentile: float) -> float:
    """The ``percentile`` of held-out GTZAN windows' OOD scores: the gate's threshold."""
    return float(np.percentile(np.concatenate(scores), percentile))


def gate(r: dict, v: Variant, n: int, folds: list[Fold], temperature: float) -> dict:
    """``r``'s window log-probabilities at ``temperature`` and through the OOD gate of ``v``.

    The threshold is the ``v.ood`` percentile of the clean held-out windows' scores; a fold's
    out-of-fold windows get the one from the other folds' held-out windows."""
    if not v.ood:
        return r

    def g(lps, scores, thr):
        return [
            ood_gated(window_log_probs=w, scores=s, threshold=thr, keep=v.ood_keep, temperature=temperature)
            for w, s in zip(lps, scores)
        ]

    thr = ood_threshold(r["oof_scores"][:n], v.ood)
    oof = list(g(r["oof"], r["oof_scores"], thr))
    for f in folds:  # nested: a fold's threshold never saw that fold's held-out clips
        others = [r["oof_scores"][i] for i in range(n) if i not in set(f.test)]
        t = ood_threshold(others, v.ood)
        for k in range(len(r["oof"]) // n):
            for i in f.test + k * n:
                oof[i] = g([r["oof"][i]], [r["oof_scores"][i]], t)[0]
    return {
        **r,
        "oof": oof,
        "test": g(r["test"], r["test_scores"], thr),
        "outside": g(r["outside"], r["outside_scores"], thr),
        "ood_threshold": thr,
    }


def figures(r: dict, data: Data, folds: list[Fold], filtered: Fold, out_y: np.ndarray, v: Variant) -> dict:
    """The three figures, then calibration: temperature, threshold and the outside confidence figures.

    With an OOD gate the temperature is fitted first (on the un-gated windows, as the head divides
    its logits before gating), then every figure is of the gated probabilities."""
    y = data.y
    if v.ood:
        ungated = calibrate(r["oof"], np.tile(y, len(r["oof"]) // len(y)))
        r = gate(r, v, len(y), folds, ungated["temperature"])
    p1 = track_probabilities(window_log_probs=r["oof"][: len(y)], temperature=1.0)
    cv = [balanced(y[f.test], p1[f.test].argmax(1), np.unique(y[f.test])) for f in folds]
    test = track_probabilities(window_log_probs=r["test"], temperature=1.0).argmax(1)
    cal = calibrate(r["oof"], np.tile(y, len(r["oof"]) // len(y)))
    if v.ood:  # the windows are gated at the temperature fitted before: the threshold is of those
        yy = np.tile(y, len(r["oof"]) // len(y))
        pg = track_probabilities(window_log_probs=r["oof"], temperature=1.0)
        cal = {
            **ungated,
            "ood_threshold": r["ood_threshold"],
            "oof_ece_after": expected_calibration_error(confidence=pg.max(1), correct=pg.argmax(1) == yy),
            "confident_threshold": confident_threshold(
                confidence=pg.max(1), correct=pg.argmax(1) == yy, precision=PRECISION
            ),
        }
    t, threshold = (1.0 if v.ood else cal["temperature"]), cal["confident_threshold"]
    genres = out_y >= 0
    po = track_probabilities(window_log_probs=r["outside"], temperature=t)
    right = po.argmax(1) == out_y
    flagged = po.max(1) >= threshold
    g = genres & flagged
    return {
        "cv_balanced_mean": float(np.mean(cv)),
        "cv_balanced_sd": float(np.std(cv, ddof=1)),
        "filtered_test_acc": float(np.mean(test == y[filtered.test])),
        "outside_balanced_acc": balanced(out_y[genres], po.argmax(1)[genres], np.unique(out_y[genres])),
        **{k: v for k, v in cal.items() if k != "rule"},
        "outside_ece": expected_calibration_error(confidence=po.max(1)[genres], correct=right[genres]),
        "outside_confident_precision": float(right[g].mean()) if g.any() else None,
        "outside_confident_share": float(flagged[genres].mean()),
        "outside_other_unsure_share": float(np.mean(~flagged[~genres])),
        "outside_recall": {
            data.labels[k]: f"{int(np.sum(right[out_y == k]))}/{int(np.sum(out_y == k))}"
            for k in np.unique(out_y[genres])
        },
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument(
        "--only",
        default=None,
        help="comma-separated variant numbers (0-based) to run; the rows of "
        "the others are kept from results/outside_variants.json",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (one: a tiny head trains 7x faster on shared cores than with two)",
    )
    p.add_argument("--render", action="store_true", help="only rewrite the markdown from results/outside_variants.json")
    a = p.parse_args()
    if a.render:
        path = RESULTS / "outside_variants.json"
        (RESULTS / "outside_variants.md").write_text(markdown(json.loads(path.read_text())["variants"]).rstrip() + "\n")
        return
    import torch

    torch.set_num_threads(a.threads)
    chosen = {VARIANTS[int(i)].name for i in a.only.split(",")} if a.only else {v.name for v in VARIANTS}
    members = {m for v in VARIANTS if v.name in chosen for m in v.members}  # computed too, their rows kept
    tracks = outside_tracks()
    cache: dict[str, tuple] = {}
    results: dict[str, dict] = {}
    rows = []
    for v in [v for v in VARIANTS if v.name in chosen | members]:
        data, out = features(v.backbones, a.data, tracks, cache)
        out_y = np.array([data.labels.index(t.label) if t.label in data.labels else -1 for t in tracks])
        folds = make_split("kfold", ids=data.ids, labels=data.track_labels, seed=0, val_fraction=0).folds
        (filtered,) = make_split(
            "filtered", ids=data.ids, labels=data.track_labels, splits_dir=Path(a.data) / "splits"
        ).folds
        if v.members:
            parts = [results[m] for m in v.members]
            r = {
                k: [
                    np.log(np.mean([np.exp(p[k][i]) for p in parts], axis=0))
                    for i in range(min(len(p[k]) for p in parts))
                ]
                for k in ("oof", "test", "outside")
            }
            # the gate of an ensemble reads its first member's scores (the shipped Mahalanobis one)
            r.update({k: parts[0][k] for k in ("oof_scores", "test_scores", "outside_scores") if k in parts[0]})
        elif v.images:
            if "image clips" not in cache:
                from _image_variants import ImageClips

                cache["image clips"] = ImageClips(root=a.data, data=data)
            r = run_images(v, data, out, filtered, folds, a.device, cache["image clips"])
        elif v.finetune:
            r = run_finetuned(v, data, out, tracks, filtered, folds, cache)
        else:
            r = run(v, data, out, filtered, folds, a.device)
        if v.prior:
            sources = [(*features(b, a.data, tracks, cache), tag_offset(b)) for b in v.prior_from] or None
            r = prior_applied(r, v, data, out, folds, filtered, sources)
        results[v.name] = r
        if v.name not in chosen:
            continue
        fig = figures(r, data, folds, filtered, out_y, v)
        prior = {k: r[k] for k in ("prior_weight", "prior_bias") if k in r}
        rows.append(
            {
                "variant": v.name,
                "n_gtzan": len(data.y),
                "calibration_copies": v.calibration_copies,
                **fig,
                **prior,
                **({"budget": r["budget"]} if "budget" in r else {}),
            }
        )
        print(v.name, {k: round(x, 3) if isinstance(x, float) else x for k, x in fig.items()}, flush=True)
    path = RESULTS / "outside_variants.json"  # rows of variants not run this time are kept
    kept = {r["variant"]: r for r in (json.loads(path.read_text())["variants"] if path.exists() else [])}
    kept.update({r["variant"]: r for r in rows})
    rows = [kept[v.name] for v in VARIANTS if v.name in kept]
    write_results(
        "outside_variants", {"precision_rule": PRECISION, "train": BASE_TRAIN, "variants": rows}, markdown(rows)
    )
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    return (
        "# Variants tried for issue 17: GTZAN CV, fault-filtered test and outside, side by side\n\n"
        f"GTZAN: the {rows[0]['n_gtzan']} clips with audio, 5-fold CV (balanced, mean ± sd) and the fault-filtered "
        "test clips with audio (accuracy); outside: balanced accuracy over its eight genres of the variant trained on "
        f"every GTZAN clip. Temperature T fitted on the out-of-fold windows; threshold: the lowest top probability at "
        f"which they are right {PRECISION:.0%} of the time; both on the out-of-fold clips and {CALIBRATION_COPIES} "
        "augmented copies of each (codec, EQ, band limit, pitch/tempo, noise, reverb, gain: `_augment.py`); the outside "
        "confidence columns use both, never fitted there. Rows marked * are calibrated on the clean out-of-fold clips only "
        "(their backbone's augmented copies were not computed).\n\n"
        "OOD gate rows: a window whose score exceeds the given percentile of the clean held-out GTZAN windows' "
        "scores (a fold's own windows get the other folds' percentile) keeps a tenth of its probabilities and is "
        "otherwise uniform, after the temperature; the threshold of `confident` is then chosen on the gated held-out "
        "probabilities. Mahalanobis: the least squared distance to a genre's mean (genre means and shared covariance "
        "with Ledoit-Wolf shrinkage, fitted on the fold's training windows), per dimension; electronic tags: the "
        f"window's strongest MSD tag of {', '.join(ELECTRONIC_TAGS)}. Statistics pooling: the head pools the mean and "
        "standard deviation of a window's patch embeddings (windows of several 3-s patches); attention pooling: "
        "their weighted mean, each patch's weight the softmax over the window of a learnt linear score of its "
        "embedding (EmbeddingHead `pooling='attention'`).\n\n"
        + (IMAGES_NOTE if any(r["variant"].startswith("images:") for r in rows) else "")
        + (VGG_NOTE if any(r["variant"].startswith("VGG MSD:") for r in rows) else "")
        + ft.note(rows)
        + md_table(
            [
                "variant",
                "GTZAN CV balanced",
                "filtered test acc",
                "outside balanced",
                "T",
                "threshold",
                "OOF ECE (clean + copies) before → after",
                "outside ECE",
                "outside confident precision (share)",
                "other unsure",
            ],
            [
                [
                    r["variant"] + ("" if r.get("calibration_copies", CALIBRATION_COPIES) else " *"),
                    f"{r['cv_balanced_mean']:.3f} ± {r['cv_balanced_sd']:.3f}",
                    f"{r['filtered_test_acc']:.3f}",
                    f"{r['outside_balanced_acc']:.3f}",
                    f"{r['temperature']:.2f}",
                    f"{r['confident_threshold']:.2f}",
                    f"{r['oof_ece_before']:.3f} → {r['oof_ece_after']:.3f}",
                    f"{r['outside_ece']:.3f}",
                    f"{r['outside_confident_precision'] or 0:.3f} ({r['outside_confident_share']:.2f})",
                    f"{r['outside_other_unsure_share']:.2f}",
                ]
                for r in rows
            ],
        )
        + "\n\nTag-prior rows (`_tag_prior.py`): per window, the log-odds of the strongest MSD tag naming a genre "
        f"({'; '.join(g + ' ← ' + ', '.join(t) for g, t in tp.GENRE_TAGS.items())}; classical, disco and reggae have "
        "none), written down from the tag names before any figure, either centred (less its median over the model's "
        "training windows) or as it is, times the weight, added to the head's log-probabilities before the "
        "temperature; 'among the genres it names': only probability among those seven moves. The fitted weight and "
        "genre bias: least window cross-entropy on the other folds' held-out windows (nested), and on all of them for "
        "the test and outside models. Tags-only head: `first_input=200`, the gate still reads all 250 rows.\n\n"
        "Outside recall per genre (right/clips), for the rows that record it:\n\n"
        + md_table(
            ["variant", "prior weight", "outside recall"],
            [
                [
                    r["variant"],
                    str(r.get("prior_weight", "")),
                    ", ".join(f"{g} {x}" for g, x in r["outside_recall"].items()),
                ]
                for r in rows
                if "outside_recall" in r
            ],
        )
    )


if __name__ == "__main__":
    main()
