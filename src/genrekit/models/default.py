"""genrekit's default model: a compact CNN with batch norm and mean+max pooling over time."""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool),
    )


class GKNet(nn.Module):
    """Four conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool), frequency averaged, then the
    mean and max over time concatenated into a linear classifier.

    Works on any window size; pooling over time makes it insensitive to where in the window an
    event sits, batch norm lets it train fast with a high learning rate on little data.
    """

    def __init__(self, n_classes: int, input_shape: tuple[int, int], width: int = 16, dropout: float = 0.3):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.BatchNorm2d(1),
            _block(1, w, (2, 2)),
            _block(w, 2 * w, (2, 2)),
            _block(2 * w, 4 * w, (2, 2)),
            _block(4 * w, 8 * w, (2, 1)),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(16 * w, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).mean(dim=2)  # (batch, channels, time)
        h = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.classifier(self.dropout(h))
