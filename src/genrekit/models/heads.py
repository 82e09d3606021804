"""Heads on pretrained embeddings (the ``musicnn`` feature kind): small models trained in seconds."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genrekit.errors import GenrekitError

POOLINGS = ("mean", "mean+std", "attention")
PRIOR_FLOOR = 1e-4  # tag probabilities are clipped to [PRIOR_FLOOR, 1 - PRIOR_FLOOR] before their log-odds


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
    pooling : ``"mean"`` of a window's frames, ``"mean+std"`` (statistics pooling) or
        ``"attention"``: a weighted mean, each frame's weight the softmax over the window of a
        learnt linear score of its embedding (zero at first: it starts as the mean)
    ood_threshold : with a positive value, a window whose pooled embedding lies further than this
        from every genre (:func:`genrekit.calibration.ood_scores`: the least squared Mahalanobis
        distance to a genre's mean, per dimension; the buffers ``ood_means`` and
        ``ood_precision``) is out of distribution: its probabilities keep only ``ood_keep`` of
        themselves and are otherwise uniform, so it says little of the genre and its top
        probability stays low. Fitted after training like the temperature; 0: off.
    ood_keep : the share of an out-of-distribution window's probabilities kept
    first_input : the head classifies the embedding rows from this one on (200: only the 50 MSD
        tags of ``penultimate+tags``); the out-of-distribution gate reads every row
    prior_rows : per genre, the embedding rows of the tags that name it (tag probabilities; empty:
        none does). A window's prior for a named genre is the log-odds of its strongest tag, added
        with ``prior_weight`` to the head's log-probabilities of the named genres only: the prior
        moves probability among them, their total and the other genres' stay the head's. Before the
        temperature; ``()``: off.
    prior_weight : the weight of the prior
    """

    ood_means: torch.Tensor  # buffers, when the out-of-distribution gate is on
    ood_precision: torch.Tensor
    prior_mask: torch.Tensor  # with prior_rows

    def __init__(
        self,
        n_classes: int,
        input_shape: tuple[int, int],
        hidden: int = 0,
        dropout: float = 0.3,
        temperature: float = 1.0,
        pooling: str = "mean",
        ood_threshold: float = 0.0,
        ood_keep: float = 0.1,
        first_input: int = 0,
        prior_rows: Sequence[Sequence[int]] = (),
        prior_weight: float = 1.0,
    ):
        super().__init__()
        if not temperature > 0:
            raise GenrekitError(f"temperature must be positive, not {temperature}")
        if pooling not in POOLINGS:
            raise GenrekitError(f"unknown pooling '{pooling}'; choose one of: {', '.join(POOLINGS)}")
        self.temperature, self.pooling = float(temperature), pooling
        if not 0 <= first_input < input_shape[0]:
            raise GenrekitError(f"first_input must be an embedding row, 0 to {input_shape[0] - 1}, not {first_input}")
        self.ood_threshold, self.ood_keep = float(ood_threshold), float(ood_keep)
        self.first_input = int(first_input)
        size = input_shape[0]
        if self.ood_threshold > 0:  # filled by the checkpoint's state dict
            self.register_buffer("ood_means", torch.zeros(n_classes, size))
            self.register_buffer("ood_precision", torch.eye(size))
        self.prior_weight = float(prior_weight)
        if prior_rows:
            if len(prior_rows) != n_classes or any(not 0 <= r < size for rows in prior_rows for r in rows):
                raise GenrekitError(
                    f"prior_rows must list, for each of the {n_classes} genres, embedding rows 0 to {size - 1}"
                )
            mask = torch.zeros(n_classes, size, dtype=torch.bool)
            for k, rows in enumerate(prior_rows):
                mask[k, list(rows)] = True
            self.register_buffer("prior_mask", mask, persistent=False)  # rebuilt from the parameters
        self.has_prior = bool(prior_rows)
        size = size - self.first_input
        if pooling == "attention":
            self.attention = nn.Linear(size, 1)
            nn.init.zeros_(self.attention.weight)
            nn.init.zeros_(self.attention.bias)
        size *= len(pooling.split("+"))
        layers: list[nn.Module] = [nn.BatchNorm1d(size)]
        if hidden:
            layers += [nn.Dropout(dropout), nn.Linear(size, hidden), nn.ReLU()]
            size = hidden
        self.net = nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(size, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1, 2) if x.dim() == 4 else x
        mean = x.mean(dim=-1)
        inputs = x[:, self.first_input :] if self.first_input else x
        if self.pooling == "attention":
            weights = torch.softmax(self.attention(inputs.transpose(1, 2)), dim=1)  # (batch, frames, 1)
            pooled = torch.bmm(inputs, weights).squeeze(-1)
        else:
            pooled = inputs.mean(dim=-1)
        if self.pooling == "mean+std":
            pooled = torch.cat([pooled, inputs.std(dim=-1, unbiased=False)], dim=1)
        logits = self.net(pooled)
        if self.has_prior:
            logits = self.with_prior(torch.log_softmax(logits, dim=1), mean)
        logits = logits if self.temperature == 1.0 else logits / self.temperature
        if self.ood_threshold <= 0:
            return logits
        diff = mean[:, None, :] - self.ood_means[None]  # (batch, classes, size)
        score = ((diff @ self.ood_precision) * diff).sum(dim=-1).amin(dim=1) / mean.shape[1]
        keep = torch.where(score > self.ood_threshold, self.ood_keep, 1.0)[:, None]
        p = keep * torch.softmax(logits, dim=1) + (1 - keep) / logits.shape[1]
        return torch.log(p)  # the softmax of these log-probabilities is p

    def with_prior(self, log_p: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """``log_p`` with the tag prior of the window embeddings ``mean`` (batch, size) among the named genres."""
        named = self.prior_mask.any(dim=1)
        tag = torch.where(self.prior_mask[None], mean[:, None, :], mean.new_zeros(())).amax(dim=2)
        tag = tag.clamp(PRIOR_FLOOR, 1 - PRIOR_FLOOR)
        z = log_p + self.prior_weight * torch.log(tag / (1 - tag))
        off = z.new_full((), float("-inf"))
        moved = z - torch.logsumexp(torch.where(named, z, off), dim=1, keepdim=True)
        moved = moved + torch.logsumexp(torch.where(named, log_p, off), dim=1, keepdim=True)
        return torch.where(named, moved, log_p)
