"""The light inference runtime: numpy and onnxruntime, no torch.

A checkpoint exported by :func:`genrekit.onnx_export.export_onnx` has a card beside it
(``<stem>.onnx.json``). :meth:`genrekit.Predictor.load` uses it when it is current (the SHA-256 of
the checkpoint, of every file the card names and of its labels match what the card holds) and
onnxruntime is installed; an export that does not match is never run: the same streaming path as the torch one
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
from typing import TYPE_CHECKING, Any

import numpy as np

from genrekit.errors import GenrekitError
from genrekit.features import FeatureConfig, FrameStream
from genrekit.inference import Classifier
from genrekit.precision import DEFAULT_PRECISION, check_precision

if TYPE_CHECKING:
    import torch

    from genrekit.features.musicnn import MusicnnConfig

CARD_SUFFIX = ".onnx.json"
CARD_VERSION = 2
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


def labels_sha256(labels: list[str]) -> str:
    """Hex SHA-256 of a label list, as a card records it."""
    return hashlib.sha256(json.dumps(list(labels), ensure_ascii=False).encode()).hexdigest()


def card_files(card: dict) -> list[str]:
    """The files a card names, beside it: the checkpoint, the head and the backbones (of every precision)."""
    others = [name for backbones in card.get("precisions", {}).values() for name in backbones.values()]
    return [card["checkpoint"], card["head"], *card["backbones"].values(), *others]


def card_problem(model_path: str | os.PathLike) -> str | None:
    """Why the ONNX export beside a checkpoint cannot be used (``None``: it is current).

    The export is current when its card is of this version and kind, and the SHA-256 of the
    checkpoint, of every file it names and of its labels are those the card records.
    """
    card = card_path(model_path)
    if not card.is_file():
        return f"no ONNX card '{card.name}' beside it"
    try:
        d = json.loads(card.read_text())
        if d.get("format_version") != CARD_VERSION or d.get("feature_config", {}).get("kind") not in KINDS:
            return f"'{card.name}' is of another version or kind; export it again (scripts/export_onnx.py)"
        if d["checkpoint_sha256"] != file_sha256(model_path):
            return f"'{card.name}' was exported from another checkpoint; export it again (scripts/export_onnx.py)"
        for name in card_files(d)[1:]:
            problem = _mismatch(card, d, name, Path(card.parent / name).read_bytes())
            if problem:
                return problem
        return _mismatch(card, d, None, None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"'{card.name}' cannot be read ({exc.__class__.__name__}: {exc})"


def _mismatch(card: Path, d: dict, name: str | None, data: bytes | None) -> str | None:
    """Why the file ``name`` (holding ``data``), or with ``name`` None the labels, are not what
    the card ``d`` records (``None``: they are)."""
    if name is None:
        if d["labels_sha256"] != labels_sha256(d["labels"]):
            return f"the labels in '{card.name}' are not those exported (their SHA-256 differs); export it again"
        return None
    assert data is not None, "a file is checked with its bytes"
    if d["sha256"].get(name) != hashlib.sha256(data).hexdigest():
        return f"'{name}' is not the file '{card.name}' names (its SHA-256 differs); export it again"
    return None


def current_card(model_path: str | os.PathLike) -> Path | None:
    """The card of an up-to-date ONNX export of the checkpoint, or ``None`` (see :func:`card_problem`)."""
    return card_path(model_path) if card_problem(model_path) is None else None


class OnnxBackend:
    """The :class:`genrekit.inference.ModelBackend` of an ONNX export: onnxruntime sessions in place of torch.

    Parameters
    ----------
    head : session of the head: windows ``(n, bins, frames)`` → probabilities ``(n, classes)``
    embed : log-mel patches ``(n, 96, 187)`` → embedding frames ``(n, bins)``
    features : the (musicnn) feature config the model was trained with
    """

    def __init__(self, *, head: Any, embed: Callable[[np.ndarray], np.ndarray], features: MusicnnConfig):
        self.head, self.embed, self.features = head, embed, features

    def probabilities(self, batches: Iterable[np.ndarray]) -> list[np.ndarray]:
        return [self.head.run(None, {"windows": x})[0] for x in batches]

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
    """An ONNX export read from its card: a :class:`genrekit.inference.TrainedModel`, run by onnxruntime.

    Parameters
    ----------
    card : the ``<stem>.onnx.json`` file written by the export
    threads : threads of each onnxruntime session (default: onnxruntime's, one per core)
    precision : the backbones' (:data:`genrekit.precision.PRECISIONS`): ``"fp32"``, the export; ``"int8"``, the
        quantised copies the card names under ``precisions``

    Raises
    ------
    GenrekitError
        the card or its files cannot be read, a file or the labels are not those the card records
        (their SHA-256), the card has no backbone of that precision, or onnxruntime is not installed
    """

    runtime = "onnx"

    def __init__(self, card: str | os.PathLike, *, threads: int | None = None, precision: str = DEFAULT_PRECISION):
        check_precision(precision)
        try:
            import onnxruntime as ort
        except ImportError:
            raise GenrekitError("onnxruntime is not installed: pip install onnxruntime") from None
        from genrekit.features.musicnn import MusicnnConfig

        card = Path(card)
        try:
            d = json.loads(card.read_text())
            self.model_name: str = d["model_name"]
            self.labels: list[str] = list(d["labels"])
            config = FeatureConfig.from_dict(d["feature_config"])
            if not isinstance(config, MusicnnConfig):
                raise GenrekitError(
                    f"'{card}' is not a usable ONNX export: its features are '{config.kind}', not musicnn"
                )
            self.feature_config = config
            self.metadata: dict = d.get("metadata", {})
            self.split: dict[str, list[str]] = {k: list(v) for k, v in d.get("split", {}).items()}
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1

            def session(name: str):
                data = (card.parent / name).read_bytes()  # checked and loaded from the same bytes
                problem = _mismatch(card, d, name, data)
                if problem:
                    raise GenrekitError(problem)
                return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

            problem = _mismatch(card, d, None, None)
            if problem:
                raise GenrekitError(problem)
            names = d["backbones"] if precision == DEFAULT_PRECISION else d.get("precisions", {}).get(precision)
            if names is None:
                raise GenrekitError(
                    f"the model '{d['model_name']}' ({card.name}) has no {precision} backbone: "
                    f"run it at {DEFAULT_PRECISION}, or make one with scripts/quantize_backbone.py"
                )
            self.head = session(d["head"])
            backbones = [session(names[b]) for b in self.feature_config.backbones.split("+")]
            self.precision = precision
        except GenrekitError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means "not a usable export"
            raise GenrekitError(f"'{card}' is not a usable ONNX export ({exc.__class__.__name__}: {exc})") from None
        self.embed = _embedder(backbones, self.feature_config.embedding.split("+"))

    @property
    def seen_ids(self) -> set[str]:
        """Ids of the tracks the model was trained or early-stopped on (as its checkpoint records them)."""
        return set(self.split.get("train", [])) | set(self.split.get("val", []))

    def classifier(self, *, device: str | torch.device = "cpu") -> Classifier:
        """The classifier running this export (on the CPU, whatever ``device`` says)."""
        backend = OnnxBackend(head=self.head, embed=self.embed, features=self.feature_config)
        return Classifier(backend, self.feature_config, self.labels)
