"""Training loop, independent of any particular model.

Each epoch draws random windows from the training tracks (class-balanced: every genre is drawn
equally often whatever its number of tracks), applies SpecAugment-style masks, and trains with
AdamW under a one-cycle learning-rate schedule. With a validation side, the weights of the epoch
with the best track-level balanced accuracy are kept and training stops after ``patience``
epochs without improvement.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from genrekit.evaluate import evaluate_tracks
from genrekit.features import FeatureConfig, normalize_windows
from genrekit.models import DEFAULT_MODEL, build_model


@dataclass
class TrainConfig:
    """Training hyper-parameters; the defaults are the ones genrekit's benchmarks use."""

    model: str = DEFAULT_MODEL
    model_params: dict = field(default_factory=dict)
    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-3
    windows_per_track: int = 4
    patience: int = 10
    balance: bool = True
    augment: bool = True
    mixup: float = 0.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]
    best_epoch: int
    seconds: float


def _crop(feature: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    frames = feature.shape[1]
    if frames <= n:
        out = np.full((feature.shape[0], n), feature.min(), dtype=np.float32)
        out[:, :frames] = feature
        return out
    start = rng.integers(0, frames - n + 1)
    return feature[:, start : start + n].astype(np.float32)


def _mask(x: torch.Tensor, rng: np.random.Generator, max_fraction: float = 0.15) -> torch.Tensor:
    """Zero (= the -top_db floor) one random band of bins and one of frames in each window."""
    x = x.clone()
    _, bins, frames = x.shape
    for i in range(len(x)):
        fb = rng.integers(0, int(bins * max_fraction) + 1)
        f0 = rng.integers(0, bins - fb + 1)
        tb = rng.integers(0, int(frames * max_fraction) + 1)
        t0 = rng.integers(0, frames - tb + 1)
        x[i, f0 : f0 + fb, :] = 0.0
        x[i, :, t0 : t0 + tb] = 0.0
    return x


def _epoch_draw(y: np.ndarray, n: int, balance: bool, rng: np.random.Generator) -> np.ndarray:
    if not balance:
        return rng.choice(len(y), size=n, replace=True)
    counts = np.bincount(y)
    weights = 1.0 / counts[y]
    return rng.choice(len(y), size=n, replace=True, p=weights / weights.sum())


def train(
    features: list[np.ndarray],
    y: np.ndarray,
    labels: list[str],
    feature_config: FeatureConfig,
    *,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None = None,
    config: TrainConfig = TrainConfig(),
    progress: bool = True,
) -> TrainResult:
    """Train ``config.model`` on the tracks ``train_idx`` of ``features``.

    Parameters
    ----------
    features : (bins, frames) matrix per track
    y : class index per track
    labels : class names
    feature_config : defines the window size and normalisation
    train_idx, val_idx : track indices of the training and validation sides
    config : training hyper-parameters
    progress : show a progress bar
    """
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    y = np.asarray(y)
    seg = feature_config.segment_frames
    model = build_model(
        config.model, n_classes=len(labels), input_shape=(feature_config.n_bins, seg), **config.model_params
    )
    train_feats = [features[i] for i in train_idx]
    train_y = y[train_idx]
    n_draw = len(train_idx) * config.windows_per_track
    steps = max(1, -(-n_draw // config.batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * steps)
    loss_fn = nn.CrossEntropyLoss()
    history, best, best_state, best_epoch = [], None, None, config.epochs
    bar = tqdm(range(config.epochs), desc=f"train {config.model}", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        draw = _epoch_draw(train_y, n_draw, config.balance, rng)
        total_loss, correct = 0.0, 0
        for b in range(steps):
            chosen = draw[b * config.batch_size : (b + 1) * config.batch_size]
            x = torch.from_numpy(np.stack([_crop(train_feats[i], seg, rng) for i in chosen]))
            x = normalize_windows(x, feature_config.top_db)
            if config.augment:
                x = _mask(x, rng)
            target = torch.from_numpy(train_y[chosen])
            x = x.unsqueeze(1)
            if config.mixup > 0:
                lam = float(rng.beta(config.mixup, config.mixup))
                perm = torch.from_numpy(rng.permutation(len(chosen)))
                logits = model(lam * x + (1 - lam) * x[perm])
                loss = lam * loss_fn(logits, target) + (1 - lam) * loss_fn(logits, target[perm])
            else:
                logits = model(x)
                loss = loss_fn(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(chosen)
            correct += int((logits.argmax(1) == target).sum())
        row = {
            "epoch": epoch + 1,
            "train_loss": total_loss / n_draw,
            "train_acc": correct / n_draw,
            "lr": sched.get_last_lr()[0],
        }
        if val_idx is not None and len(val_idx):
            rep = evaluate_tracks(model, [features[i] for i in val_idx], y[val_idx], labels, feature_config)
            probs = rep["track_probabilities"]
            row["val_loss"] = float(-np.mean(np.log(probs[np.arange(len(val_idx)), y[val_idx]] + 1e-9)))
            row["val_acc"] = rep["track"]["accuracy"]
            row["val_balanced_acc"] = rep["track"]["balanced_accuracy"]
            score = (row["val_balanced_acc"], -row["val_loss"])
            if best is None or score > best:
                best, best_epoch = score, epoch + 1
                best_state = copy.deepcopy(model.state_dict())
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_bacc=f"{row['val_balanced_acc']:.3f}")
        else:
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_acc']:.3f}")
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if best_state is not None and epoch + 1 - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(model.eval(), history, best_epoch, time.perf_counter() - t0)
