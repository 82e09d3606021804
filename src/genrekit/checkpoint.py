"""A checkpoint is one file: weights, model name and hyper-parameters, labels, feature config, the
track ids it was trained, validated and tested on, and training metadata. It loads with
``torch.load(weights_only=True)``: plain data only, no pickled code."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from genrekit.errors import GenrekitError
from genrekit.features import FeatureConfig

if TYPE_CHECKING:
    from torch import nn

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 had one FeatureConfig class and no split ids
BUNDLED_MODEL = "musicnn-gtzan.pt"


def bundled_model_path(name: str = BUNDLED_MODEL) -> Path:
    """Path of a model shipped inside the package (default: the default model)."""
    return Path(str(resources.files("genrekit") / "bundled" / name))


def bundled_models() -> list[Path]:
    """Every model shipped inside the package, the default first."""
    folder = bundled_model_path().parent
    return sorted(folder.glob("*.pt"), key=lambda p: (p.name != BUNDLED_MODEL, p.name))


@dataclass
class Checkpoint:
    """Everything needed to rebuild a trained model and feed it as in training.

    ``split`` maps ``train``, ``val`` and ``test`` to the track ids of each side.
    """

    model_name: str
    model_params: dict
    labels: list[str]
    feature_config: FeatureConfig
    state_dict: dict
    split: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.feature_config.n_bins, self.feature_config.segment_frames)

    @property
    def seen_ids(self) -> set[str]:
        """Tracks the model learned from: its training and validation sides."""
        return set(self.split.get("train", [])) | set(self.split.get("val", []))

    def build(self) -> nn.Module:
        """The model in eval mode with its trained weights."""
        from genrekit.models import build_model

        model = build_model(
            self.model_name, n_classes=len(self.labels), input_shape=self.input_shape, **self.model_params
        )
        model.load_state_dict(self.state_dict)
        return model.eval()

    def save(self, path: str | os.PathLike) -> Path:
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format_version": FORMAT_VERSION,
            "model_name": self.model_name,
            "model_params": self.model_params,
            "labels": list(self.labels),
            "feature_config": self.feature_config.to_dict(),
            "split": {k: list(v) for k, v in self.split.items()},
            "metadata": self.metadata,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)
        return path


def resolve_model_path(path: str | os.PathLike | None = None) -> Path:
    """The checkpoint file ``path`` names: ``None`` the default bundled model, a bare bundled name
    (``gknet-gtzan``) that one, anything else itself.

    Raises
    ------
    GenrekitError
        the file is missing
    """
    if path is None:
        path = bundled_model_path()
        if not path.is_file():
            raise GenrekitError(f"the bundled model is missing at '{path}'; run 'make bundled-model' or pass --model")
    elif not Path(path).exists() and bundled_model_path(f"{Path(path).stem}.pt").is_file() and "/" not in str(path):
        path = bundled_model_path(f"{Path(path).stem}.pt")
    path = Path(path)
    if not path.is_file():
        raise GenrekitError(f"model file '{path}' not found; give a checkpoint written by 'genrekit train'")
    return path


def load_checkpoint(path: str | os.PathLike | None = None) -> Checkpoint:
    """Read a checkpoint written by :meth:`Checkpoint.save`.

    ``None`` reads the default bundled model; the name of a bundled model (``gknet-gtzan``) reads
    that one.

    Raises
    ------
    GenrekitError
        the file is missing or is not a genrekit checkpoint
    """
    import torch

    path = resolve_model_path(path)
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        if d.get("format_version") not in READABLE_VERSIONS:
            raise KeyError("format_version")
        metadata = d.get("metadata", {})
        split = d.get("split") or ({"test": metadata["test_ids"]} if metadata.get("test_ids") else {})
        return Checkpoint(
            model_name=d["model_name"],
            model_params=d["model_params"],
            labels=list(d["labels"]),
            feature_config=FeatureConfig.from_dict(d["feature_config"]),
            state_dict=d["state_dict"],
            split={k: list(v) for k, v in split.items()},
            metadata=metadata,
        )
    except Exception as exc:  # noqa: BLE001 - any failure means "not our checkpoint"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise GenrekitError(f"'{path}' is not a genrekit checkpoint ({exc.__class__.__name__}: {first_line})") from None
