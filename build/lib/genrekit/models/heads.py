"""Heads on pretrained embeddings (the ``musicnn`` feature kind): small models trained in seconds."""
from __future__ import annotations

import torch
from torch import nn

from genrekit.models import register


@register("embedding_head", source="genrekit: mean of a window's embedding frames, batch norm, linear (or MLP)")
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
    """

    def __init__(self, n_classes: int, input_shape: tuple[int, int], hidden: int = 0, dropout: float = 0.3):
        super().__init__()
        size = input_shape[0]
        layers: list[nn.Module] = [nn.BatchNorm1d(size)]
        if hidden:
            layers += [nn.Dropout(dropout), nn.Linear(size, hidden), nn.ReLU()]
            size = hidden
        self.net = nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(size, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1, 2).mean(dim=-1) if x.dim() == 4 else x.mean(dim=-1))
