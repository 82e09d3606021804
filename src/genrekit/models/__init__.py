"""Model registry: plain ``nn.Module`` classes built from a name and keyword hyper-parameters.

Every model takes a batch of normalised windows ``(batch, 1, bins, frames)`` and returns logits
``(batch, n_classes)``. Training and evaluation only use this contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from genrekit.errors import GenrekitError


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture."""

    name: str
    build: Callable[..., nn.Module]
    source: str


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, source: str) -> Callable:
    """Class decorator adding a model to the registry under ``name``."""

    def add(cls):
        _REGISTRY[name] = ModelSpec(name, cls, source)
        return cls

    return add


def model_names() -> list[str]:
    """Names of all registered models, default first."""
    return sorted(_REGISTRY, key=lambda n: (n != DEFAULT_MODEL, n))


def model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise GenrekitError(f"unknown model '{name}'; choose one of: {', '.join(model_names())}") from None


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


from genrekit.models import default, heads, seeds  # noqa: F401  (registration side effect)

DEFAULT_MODEL = default.DEFAULT_NAME
