"""Training loop, independent of any particular model.

Each epoch draws random windows from the training tracks (class-balanced: every genre is drawn
equally often whatever its number of tracks), applies SpecAugment-style masks, and trains with
AdamW under a one-cycle learning-rate schedule (other optimisers and schedules on request, for
the seed documents' own protocols). With a validation side, training stops after ``patience``
epochs without a better track-level balanced accuracy, and the weights of the best epoch are
kept. The model and the device are the caller's.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from genrekit.config import TrainConfig
from genrekit.evaluate import evaluate_tracks
from genrekit.features import FeatureConfig
from genrekit.features.windows import pad_frames
from genrekit.inference import Classifier


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]
    best_epoch: int
    seconds: float


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def seeded(seed: int, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run a block with torch's random generators seeded, restoring the caller's state after it."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


class WindowSampler:
    """Random windows of a set of tracks, gathered in one indexing operation per batch.

    The tracks are laid end to end in one tensor (each padded to at least one window), so a
    batch of crops is a single gather, on the training device.
    """

    def __init__(self, features: list[np.ndarray], size: int, device: torch.device):
        padded = [pad_frames(f, size) for f in features]
        lengths = np.array([f.shape[1] for f in padded])
        self.offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.max_start = lengths - size
        self.frames = torch.from_numpy(np.concatenate(padded, axis=1)).to(device)
        self.steps = torch.arange(size, device=device)

    def crops(self, tracks: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """One random window of each of ``tracks``: (len(tracks), bins, size) float32."""
        starts = self.offsets[tracks] + (rng.random(len(tracks)) * (self.max_start[tracks] + 1)).astype(np.int64)
        index = torch.from_numpy(starts).to(self.frames.device)[:, None] + self.steps
        return self.frames[:, index].permute(1, 0, 2).float()


def mask_bands(x: torch.Tensor, rng: np.random.Generator, max_fraction: float = 0.15) -> torch.Tensor:
    """Zero (= the normalised floor) one random band of bins and one of frames in each window."""
    n, bins, frames = x.shape

    def band(size: int) -> torch.Tensor:  # (n, size): True inside each window's random band
        width = (rng.random(n) * (int(size * max_fraction) + 1)).astype(np.int64)
        start = (rng.random(n) * (size - width + 1)).astype(np.int64)
        pos = torch.arange(size, device=x.device)
        lo, hi = (torch.from_numpy(v).to(x.device)[:, None] for v in (start, start + width))
        return (pos >= lo) & (pos < hi)

    in_bins, in_frames = band(bins), band(frames)
    return x.masked_fill(in_bins[:, :, None] | in_frames[:, None, :], 0.0)


def _epoch_draw(y: np.ndarray, n: int, balance: bool, rng: np.random.Generator) -> np.ndarray:
    if not balance:  # a shuffled pass: every track equally often
        return rng.permutation(np.resize(np.arange(len(y)), n))
    weights = 1.0 / np.bincount(y)[y]
    return rng.choice(len(y), size=n, replace=True, p=weights / weights.sum())


def _forward(model: nn.Module, x: torch.Tensor, target: torch.Tensor, loss_fn, mixup: float, rng: np.random.Generator):
    """Logits and loss of one batch (with mixup when ``mixup`` > 0)."""
    if mixup <= 0:
        logits = model(x)
        return logits, loss_fn(logits, target)
    lam = float(rng.beta(mixup, mixup))
    perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    logits = model(lam * x + (1 - lam) * x[perm])
    return logits, lam * loss_fn(logits, target) + (1 - lam) * loss_fn(logits, target[perm])


def _optimizer(model: nn.Module, config: TrainConfig, steps_per_epoch: int):
    """The optimiser and its per-step learning-rate schedule."""
    params, lr, decay = model.parameters(), config.lr, config.weight_decay
    opt = {
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, weight_decay=decay),
        "adam": lambda: torch.optim.Adam(params, lr=lr, weight_decay=decay),
        "nadam": lambda: torch.optim.NAdam(params, lr=lr, weight_decay=decay),
        "sgd": lambda: torch.optim.SGD(params, lr=lr, weight_decay=decay),
    }[config.optimizer]()
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    rate = 1.0 / total if config.schedule == "decay" else 0.0  # inverse time: lr / (1 + step / total)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1.0 + rate * step))


def train(
    model: nn.Module,
    features: list[np.ndarray],
    y: np.ndarray,
    feature_config: FeatureConfig,
    *,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None = None,
    config: TrainConfig | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` on the tracks ``train_idx`` of ``features``.

    Parameters
    ----------
    model : any genrekit model (windows ``(batch, 1, bins, frames)`` in, logits out); trained in place
    features : (bins, frames) matrix per track
    y : class index per track
    feature_config : defines the window size and normalisation
    train_idx, val_idx : track indices of the training and validation sides
    config : training hyper-parameters (default: :class:`TrainConfig`)
    device : where to train (default: CUDA when available, else the CPU)
    progress : show a progress bar
    desc : label of the progress bar (e.g. the model, seed and fold)
    """
    config = config or TrainConfig()
    device = torch.device(device) if device is not None else default_device()
    with seeded(config.seed, device):
        return _train(
            model, features, np.asarray(y), feature_config, train_idx, val_idx, config, device, progress, desc
        )


def _train(model, features, y, feature_config, train_idx, val_idx, config, device, progress, desc) -> TrainResult:
    t0 = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    model = model.to(device)
    if config.precision == "bf16":  # oneDNN's bfloat16 convolutions want channels-last tensors
        model = model.to(memory_format=torch.channels_last)
    sampler = WindowSampler([features[i] for i in train_idx], feature_config.segment_frames, device)
    train_y = y[train_idx]
    n_draw = len(train_idx) * config.windows_per_track
    steps = max(1, -(-n_draw // config.batch_size))
    opt, sched = _optimizer(model, config, steps)
    loss_fn = nn.CrossEntropyLoss()
    n_classes = int(y.max()) + 1
    validator = Classifier(model, feature_config, [str(i) for i in range(n_classes)], device=device)
    history, best, best_state, best_epoch = [], None, None, config.epochs
    bar = tqdm(range(config.epochs), desc=desc, unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        draw = _epoch_draw(train_y, n_draw, config.balance, rng)
        total_loss, correct = 0.0, 0
        for b in range(steps):
            chosen = draw[b * config.batch_size : (b + 1) * config.batch_size]
            x = feature_config.normalize(sampler.crops(chosen, rng))
            if config.augment:
                x = mask_bands(x, rng)
            target = torch.from_numpy(train_y[chosen]).to(device)
            x = x.unsqueeze(1)
            if config.precision == "bf16":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                logits, loss = _forward(model, x, target, loss_fn, config.mixup, rng)
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
            rep = evaluate_tracks(validator, [features[i] for i in val_idx], y[val_idx])
            probs = rep["track_probabilities"]
            row["val_loss"] = float(-np.mean(np.log(probs[np.arange(len(val_idx)), y[val_idx]] + 1e-9)))
            row["val_acc"] = rep["track"]["accuracy"]
            row["val_balanced_acc"] = rep["track"]["balanced_accuracy"]
            score = (row["val_balanced_acc"], -row["val_loss"])
            if best is None or score > best:
                best, best_epoch = score, epoch + 1
                if config.restore_best:
                    best_state = copy.deepcopy(model.state_dict())
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_bacc=f"{row['val_balanced_acc']:.3f}")
        else:
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", train_acc=f"{row['train_acc']:.3f}")  # not an evaluation
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if best is not None and epoch + 1 - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:  # the weights are the last epoch's
        best_epoch = len(history)
    return TrainResult(model.eval(), history, best_epoch, time.perf_counter() - t0)
