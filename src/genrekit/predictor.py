"""Predicting the genre of any audio file, streamed so that memory stays bounded.

>>> from genrekit.predictor import predict
>>> result = predict("song.mp3")                   # bundled model
>>> result.top[0]
('jazz', 0.87)

Audio is decoded block by block; feature frames are computed per block exactly as over the
whole file, cut into the windows the model was trained on, and each window's probabilities form
the timeline. The song's probabilities are the mean over its windows.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from genrekit.audio import GenrekitError, stream_audio
from genrekit.checkpoint import Checkpoint, load_checkpoint
from genrekit.evaluate import predict_tracks
from genrekit.features import (
    KAGGLE_CLIP_SECONDS,
    FeatureConfig,
    LogMel,
    frame_starts,
    kaggle_image_piece,
    normalize_windows,
    read_image_features,
)

BUNDLED_MODEL = "gknet-gtzan.pt"


def bundled_model_path() -> Path:
    """Path of the model shipped inside the package."""
    return Path(str(resources.files("genrekit") / "bundled" / BUNDLED_MODEL))


@dataclass
class Segment:
    """One window of the timeline."""

    start_s: float
    end_s: float
    label: str
    probabilities: dict[str, float]


@dataclass
class Prediction:
    """The genres of one file."""

    path: str
    duration_s: float
    top: list[tuple[str, float]]
    probabilities: dict[str, float]
    timeline: list[Segment]
    model: str
    seconds: float = 0.0

    @property
    def genre(self) -> str:
        """The most probable genre."""
        return self.top[0][0]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["top"] = [{"genre": g, "probability": p} for g, p in self.top]
        return d


class _LogMelFrames:
    """Log-mel frames of a stream, identical to :class:`LogMel` over the whole signal."""

    def __init__(self, config: FeatureConfig):
        self.logmel = LogMel(config)
        self.n_fft, self.hop = config.n_fft, config.hop_length
        self.buffer = np.zeros(self.n_fft // 2, dtype=np.float32)  # the centring pad
        self.n_samples = 0

    def _frames(self, samples: np.ndarray) -> np.ndarray:
        n = 1 + (len(samples) - self.n_fft) // self.hop if len(samples) >= self.n_fft else 0
        if n == 0:
            self.buffer = samples  # keep a block too short for a frame: it belongs to the next one
            return np.zeros((self.logmel.mel_fb.shape[0], 0), np.float32)
        frames = torch.from_numpy(samples[: (n - 1) * self.hop + self.n_fft]).unfold(0, self.n_fft, self.hop)
        with torch.inference_mode():
            db = self.logmel.frames_db(frames)
        self.buffer = samples[n * self.hop :]
        return db.numpy()

    def push(self, block: np.ndarray) -> np.ndarray:
        self.n_samples += len(block)
        return self._frames(np.concatenate([self.buffer, block]))

    def finish(self) -> np.ndarray:
        # whole-signal frame count with centring: 1 + n_samples // hop
        total = 1 + self.n_samples // self.hop
        tail = np.concatenate([self.buffer, np.zeros(self.n_fft, np.float32)])
        done = (self.n_samples + self.n_fft // 2 - len(self.buffer)) // self.hop
        return self._frames(tail)[:, : max(0, total - done)]


class _KaggleImageFrames:
    """Kaggle-image matrix columns of a stream, identical to the whole-signal features."""

    def __init__(self, config: FeatureConfig):
        self.sr, self.n_bins = config.sample_rate, config.n_bins
        self.clip = int(KAGGLE_CLIP_SECONDS * config.sample_rate)
        self.buffer = np.zeros(0, np.float32)
        self.cut_any = False

    def _pieces(self, audio: np.ndarray) -> np.ndarray:
        pieces = [kaggle_image_piece(audio[s : s + self.clip], self.sr) for s in range(0, len(audio), self.clip)]
        return np.concatenate(pieces, axis=1) if pieces else np.zeros((self.n_bins, 0), np.float32)

    def push(self, block: np.ndarray) -> np.ndarray:
        self.buffer = np.concatenate([self.buffer, block])
        cut = 0
        while len(self.buffer) - cut > self.clip * 31 // 30:  # keep up to ~31 s: it may be the whole clip
            cut += self.clip
        out, self.buffer = self._pieces(self.buffer[:cut]), self.buffer[cut:]
        self.cut_any = self.cut_any or cut > 0
        return out

    def finish(self) -> np.ndarray:
        if not self.cut_any and len(self.buffer):
            return kaggle_image_piece(self.buffer, self.sr)  # up to ~31 s: rendered whole
        return self._pieces(self.buffer)


def _windows(frame_blocks: Iterable[np.ndarray], config: FeatureConfig) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (start frame, window) as :func:`genrekit.features.segment` cuts the whole matrix."""
    seg, hop = config.segment_frames, config.hop_frames
    buf, buf_start, next_start, total, last_start = None, 0, 0, 0, None
    for block in frame_blocks:
        buf = block if buf is None else np.concatenate([buf, block], axis=1)
        total += block.shape[1]
        while next_start + seg <= total:
            yield next_start, buf[:, next_start - buf_start : next_start - buf_start + seg]
            last_start, next_start = next_start, next_start + hop
        keep_from = min(next_start, total - seg)  # the end-aligned last window may need older frames
        if keep_from > buf_start:
            buf, buf_start = buf[:, keep_from - buf_start :], keep_from
    if total == 0:
        return
    if last_start is None:  # shorter than one window: pad as segment() does
        full = buf if buf.shape[1] else np.zeros((config.n_bins, 1), np.float32)
        pad = np.full((full.shape[0], seg), full.min(), np.float32)
        pad[:, : full.shape[1]] = full
        yield 0, pad
    elif last_start + seg < total:
        yield total - seg, buf[:, total - seg - buf_start : total - buf_start]


class Predictor:
    """A trained model ready to predict; load once, predict many files.

    Parameters
    ----------
    checkpoint : the trained model
    batch_size : windows per forward pass
    """

    def __init__(self, checkpoint: Checkpoint, *, path: str | None = None, batch_size: int = 64):
        self.checkpoint = checkpoint
        self.model = checkpoint.build()
        self.config = checkpoint.feature_config
        self.labels = list(checkpoint.labels)
        self.path = path
        self.batch_size = batch_size

    @classmethod
    def load(cls, model: str | os.PathLike | None = None, **kwargs) -> Predictor:
        """Load a checkpoint file, or the bundled model when ``model`` is None."""
        path = Path(model) if model is not None else bundled_model_path()
        if model is None and not path.exists():
            raise GenrekitError(f"the bundled model is missing at '{path}'; run 'make bundled-model' or pass --model")
        return cls(load_checkpoint(path), path=str(path), **kwargs)

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else self.checkpoint.model_name

    @property
    def info(self) -> dict:
        """Model name, file, labels, training data and measured accuracy."""
        meta = self.checkpoint.metadata
        return {
            "name": self.name,
            "architecture": self.checkpoint.model_name,
            "path": self.path,
            "labels": self.labels,
            "features": self.config.to_dict(),
            **{k: meta[k] for k in ("description", "trained_on", "protocol", "accuracy", "created") if k in meta},
        }

    def _frame_stream(self) -> _LogMelFrames | _KaggleImageFrames:
        return _KaggleImageFrames(self.config) if self.config.kind == "kaggle-image" else _LogMelFrames(self.config)

    def window_probabilities(self, blocks: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
        """Probabilities of each window of a stream of audio blocks.

        Returns (window start frames, probabilities (n_windows, n_classes), number of samples).
        """
        frames = self._frame_stream()
        counted = {"samples": 0}

        def frame_blocks():
            for block in blocks:
                counted["samples"] += len(block)
                yield frames.push(block)
            yield frames.finish()

        starts, probs, batch = [], [], []

        def flush():
            x = normalize_windows(torch.from_numpy(np.stack(batch)), self.config.top_db).unsqueeze(1)
            with torch.inference_mode():
                probs.append(torch.softmax(self.model(x), dim=1).numpy())
            batch.clear()

        for start, window in _windows(frame_blocks(), self.config):
            starts.append(start)
            batch.append(np.asarray(window, dtype=np.float32))
            if len(batch) == self.batch_size:
                flush()
        if batch:
            flush()
        if not probs:
            return np.zeros(0, int), np.zeros((0, len(self.labels))), counted["samples"]
        return np.array(starts), np.concatenate(probs), counted["samples"]

    def _result(self, name: str, starts, probs, n_samples: int, top_k: int, t0: float) -> Prediction:
        fps, seg = self.config.frames_per_second, self.config.segment_frames
        duration = n_samples / self.config.sample_rate
        mean = probs.mean(axis=0)
        order = np.argsort(mean)[::-1][:top_k]
        timeline = [
            Segment(
                round(s / fps, 3),
                round(min((s + seg) / fps, duration), 3),
                self.labels[int(p.argmax())],
                {g: round(float(v), 4) for g, v in zip(self.labels, p)},
            )
            for s, p in zip(starts, probs)
        ]
        return Prediction(
            path=name,
            duration_s=round(duration, 3),
            top=[(self.labels[i], round(float(mean[i]), 4)) for i in order],
            probabilities={g: round(float(v), 4) for g, v in zip(self.labels, mean)},
            timeline=timeline,
            model=self.name,
            seconds=round(time.perf_counter() - t0, 4),
        )

    def predict_file(self, path: str | os.PathLike, *, top_k: int = 3, max_seconds: float | None = None) -> Prediction:
        """Genres of one audio file (streamed: memory does not grow with its length).

        Raises
        ------
        AudioError
            the file cannot be decoded
        """
        t0 = time.perf_counter()
        if Path(path).suffix.lower() == ".png":
            return self._predict_image(Path(path), top_k, t0)
        blocks = stream_audio(path, sr=self.config.sample_rate, block_seconds=30.0, max_seconds=max_seconds)
        starts, probs, n = self.window_probabilities(blocks)
        return self._result(str(path), starts, probs, n, top_k, t0)

    def _predict_image(self, path: Path, top_k: int, t0: float) -> Prediction:
        """A Kaggle GTZAN spectrogram image, for models on ``kaggle-image`` features."""
        feats = read_image_features(path, self.config)
        starts = frame_starts(feats.shape[1], self.config)
        probs = predict_tracks(self.model, [feats], self.config).windows[0]
        samples = int(KAGGLE_CLIP_SECONDS * self.config.sample_rate)
        return self._result(str(path), starts, probs, samples, top_k, t0)

    def predict_signal(self, y: np.ndarray, sr: int, *, top_k: int = 3, name: str = "signal") -> Prediction:
        """Genres of a mono signal already in memory."""
        import soxr

        t0 = time.perf_counter()
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        if sr != self.config.sample_rate:
            y = soxr.resample(y, sr, self.config.sample_rate).astype(np.float32)
        if not len(y):
            raise GenrekitError("the signal is empty")
        starts, probs, n = self.window_probabilities([y])
        return self._result(name, starts, probs, n, top_k, t0)

    def predict_files(
        self, paths: Iterable[str | os.PathLike], *, top_k: int = 3, workers: int = 2
    ) -> Iterator[tuple[str, Prediction | GenrekitError]]:
        """Predict many files, ``workers`` at a time; yields (path, result or error) in order."""
        def one(p):
            try:
                return str(p), self.predict_file(p, top_k=top_k)
            except GenrekitError as exc:
                return str(p), exc

        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, threads // max(1, workers)))
        try:
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                yield from pool.map(one, paths)
        finally:
            torch.set_num_threads(threads)


def predict(path: str | os.PathLike, *, model: str | os.PathLike | None = None, top_k: int = 3) -> Prediction:
    """Genres of one audio file with the bundled model (or the checkpoint ``model``).

    For many files, load a :class:`Predictor` once and call :meth:`Predictor.predict_file`.
    """
    return Predictor.load(model).predict_file(path, top_k=top_k)
