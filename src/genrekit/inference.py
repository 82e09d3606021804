"""The one inference core: feature windows in, class probabilities out.

Evaluation, training's validation, prediction and the server all go through
:meth:`Classifier.probabilities`; :meth:`Classifier.analyse` feeds it from a stream of audio
blocks or from a whole feature matrix, window by window, so memory does not grow with the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from genrekit.features import FeatureConfig, FrameStream
from genrekit.features.windows import WindowProbabilities, stream_windows

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Classifier", "ModelBackend", "TorchBackend", "TrainedModel", "WindowProbabilities"]


@runtime_checkable
class ModelBackend(Protocol):
    """What runs a model for a :class:`Classifier`: torch (:class:`TorchBackend`) or onnxruntime
    (:class:`genrekit.runtime.OnnxBackend`)."""

    def probabilities(self, batches: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Softmax probabilities ``(n, n_classes)`` of each float32 batch ``(n, bins, frames)`` of
        un-normalised feature windows."""
        ...

    def stream(self) -> FrameStream:
        """A fresh feature stream giving the frames this backend's windows are cut from."""
        ...


class TorchBackend:
    """A torch model run on ``device`` (it is moved there), its windows normalised by ``features``.

    Parameters
    ----------
    model : any genrekit model: normalised windows ``(batch, 1, bins, frames)`` in, logits out
    features : the feature config the model was trained with
    device : where the model runs
    """

    def __init__(self, model: nn.Module, features: FeatureConfig, *, device: str | torch.device = "cpu"):
        import torch

        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.features = features

    def probabilities(self, batches: Iterable[np.ndarray]) -> list[np.ndarray]:
        import torch

        was_training = self.model.training
        self.model.eval()
        out = []
        with torch.inference_mode():  # the batches are computed inside too (torch feature streams)
            for batch in batches:
                x = self.features.normalize(torch.from_numpy(batch).to(self.device)).unsqueeze(1)
                out.append(torch.softmax(self.model(x).float(), dim=1).cpu().numpy())
        self.model.train(was_training)
        return out

    def stream(self) -> FrameStream:
        return self.features.stream()


class TrainedModel(Protocol):
    """What a :class:`genrekit.Predictor` loads: a torch checkpoint
    (:class:`genrekit.checkpoint.Checkpoint`) or its ONNX export (:class:`genrekit.runtime.OnnxModel`)."""

    @property
    def runtime(self) -> str:
        """What runs it: ``"torch"`` or ``"onnx"``."""
        ...

    @property
    def model_name(self) -> str: ...

    @property
    def labels(self) -> list[str]: ...

    @property
    def feature_config(self) -> FeatureConfig: ...

    @property
    def metadata(self) -> dict[str, Any]: ...

    @property
    def seen_ids(self) -> set[str]:
        """Ids of the tracks the model was trained or early-stopped on."""
        ...

    def classifier(self, *, device: str | torch.device = "cpu") -> Classifier:
        """The classifier running this model on ``device``."""
        ...


class Classifier:
    """A model with the features it was trained on.

    Parameters
    ----------
    model : what runs the model: a :class:`ModelBackend`, or a torch model (windows
        ``(batch, 1, bins, frames)`` in, logits out), run by a :class:`TorchBackend` on ``device``
    features : the feature config the model was trained with
    labels : class names, in the order of the model's outputs
    device : where a torch model runs (it is moved there)
    batch_size : windows per forward pass
    """

    def __init__(
        self,
        model: ModelBackend | nn.Module,
        features: FeatureConfig,
        labels: list[str],
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 128,
    ):
        self.backend: ModelBackend = (
            model if isinstance(model, ModelBackend) else TorchBackend(model, features, device=device)
        )
        self.features = features
        self.labels = list(labels)
        self.batch_size = batch_size

    def probabilities(self, windows: Iterable[np.ndarray]) -> np.ndarray:
        """Softmax probabilities ``(n_windows, n_classes)`` of un-normalised feature windows.

        ``windows`` may be any iterable of (bins, frames) arrays; it is consumed in batches.
        """
        return self._joined(self.backend.probabilities(self._batches(windows)))

    def _batches(self, windows: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """``windows`` stacked ``batch_size`` at a time, float32."""
        it = iter(windows)
        while batch := list(islice(it, self.batch_size)):
            yield np.stack(batch).astype(np.float32, copy=False)

    def _joined(self, probabilities: list[np.ndarray]) -> np.ndarray:
        """The batches' probabilities as one array, ``(0, n_classes)`` when there were none."""
        return np.concatenate(probabilities) if probabilities else np.zeros((0, len(self.labels)), np.float32)

    def stream(self) -> FrameStream:
        """A fresh feature stream of this classifier's kind."""
        return self.backend.stream()

    def _windows(self, frame_blocks: Iterable[np.ndarray], starts: list[int]) -> Iterator[np.ndarray]:
        f = self.features
        for start, window in stream_windows(frame_blocks, size=f.segment_frames, hop=f.hop_frames):
            starts.append(start)
            yield window

    def analyse(
        self,
        *,
        blocks: Iterable[np.ndarray] | None = None,
        frames: np.ndarray | None = None,
        stream: FrameStream | None = None,
    ) -> WindowProbabilities:
        """Window probabilities of a stream of audio ``blocks`` or of a whole feature matrix ``frames``.

        Parameters
        ----------
        blocks : mono float32 sample blocks at ``features.sample_rate`` (streamed)
        frames : a (bins, n_frames) feature matrix of this kind (e.g. from the feature cache)
        stream : the fresh feature stream the ``blocks`` go through (default: :meth:`stream`)
        """
        counts = {"samples": 0, "frames": 0}

        def frame_blocks() -> Iterator[np.ndarray]:
            if frames is not None:
                counts["frames"] = frames.shape[1]
                yield frames
                return
            frame_stream = stream or self.stream()
            for block in blocks or ():
                counts["samples"] += len(block)
                out = frame_stream.push(block)
                counts["frames"] += out.shape[1]
                yield out
            out = frame_stream.finish()
            counts["frames"] += out.shape[1]
            yield out

        if (blocks is None) == (frames is None):
            raise ValueError("give either blocks or frames")
        starts: list[int] = []
        probs = self.probabilities(self._windows(frame_blocks(), starts))
        return WindowProbabilities(np.array(starts, dtype=np.int64), probs, counts["samples"], counts["frames"])

    def analyse_tracks(self, tracks: list[np.ndarray]) -> list[np.ndarray]:
        """Window probabilities of many feature matrices, batched across tracks."""
        f = self.features
        counts: list[int] = []

        def windows() -> Iterator[np.ndarray]:
            for frames in tracks:
                n = 0
                for _, w in stream_windows([frames], size=f.segment_frames, hop=f.hop_frames):
                    n += 1
                    yield w
                counts.append(n)

        probs = self.probabilities(windows())
        return np.split(probs, np.cumsum(counts)[:-1]) if counts else []
