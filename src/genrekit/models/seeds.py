"""The seed documents' architectures, rebuilt from their descriptions.

Where a document leaves a size unstated, the choice is noted in the class docstring. All take
the same input as every genrekit model, ``(batch, 1, bins, frames)``, so they can be compared
under one protocol.
"""

from __future__ import annotations

import torch
from torch import nn


def _flat_size(module: nn.Module, input_shape: tuple[int, int]) -> int:
    with torch.no_grad():
        return module(torch.zeros(1, 1, *input_shape)).numel()


class S000CNN(nn.Module):
    """Two conv layers each followed by max pooling, a third conv layer with dropout, global
    average pooling and a small dense network with dropout.

    Unstated sizes chosen here: 3x3 kernels, 32/64/128 filters, dense 64, dropout 0.3.
    """

    def __init__(self, n_classes: int, input_shape: tuple[int, int], dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class S001CNN(nn.Module):
    """conv 3x3 → ReLU → max-pool 2 → dropout 0.2, twice, with ONE filter per conv layer as the
    document states; flatten → dropout 0.3 → fully connected to the classes."""

    def __init__(self, n_classes: int, input_shape: tuple[int, int], filters: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, filters, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.2),
            nn.Conv2d(filters, filters, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.2),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(_flat_size(self.features, input_shape), n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class S001ANN(nn.Module):
    """flatten → dropout 0.2 → dense 800 → ReLU → dropout 0.2 → dense to the classes."""

    def __init__(self, n_classes: int, input_shape: tuple[int, int], hidden: int = 800):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(input_shape[0] * input_shape[1], hidden),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class S002CNN(nn.Module):
    """The printed ``MyModel``: conv 64 (3x3) → ReLU → max-pool (2, 4) → dropout 0.2;
    conv 64 (3x5) → ReLU → max-pool (2, 4) → dropout 0.2; dense 32 → dropout → ReLU → out."""

    def __init__(self, n_classes: int, input_shape: tuple[int, int]):
        super().__init__()
        # the two valid convolutions and (2, 4) pools need >= 34 frames; shorter windows are
        # zero-padded on the right (the 3-s kaggle-image window has 33)
        self.min_frames = 34
        input_shape = (input_shape[0], max(input_shape[1], self.min_frames))
        self.block1 = nn.Sequential(nn.Conv2d(1, 64, 3), nn.ReLU(), nn.MaxPool2d((2, 4)), nn.Dropout(0.2))
        self.block2 = nn.Sequential(nn.Conv2d(64, 64, (3, 5)), nn.ReLU(), nn.MaxPool2d((2, 4)), nn.Dropout(0.2))
        n_flat = _flat_size(nn.Sequential(self.block1, self.block2), input_shape)
        self.fully_connected = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, 32), nn.Dropout(0.2), nn.ReLU())
        self.output = nn.Linear(32, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.min_frames:
            x = nn.functional.pad(x, (0, self.min_frames - x.shape[-1]))
        return self.output(self.fully_connected(self.block2(self.block1(x))))


class S003CNN(nn.Module):
    """conv 32 → conv 128 → max-pool → dropout 0.2 → global average pooling → dense 512 → out.

    Unstated: 3x3 kernels with ReLU, 2x2 pooling, ReLU on the dense layer.
    """

    def __init__(self, n_classes: int, input_shape: tuple[int, int]):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 128, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, 512),
            nn.ReLU(),
            nn.Linear(512, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class S004ParallelCNN(nn.Module):
    """Branch 1: 3 filters 8x8 'same' → leaky ReLU 0.3 → max-pool 4 → flatten; branch 2: 4 filters
    4x4 'same' → leaky ReLU 0.3 → max-pool 2 → flatten; concatenated into a dense softmax layer."""

    def __init__(self, n_classes: int, input_shape: tuple[int, int]):
        super().__init__()
        self.branch1 = nn.Sequential(
            nn.ZeroPad2d((3, 4, 3, 4)), nn.Conv2d(1, 3, 8), nn.LeakyReLU(0.3), nn.MaxPool2d(4), nn.Flatten()
        )
        self.branch2 = nn.Sequential(
            nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(1, 4, 4), nn.LeakyReLU(0.3), nn.MaxPool2d(2), nn.Flatten()
        )
        n_flat = _flat_size(self.branch1, input_shape) + _flat_size(self.branch2, input_shape)
        self.dense = nn.Linear(n_flat, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(torch.cat([self.branch1(x), self.branch2(x)], dim=1))


class S004CNNRNN(nn.Module):
    """conv 8 (4x4) → max-pool 2 → conv 6 (3x3) → max-pool 2 → LSTM 128 (sequence) → LSTM 32
    (last state) → dense 200 ReLU → dropout 0.2 → out. The LSTMs run over time, each step
    reading all channels x frequency rows. Unstated: ReLU after each conv."""

    def __init__(self, n_classes: int, input_shape: tuple[int, int]):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 8, 4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 6, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        with torch.no_grad():
            _, c, f, _ = self.conv(torch.zeros(1, 1, *input_shape)).shape
        self.lstm1 = nn.LSTM(c * f, 128, batch_first=True)
        self.lstm2 = nn.LSTM(128, 32, batch_first=True)
        self.head = nn.Sequential(nn.Linear(32, 200), nn.ReLU(), nn.Dropout(0.2), nn.Linear(200, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)  # (batch, channels, freq, time)
        h = h.permute(0, 3, 1, 2).flatten(2)  # (batch, time, channels*freq)
        h, _ = self.lstm1(h)
        _, (last, _) = self.lstm2(h)
        return self.head(last[-1])
