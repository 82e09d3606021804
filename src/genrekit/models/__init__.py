"""Model registry: plain ``nn.Module`` classes built from a name and keyword hyper-parameters.

Every model takes a batch of normalised windows ``(batch, 1, bins, frames)`` and returns logits
``(batch, n_classes)``. Training and evaluation only use this contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from genrekit.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture."""

    name: str
    build: Callable[..., nn.Module]
    source: str


DEFAULT_MODEL = "gknet"

# name: (where the class lies, what it is); imported on first use, so listing names stays light
_BUILT_IN: dict[str, tuple[str, str]] = {
    "gknet": ("genrekit.models.default:GKNet", "genrekit"),
    "embedding_head": (
        "genrekit.models.heads:EmbeddingHead",
        "genrekit: mean of a window's embedding frames, batch norm, linear (or MLP)",
    ),
    "s000_cnn": ("genrekit.models.seeds:S000CNN", "seed 000: Convolutional Genre Classifier (Kaggle images, 70.85 %)"),
    "s001_cnn": ("genrekit.models.seeds:S001CNN", "seed 001: CS615 final, CNN (grey-scale images, ~32 % validation)"),
    "s001_ann": (
        "genrekit.models.seeds:S001ANN",
        "seed 001: CS615 final, ANN (z-scored grey-scale images, ~34 % validation)",
    ),
    "s002_cnn": ("genrekit.models.seeds:S002CNN", "seed 002: CNN on 64-mel 3-s segments (48 %)"),
    "s003_cnn": (
        "genrekit.models.seeds:S003CNN",
        "seed 003: two-block CNN with GAP and dense 512 (94.6 %, segment-level random split)",
    ),
    "s004_parallel_cnn": ("genrekit.models.seeds:S004ParallelCNN", "seed 004: parallel CNN (LSE project)"),
    "s004_cnn_rnn": ("genrekit.models.seeds:S004CNNRNN", "seed 004: CNN-RNN (LSE project)"),
}

# other packages add models through the entry-point group ``genrekit.models`` (each an nn.Module class)
MODELS: Registry[type[nn.Module]] = Registry(
    "model", {name: where for name, (where, _) in _BUILT_IN.items()}, group="genrekit.models"
)


def model_names() -> list[str]:
    """Names of all registered models, default first."""
    return sorted(MODELS, key=lambda n: (n != DEFAULT_MODEL, n))


def model_spec(name: str) -> ModelSpec:
    """The registered architecture ``name``.

    Raises
    ------
    GenrekitError
        no model of that name
    """
    build = MODELS[name]
    source = _BUILT_IN[name][1] if name in _BUILT_IN else f"{build.__module__} (a plugin)"
    return ModelSpec(name, build, source)


def build_model(name: str, *, n_classes: int, input_shape: tuple[int, int], **hparams) -> nn.Module:
    """Instantiate a registered model.

    Parameters
    ----------
    name : registry name (see :func:`model_names`)
    n_classes : number of output classes
    input_shape : (bins, frames) of one window
    **hparams : architecture hyper-parameters of that model
    """
    return model_spec(name).build(n_classes=n_classes, input_shape=tuple(input_shape), **hparams)
