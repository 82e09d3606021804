"""The light inference runtime: numpy and onnxruntime, no torch.

A checkpoint exported by :func:`genrekit.onnx_export.export_onnx` has a card beside it
(``<stem>.onnx.json``). :meth:`genrekit.Predictor.load` uses it when it is current (the SHA-256 of
the checkpoint matches) and onnxruntime is installed: the same streaming path as the torch one
(decoding, the numpy mel front end, patches, levelling, windows) with the backbone and the head
run by onnxruntime. Probabilities match the torch path's within 1e-3 (tested).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from genrekit.errors import GenrekitError
from genrekit.features import FeatureConfig, FrameStream
from genrekit.inference import Classifier

CARD_SUFFIX = ".onnx.json"
CARD_VERSION = 1
KINDS = ("musicnn",)  # feature kinds with a numpy front end
# patches per backbone run: the front-end maps of 10 patches take onnxruntime's peak memory from
# ~160 MB to ~350 MB, and are no faster
PATCH_CHUNK = 2


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def card_path(model_path: str | os.PathLike) -> Path:
    """Where the ONNX card of a checkpoint lies: beside it, ``<stem>.onnx.json``."""
    path = Path(model_path)
    return path.with_name(path.stem + CARD_SUFFIX)


def onnx_available() -> bool:
    """Whether onnxruntime can be imported."""
    return importlib.util.find_spec("onnxruntime") is not None


def current_card(model_path: str | os.PathLike) -> Path | None:
    """The card of an up-to-date ONNX export of the checkpoint, or ``None`` (none, stale, other kind)."""
    card = card_path(model_path)
    if not card.is_file():
        return None
    try:
        d = json.loads(card.read_text())
    except (OSError, ValueError):
        return None
    if d.get("format_version") != CARD_VERSION or d.get("feature_config", {}).get("kind") not in KINDS:
        return None
    return card if d.get("checkpoint_sha256") == file_sha256(model_path) else None


class OnnxClassifier(Classifier):
    """:class:`genrekit.inference.Classifier` with onnxruntime sessions in place of torch.

    Parameters
    ----------
    head : session of the head: windows ``(n, bins, frames)`` → probabilities ``(n, classes)``
    embed : log-mel patches ``(n, 96, 187)`` → embedding frames ``(n, bins)``
    features : the feature config the model was trained with
    labels : class names, in the order of the outputs
    batch_size : windows per run of the head
    """

    def __init__(self, *, head, embed: Callable[[np.ndarray], np.ndarray], features: FeatureConfig,
                 labels: list[str], batch_size: int = 128):  # fmt: skip
        self.head, self.embed = head, embed
        self.features, self.labels, self.batch_size = features, list(labels), batch_size
        self.device = "cpu"

    def probabilities(self, windows: Iterable[np.ndarray]) -> np.ndarray:
        """Softmax probabilities ``(n_windows, n_classes)`` of un-normalised feature windows."""
        return self._joined([self.head.run(None, {"windows": x})[0] for x in self._batches(windows)])

    def stream(self) -> FrameStream:
        from genrekit.features.musicnn import MusicnnStream

        return MusicnnStream(self.features, embed=self.embed, backend="numpy")


def _embedder(sessions: list, parts: list[str]) -> Callable[[np.ndarray], np.ndarray]:
    names = [[o.name for o in session.get_outputs()] for session in sessions]

    def embed(x: np.ndarray) -> np.ndarray:
        patches = x[:, None].astype(np.float32, copy=False)
        outs = []
        for session, outputs in zip(sessions, names):
            chunks = range(0, len(x), PATCH_CHUNK)
            runs = [session.run(None, {"patches": patches[i : i + PATCH_CHUNK]}) for i in chunks]
            values = {name: np.concatenate([r[k] for r in runs]) for k, name in enumerate(outputs)}
            outs += [values[part] for part in parts]
        return np.concatenate(outs, axis=1)

    return embed


class OnnxModel:
    """An ONNX export read from its card: what :class:`genrekit.Predictor` needs of a checkpoint.

    Parameters
    ----------
    card : the ``<stem>.onnx.json`` file written by the export
    threads : threads of each onnxruntime session (default: onnxruntime's, one per core)

    Raises
    ------
    GenrekitError
        the card or its files cannot be read, or onnxruntime is not installed
    """

    def __init__(self, card: str | os.PathLike, *, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise GenrekitError("onnxruntime is not installed: pip install onnxruntime") from None
        card = Path(card)
        try:
            d = json.loads(card.read_text())
            self.model_name: str = d["model_name"]
            self.labels: list[str] = list(d["labels"])
            self.feature_config = FeatureConfig.from_dict(d["feature_config"])
            self.metadata: dict = d.get("metadata", {})
            self.split: dict[str, list[str]] = {k: list(v) for k, v in d.get("split", {}).items()}
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1

            def session(name: str):
                return ort.InferenceSession(str(card.parent / name), options, providers=["CPUExecutionProvider"])

            self.head = session(d["head"])
            backbones = [session(d["backbones"][b]) for b in self.feature_config.backbones.split("+")]
        except Exception as exc:  # noqa: BLE001 - any failure means "not a usable export"
            raise GenrekitError(f"'{card}' is not a usable ONNX export ({exc.__class__.__name__}: {exc})") from None
        self.embed = _embedder(backbones, self.feature_config.embedding.split("+"))

    @property
    def seen_ids(self) -> set[str]:
        """Ids of the tracks the model was trained or early-stopped on (as its checkpoint records them)."""
        return set(self.split.get("train", [])) | set(self.split.get("val", []))

    def classifier(self) -> OnnxClassifier:
        """The classifier running this export."""
        return OnnxClassifier(head=self.head, embed=self.embed, features=self.feature_config, labels=self.labels)
