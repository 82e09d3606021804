"""Exporting a checkpoint to ONNX, for the torch-free runtime (:mod:`genrekit.runtime`); needs torch and onnx.

A model of the ``musicnn`` kind becomes, in one folder:

* ``<stem>.onnx``: the head, un-normalised windows ``(n, bins, frames)`` → softmax probabilities
  ``(n, classes)`` (the kind's normalisation included);
* ``musicnn_<backbone>.onnx`` per backbone: log-mel patches ``(n, 1, 96, 187)`` → its
  ``penultimate``, ``tags`` and ``pooled`` embeddings;
* ``<stem>.onnx.json``: the card: labels, feature config, metadata, the files above, and the
  SHA-256 of the checkpoint it came from, of each file above and of the labels (an export that
  does not match is not used).

The numpy front end (mel, patches, levelling, compression) stays outside the graphs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from genrekit.checkpoint import load_checkpoint, resolve_model_path
from genrekit.errors import GenrekitError
from genrekit.features import FeatureConfig
from genrekit.features.musicnn import MusicnnConfig
from genrekit.runtime import CARD_VERSION, KINDS, card_files, card_path, file_sha256, labels_sha256

OPSET = 17
CARD_METADATA = ("description", "trained_on", "protocol", "accuracy", "created")


class _Head(nn.Module):
    """A model with its kind's normalisation before and the softmax after."""

    def __init__(self, model: nn.Module, features: FeatureConfig):
        super().__init__()
        self.model, self.features = model, features

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(self.features.normalize(windows).unsqueeze(1)).float(), dim=1)


class _Backbone(nn.Module):
    """A musicnn tagger giving its embeddings as a tuple (ONNX outputs are named, not attributes)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(patches)
        return out.penultimate, out.tags, out.pooled


def _export(module: nn.Module, example: torch.Tensor, path: Path, *, inputs: list[str], outputs: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    axes = {name: {0: "n"} for name in (*inputs, *outputs)}
    # the TorchScript exporter: it needs neither onnxscript nor a dynamo trace of the eval-mode shortcuts
    torch.onnx.export(
        module.eval(),
        (example,),
        str(tmp),
        input_names=inputs,
        output_names=outputs,
        dynamic_axes=axes,
        opset_version=OPSET,
        dynamo=False,
    )
    os.replace(tmp, path)


def _kept_precisions(card_file: Path, card: dict, out: Path) -> dict:
    """The other precisions of the card being replaced, where each was made from a backbone this
    export left unchanged (scripts/quantize_backbone.py makes them: a retrained head keeps them)."""
    try:
        old = json.loads(card_file.read_text())
    except (OSError, ValueError):
        return {}
    same = lambda name: old.get("sha256", {}).get(card["backbones"][name]) == card["sha256"][card["backbones"][name]]
    return {
        precision: files
        for precision, files in old.get("precisions", {}).items()
        if set(files) <= set(card["backbones"]) and all(same(b) and (out / f).is_file() for b, f in files.items())
    }


def export_onnx(*, model: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None) -> Path:
    """Export a checkpoint (default: the bundled model) to ONNX; returns the card's path.

    Parameters
    ----------
    model : a checkpoint file, or a bundled model's name
    out_dir : where the files go (default: beside the checkpoint, where :class:`genrekit.Predictor`
        finds them)

    Raises
    ------
    GenrekitError
        the checkpoint cannot be read, or its feature kind has no numpy front end
    """
    from genrekit.models.musicnn import load_pretrained

    path = resolve_model_path(model)
    checkpoint = load_checkpoint(path)
    features = checkpoint.feature_config
    if features.kind not in KINDS or not isinstance(features, MusicnnConfig):
        raise GenrekitError(f"only models of the {', '.join(KINDS)} kind export to ONNX, not '{features.kind}'")
    out = Path(out_dir) if out_dir is not None else path.parent
    out.mkdir(parents=True, exist_ok=True)
    head_file = f"{path.stem}.onnx"
    with torch.inference_mode(False), torch.no_grad():
        example = torch.randn(2, *checkpoint.input_shape)
        _export(
            _Head(checkpoint.build(), features), example, out / head_file, inputs=["windows"], outputs=["probabilities"]
        )
        backbones = {}
        for name in features.backbones.split("+"):
            backbone = load_pretrained(name)
            backbone.frontend_chunk = None  # one pass over the batch: a split would fix the batch size
            backbones[name] = f"musicnn_{name}.onnx"
            patches = torch.rand(2, 1, 96, 187) * 3
            _export(
                _Backbone(backbone),
                patches,
                out / backbones[name],
                inputs=["patches"],
                outputs=["penultimate", "tags", "pooled"],
            )
    card = {
        "format_version": CARD_VERSION,
        "model_name": checkpoint.model_name,
        "labels": list(checkpoint.labels),
        "feature_config": features.to_dict(),
        "metadata": {k: checkpoint.metadata[k] for k in CARD_METADATA if k in checkpoint.metadata},
        "split": {k: list(v) for k, v in checkpoint.split.items()},
        "head": head_file,
        "backbones": backbones,
        "checkpoint": path.name,
        "checkpoint_sha256": file_sha256(path),
        "labels_sha256": labels_sha256(list(checkpoint.labels)),
    }
    card_file = card_path(out / path.name)
    card["sha256"] = {name: file_sha256(out / name) for name in card_files(card)[1:]}
    kept = _kept_precisions(card_file, card, out)
    if kept:
        card["precisions"] = kept
        card["sha256"] = {name: file_sha256(out / name) for name in card_files(card)[1:]}
    card_file.write_text(json.dumps(card, indent=1, default=str) + "\n")
    return card_file
