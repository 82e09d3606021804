"""Heads on pretrained embeddings (the ``musicnn`` feature kind): small models trained in seconds."""

from __future__ import annotations

import torch
from torch import nn

from genrekit.errors import GenrekitError


class EmbeddingHead(nn.Module):
    """Average the embedding frames of a window, standardise them (batch norm) and classify.

    With 3-s windows of the ``musicnn`` kind a window is one patch; with 30-s windows it is the
    clip-mean embedding.

    Parameters
    ----------
    n_classes : genres
    input_shape : (embedding size, frames per window)
    hidden : width of a hidden layer (0: a linear head)
    dropout : dropout before each layer
    temperature : the logits are divided by it (calibration, fitted after training on held-out
        folds; 1: as trained). Part of the model, so its torch and ONNX forms agree.
    """

    def __init__(
        self,
        n_classes: int,
        input_shape: tuple[int, int],
        hidden: int = 0,
        dropout: float = 0.3,
        temperature: float = 1.0,
    ):
        super().__init__()
        if not temperature > 0:
            raise GenrekitError(f"temperature must be positive, not {temperature}")
        self.temperature = float(temperature)
        size = input_shape[0]
        layers: list[nn.Module] = [nn.BatchNorm1d(size)]
        if hidden:
            layers += [nn.Dropout(dropout), nn.Linear(size, hidden), nn.ReLU()]
            size = hidden
        self.net = nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(size, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x.flatten(1, 2).mean(dim=-1) if x.dim() == 4 else x.mean(dim=-1))
        return logits if self.temperature == 1.0 else logits / self.temperature
