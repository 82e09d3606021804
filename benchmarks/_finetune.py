"""Issue 17: the top of the MSD musicnn (mid-end + back end) fine-tuned on GTZAN, with augmentation.

The front end (input batch norm, timbral and temporal filters: ~95 % of the FLOPs) stays frozen:
its output per 3-s patch (the mid-end's input, ``(561, 187)``) is computed once per audio clip,
clean and for the augmented copies of ``_augment.py`` (the same seeds as
``augmented_features``, so a copy is the copy the cached embeddings were made of), and cached in
float16 under ``<genrekit cache>/finetune-frontend/``. The outside clips' are cached the same way,
for measuring only.

Fine-tuning is LP-FT (Kumar et al. 2022, "Fine-tuning can distort pretrained features"): a
linear genre head (batch norm, dropout 0.3, linear, as the shipped ``embedding_head``) is first
trained on the frozen ``penultimate+tags`` embedding of every training patch, then the head and the
top are trained together for a fixed number of epochs with a small learning rate and L2-SP
(Li et al. 2018: ``lambda/2 * ||theta - theta0||^2`` toward the pretrained weights). The top's
batch norms keep their pretrained statistics and its dropout is off (eval mode); classes are
balanced by weighting the loss. Every setting is fixed a priori (:class:`FinetuneConfig`); nothing
is early-stopped. The MSD-tag prior and the OOD gate still read the original frozen tagger's
embedding (``outside_variants.prior_applied``/``scored``), so a row is "the shipped recipe with a
fine-tuned top".
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrekit.audio import load_audio, stream_audio
from genrekit.datasets.cache import _file_hash, default_cache_dir, save_entry
from genrekit.features.musicnn import MusicnnConfig, MusicnnStream
from genrekit.models.musicnn import Musicnn, load_pretrained

SR = 16000
FRONTEND_RECIPE = "frontend-v1"


# ----------------------------------------------------------------------------- cached front end


def frontend_of(backbone: Musicnn):
    """An ``embed`` for :class:`MusicnnStream` that keeps the frozen front end's output of every patch.

    Returns the callable and the list it appends ``(n, 561, 187)`` float16 arrays to."""
    kept: list[np.ndarray] = []

    def embed(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            kept.append(backbone.frontend(torch.from_numpy(x).unsqueeze(1)).numpy().astype(np.float16))
        return np.zeros((len(x), 250), np.float32)

    return embed, kept


def frontend_features(*, path: Path, copy: int | None, backbone: Musicnn, cache_dir: Path | None = None) -> np.ndarray:
    """The front-end output ``(n_patches, 561, 187)`` float16 of clip ``path``, clean (``copy=None``) or of
    its augmented copy ``copy`` (``_augment.augment``, seeded as ``augmented_features``); cached."""
    from _augment import RECIPE, augment

    config = MusicnnConfig()
    sha = _file_hash(path)
    key = hashlib.sha1(f"{FRONTEND_RECIPE}{RECIPE}{config.matrix_key()}".encode()).hexdigest()[:16]
    name = f"{sha}-{'clean' if copy is None else copy}.npy"
    entry = (cache_dir or default_cache_dir()) / "finetune-frontend" / key / name
    if entry.exists():
        return np.load(entry, mmap_mode="r")  # copied once, into the Patches array
    embed, kept = frontend_of(backbone)
    stream = MusicnnStream(config, embed=embed)
    if copy is None:
        blocks = stream_audio(path, sr=SR)  # as load_features reads a clip
    else:
        rng = np.random.default_rng([int(sha[:8], 16), copy])
        blocks = [augment(load_audio(path, sr=SR), rng=rng)]
    for b in blocks:
        stream.push(b)
    stream.finish()
    out = np.concatenate(kept) if kept else np.zeros((0, 561, 187), np.float16)
    save_entry(entry, out)
    return out


# ----------------------------------------------------------------------------- the fine-tuned top


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning recipe, fixed a priori.

    Parameters
    ----------
    midend : also fine-tune the three mid-end convolutions (False: only the back end's dense layers)
    l2sp : lambda of the L2-SP penalty ``lambda/2 * ||theta - theta0||^2`` on the top's weights
    epochs : fine-tuning epochs over every training patch (clean and copies)
    lr, head_lr : Adam's learning rates of the top and of the genre head
    lp_epochs, lp_lr : the linear probe (the head alone on the frozen embedding) before fine-tuning
    batch_size : patches per step
    dropout : before the head's linear layer
    seed : torch's seed for each model
    """

    midend: bool = True
    l2sp: float = 0.1
    epochs: int = 3
    lr: float = 1e-4
    head_lr: float = 3e-4
    lp_epochs: int = 10
    lp_lr: float = 1e-3
    batch_size: int = 64
    dropout: float = 0.3
    seed: int = 0


class Top(nn.Module):
    """The pretrained mid-end and back end of a :class:`Musicnn` (a copy) and a linear genre head.

    Input: front-end outputs ``(batch, 561, frames)``, or with ``pooled=True`` the temporal
    max/mean pooling of the front- and mid-end features ``(batch, 1506)``. The head reads the
    ``penultimate+tags`` embedding (250) as the shipped ``embedding_head`` does. The top's batch norms
    stay in eval mode (pretrained statistics), its dropout is off."""

    def __init__(self, backbone: Musicnn, *, n_classes: int, dropout: float):
        super().__init__()
        self.midend = copy.deepcopy(backbone.midend)
        self.pool_bn = copy.deepcopy(backbone.pool_bn)
        self.dense = copy.deepcopy(backbone.dense)
        self.dense_bn = copy.deepcopy(backbone.dense_bn)
        self.out = copy.deepcopy(backbone.out)
        size = backbone.dense.out_features + backbone.out.out_features
        self.head = nn.Sequential(nn.BatchNorm1d(size), nn.Dropout(dropout), nn.Linear(size, n_classes))

    def train(self, mode: bool = True) -> Top:
        super().train(mode)
        for m in (self.midend, self.pool_bn, self.dense_bn):
            m.eval()
        return self

    def pooled(self, f: torch.Tensor) -> torch.Tensor:
        features = [f]
        h = self.midend[0](f)
        features.append(h)
        for block in self.midend[1:]:
            h = block(h) + h
            features.append(h)
        stacked = torch.cat(features, dim=1)
        return torch.stack((stacked.amax(dim=2), stacked.mean(dim=2)), dim=2).flatten(1)

    def embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return torch.cat([penultimate, torch.sigmoid(self.out(penultimate))], dim=1)

    def forward(self, x: torch.Tensor, *, pooled: bool = False) -> torch.Tensor:
        return self.head(self.embedding(x if pooled else self.pooled(x)))


class Patches:
    """Every patch of a set of clips in one float16 array: front-end outputs (or pooled features).

    Parameters
    ----------
    per_clip : per clip (and version), its ``(n_patches, ...)`` array
    """

    def __init__(self, per_clip: list[np.ndarray]):
        self.sizes = np.array([len(a) for a in per_clip])
        self.start = np.concatenate([[0], np.cumsum(self.sizes)])
        self.x = torch.from_numpy(np.concatenate(per_clip))
        self.clip = np.repeat(np.arange(len(per_clip)), self.sizes)

    def of(self, clips: np.ndarray) -> np.ndarray:
        """The patch indices of ``clips``."""
        return np.concatenate([np.arange(self.start[c], self.start[c + 1]) for c in clips])

    def batch(self, idx: np.ndarray) -> torch.Tensor:
        return self.x[torch.from_numpy(idx)].float()


def pooled_patches(*, patches: Patches, backbone: Musicnn) -> Patches:
    """The frozen mid-end's pooled features of every patch (the back end's input), for a back-end-only fit."""
    top = Top(backbone, n_classes=1, dropout=0.0).eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(patches.x), 64):
            out.append(top.pooled(patches.batch(np.arange(i, min(i + 64, len(patches.x))))).half().numpy())
    pooled = np.concatenate(out)
    return Patches([pooled[patches.start[c] : patches.start[c + 1]] for c in range(len(patches.sizes))])


def _weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return torch.tensor(len(y) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)


def finetune(
    *,
    backbone: Musicnn,
    patches: Patches,
    embeddings: np.ndarray,
    clips: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    config: FinetuneConfig,
) -> Top:
    """A :class:`Top` linear-probed then fine-tuned on every patch of ``clips`` (indices into ``patches``).

    Parameters
    ----------
    backbone : the pretrained tagger the top starts from
    patches : front-end outputs (``config.midend``) or pooled features of every clip version
    embeddings : ``(n_patches, 250)`` the frozen ``penultimate+tags`` of the same patches (the probe's input)
    clips : the training clip versions
    y : ``(n_versions,)`` every clip version's genre
    n_classes : genres
    config : the recipe
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    top = Top(backbone, n_classes=n_classes, dropout=config.dropout)
    idx = patches.of(clips)
    yy = torch.from_numpy(y[patches.clip[idx]]).long()
    loss_weights = _weights(yy.numpy(), n_classes)
    emb = torch.from_numpy(embeddings[idx]).float()
    top.train()
    opt = torch.optim.Adam(top.head.parameters(), lr=config.lp_lr)
    for _ in range(config.lp_epochs):  # the linear probe
        for b in np.array_split(rng.permutation(len(idx)), max(1, len(idx) // config.batch_size)):
            opt.zero_grad()
            F.cross_entropy(top.head(emb[b]), yy[b], weight=loss_weights).backward()
            opt.step()
    body = [top.dense, top.dense_bn, top.out, top.pool_bn, *([top.midend] if config.midend else [])]
    params = [p for m in body for p in m.parameters()]
    anchors = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(
        [{"params": params, "lr": config.lr}, {"params": list(top.head.parameters()), "lr": config.head_lr}]
    )
    for _ in range(config.epochs):
        for b in np.array_split(rng.permutation(len(idx)), max(1, len(idx) // config.batch_size)):
            opt.zero_grad()
            logits = top(patches.batch(idx[b]), pooled=not config.midend)
            sp = sum(((p - a) ** 2).sum() for p, a in zip(params, anchors))
            (F.cross_entropy(logits, yy[b], weight=loss_weights) + config.l2sp / 2 * sp).backward()
            opt.step()
    return top.eval()


def log_probs(*, top: Top, patches: Patches, clips: np.ndarray, pooled: bool) -> list[np.ndarray]:
    """Per clip version of ``clips``, its patches' genre log-probabilities ``(n_patches, n_classes)``."""
    out = []
    with torch.inference_mode():
        for c in clips:
            x = patches.batch(np.arange(patches.start[c], patches.start[c + 1]))
            out.append(torch.cat([F.log_softmax(top(b, pooled=pooled), dim=1) for b in x.split(64)]).numpy())
    return out


# ----------------------------------------------------------------------------- one variant's runs


def _versions(clips: np.ndarray, n: int, copies: int) -> np.ndarray:
    """The clip versions (clean, then each copy: ``outside_variants.with_copies``'s order) of ``clips``."""
    return np.concatenate([clips + k * n for k in range(copies + 1)])


def finetuned(
    *,
    config: FinetuneConfig,
    data,
    embeddings: list[np.ndarray],
    outside: list[Path],
    folds: list,
    filtered,
    copies: int,
    cache: dict,
) -> dict:
    """The fine-tuned tops' window (= patch) log-probabilities: out of fold (clean clips then ``copies``
    augmented copies, each fold's model), the filtered test's and the outside clips', with the budget.

    Parameters
    ----------
    config : the recipe
    data : the GTZAN clips with audio (``genrekit.experiment.Data``)
    embeddings : per clip version (``outside_variants.with_copies`` order), the frozen ``(250, n_patches)``
    outside : the outside clips (measured only)
    folds, filtered : the 5 CV folds and the fault-filtered split
    copies : augmented copies per clip, trained on and held out
    cache : this process's cache of front-end patches and results
    """
    if ("finetuned", config) in cache:
        return cache[("finetuned", config)]
    backbone = load_pretrained("msd")
    if "finetune patches" not in cache:
        t = time.perf_counter()
        gtzan = [
            frontend_features(path=p.path, copy=c, backbone=backbone)
            for c in (None, *range(copies))
            for p in data.tracks
        ]
        sizes = [len(a) for a in gtzan]
        assert sizes == [e.shape[1] for e in embeddings], "front-end patches and cached embeddings disagree"
        out = [frontend_features(path=p, copy=None, backbone=backbone) for p in outside]
        cache["finetune patches"] = (Patches(gtzan), Patches(out), time.perf_counter() - t)
    gtzan, out, load_s = cache["finetune patches"]
    if not config.midend:
        if "finetune pooled" not in cache:
            cache["finetune pooled"] = tuple(pooled_patches(patches=p, backbone=backbone) for p in (gtzan, out))
        gtzan, out = cache["finetune pooled"]
    n = len(data.y)
    y = np.tile(data.y, copies + 1)
    emb = np.concatenate([e.T for e in embeddings]).astype(np.float32)
    cost = frontend_cost(path=data.tracks[0].path, backbone=backbone)
    wall, cpu_s = time.perf_counter(), time.process_time()

    def trained(clips: np.ndarray) -> Top:
        clips = _versions(clips, n, copies)
        return finetune(
            backbone=backbone,
            patches=gtzan,
            embeddings=emb,
            clips=clips,
            y=y,
            n_classes=len(data.labels),
            config=config,
        )

    oof: list = [None] * len(y)
    for f in folds:
        held = _versions(f.test, n, copies)
        for i, w in zip(held, log_probs(top=trained(f.train), patches=gtzan, clips=held, pooled=not config.midend)):
            oof[i] = w
    train = np.sort(np.concatenate([filtered.train, filtered.val]))
    test = log_probs(top=trained(train), patches=gtzan, clips=filtered.test, pooled=not config.midend)
    outside_lp = log_probs(
        top=trained(np.arange(n)), patches=out, clips=np.arange(len(outside)), pooled=not config.midend
    )
    budget = {
        "finetune_models": len(folds) + 2,
        "finetune_wall_s": round(time.perf_counter() - wall, 1),
        "finetune_cpu_s": round(time.process_time() - cpu_s, 1),
        "finetune_torch_threads": torch.get_num_threads(),
        "finetune_patches_all_clips": len(gtzan.of(_versions(np.arange(n), n, copies))),
        "frontend_load_s": round(load_s, 1),
        "frontend_s_per_clip": cost,
        "finetune_config": dataclasses.asdict(config),
    }
    cache[("finetuned", config)] = {"oof": oof, "test": test, "outside": outside_lp, "budget": budget}
    return cache[("finetuned", config)]


def note(rows: list[dict]) -> str:
    """The markdown paragraph and budget table of the fine-tuned rows of ``outside_variants.md`` ("" if none)."""
    from _results import cpu, md_table

    ft = list({json.dumps(r["budget"]["finetune_config"]): r for r in reversed(rows) if "budget" in r}.values())[::-1]
    if not ft:
        return ""
    c = FinetuneConfig()
    machine = cpu()
    return (
        "Rows `fine-tuned top:` (`_finetune.py`): the MSD musicnn's front end frozen (its output per 3-s patch "
        "cached once, clean and for the 2 augmented copies of `_augment.py` the other rows use), and its top "
        "(back end: pool batch norm, dense 200, dense 50 tags; or mid-end + back end) fine-tuned with a linear "
        f"genre head on the 250-d penultimate+tags: linear probe ({c.lp_epochs} epochs, lr {c.lp_lr:g}), then "
        f"{c.epochs} epochs over every training patch (clean + copies, classes weighted), Adam lr {c.lr:g} (head "
        f"{c.head_lr:g}), batch {c.batch_size}, L2-SP toward the pretrained weights with the lambda given; the top's "
        "batch norms keep their pretrained statistics, its dropout is off. All settings fixed a priori, no early "
        "stopping; 7 models per row (5 folds, filtered, all clips). The OOD gate and the tag prior read the "
        "original frozen tagger's embedding (what MSD taught stays), so a row with the prior is the shipped recipe "
        "with a fine-tuned top.\n\n"
        f"Budget (CPU: {machine['cpu_model']}; {', '.join(machine['vector_extensions'])}; 2 cores shared with "
        "other jobs, so the times are upper bounds). The frozen front end, once per clip version (cached, 1 thread): "
        f"{ft[0]['budget']['frontend_s_per_clip']['clean']} s a clean clip, "
        f"{ft[0]['budget']['frontend_s_per_clip']['augmented copy']} s an augmented copy (the chain included); "
        "fine-tuning, the 7 models of each recipe (its tag-prior row reads the same models):\n\n"
        + md_table(
            ["variant", "models", "patches (all clips)", "torch threads", "wall s", "CPU s"],
            [
                [
                    r["variant"],
                    r["budget"]["finetune_models"],
                    r["budget"]["finetune_patches_all_clips"],
                    r["budget"]["finetune_torch_threads"],
                    r["budget"]["finetune_wall_s"],
                    r["budget"]["finetune_cpu_s"],
                ]
                for r in ft
            ],
        )
        + "\n\n"
    )


def frontend_cost(*, path: Path, backbone: Musicnn) -> dict:
    """Seconds to compute the front end of one clip, clean and one augmented copy (uncached: a scratch cache)."""
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c in (None, 0):
            t = time.perf_counter()
            frontend_features(path=path, copy=c, backbone=backbone, cache_dir=Path(tmp))
            out["clean" if c is None else "augmented copy"] = round(time.perf_counter() - t, 2)
    return out


def main() -> None:
    """Fill the front-end cache of every GTZAN audio clip (clean and 2 copies) and outside clip (clean)."""
    import argparse

    from _results import SHARED_DATA
    from outside_variants import CALIBRATION_COPIES, outside_tracks

    from genrekit.experiment import prepare

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--part", type=int, default=0, help="this process's share: every --of'th clip from --part")
    p.add_argument("--of", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(1)
    data = prepare(a.data, input_kind="audio", feature_config=MusicnnConfig(), progress=False)
    jobs = [(t.path, CALIBRATION_COPIES) for t in data.tracks] + [(t.path, 0) for t in outside_tracks()]
    backbone, t = load_pretrained("msd"), time.perf_counter()
    for n, (path, copies) in enumerate(jobs[a.part :: a.of]):
        for c in (None, *range(copies)):
            frontend_features(path=path, copy=c, backbone=backbone)
        if n % 50 == 0:
            print(n, round(time.perf_counter() - t), flush=True)


if __name__ == "__main__":
    main()
