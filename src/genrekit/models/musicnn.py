"""musicnn in PyTorch: the pretrained MSD_musicnn and MTT_musicnn audio taggers.

An independent PyTorch implementation of the architecture of

* J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music audio
  tagging", ISMIR 2019 late-breaking/demo (https://github.com/jordipons/musicnn);
* J. Pons, O. Nieto, M. Prockup, E. Schmidt, A. Ehmann and X. Serra, "End-to-end learning for music
  audio tagging at scale", ISMIR 2018,

with the weights of the ``musicnn`` 0.1.0 package (ISC licence, (c) 2019 Music Technology Group,
Universitat Pompeu Fabra; see ``LICENSES/musicnn-ISC.txt``), converted by
``scripts/convert_musicnn.py`` and shipped in ``genrekit/pretrained/``.

Input: log-mel patches ``(batch, 1, 96, frames)``, 3 s = 187 frames, from the front end of the
``musicnn`` feature kind (:mod:`genrekit.features.musicnn`: 16 kHz mono, n_fft 512, hop 256, 96
Slaney mel bands, power, ``log10(10000 x + 1)`` in float32).

Network: a front end of timbral filters (7 frames x 38 and x 67 bands, max-pooled over frequency)
and temporal filters (128, 64 and 32 frames x 1 band, max-pooled over frequency), a mid-end of
three 1-D convolutions (7 frames, the last two residual) whose outputs are stacked with the
front end's, and a back end of temporal max + mean pooling, dense 200 (the "penultimate"
features) and dense ``n_tags`` with a sigmoid. Every convolution and the penultimate dense layer
are followed by ReLU and then batch norm (epsilon 1e-3, TensorFlow's default).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from genrekit.errors import GenrekitError
from genrekit.features.musicnn_tags import MSD_TAGS, MTT_TAGS, MUSICNN_TAGS  # noqa: F401 - re-exported

N_MELS = 96
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99
CPU_FRONTEND_CHUNK = 2  # patches per front-end pass on CPU in eval mode

PRETRAINED_FILES: dict[str, str] = {"msd": "musicnn_msd.pt", "mtt": "musicnn_mtt.pt"}
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------- network


@dataclass
class MusicnnOutput:
    """What :class:`Musicnn` returns for a batch.

    Attributes
    ----------
    tags : torch.Tensor
        ``(batch, n_tags)`` sigmoid tag probabilities (a taggram row per patch).
    logits : torch.Tensor
        ``(batch, n_tags)`` before the sigmoid.
    penultimate : torch.Tensor
        ``(batch, 200)`` the batch-normalised dense layer ("penultimate" in the stock features).
    pooled : torch.Tensor
        ``(batch, 2 * 753)`` the temporal max and mean of the stacked front- and mid-end features,
        interleaved per channel ``[max_0, mean_0, max_1, ...]`` as the stock code flattens them.
    max_pool, mean_pool : torch.Tensor
        ``(batch, 753)`` each, as the stock "max_pool" and "mean_pool" features.
    """

    tags: torch.Tensor
    logits: torch.Tensor
    penultimate: torch.Tensor
    pooled: torch.Tensor
    max_pool: torch.Tensor
    mean_pool: torch.Tensor


class _ConvBN(nn.Module):
    """Convolution, ReLU, then batch norm (the stock order); 2-D blocks then max-pool over frequency."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, pad: tuple[int, int]):
        super().__init__()
        self.conv = conv
        self.pad = pad
        bn = nn.BatchNorm2d if isinstance(conv, nn.Conv2d) else nn.BatchNorm1d
        self.bn = bn(conv.out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.pad)
        if isinstance(self.conv, nn.Conv1d):
            return self.bn(F.relu(self.conv(x)))
        if self.training:
            return self.bn(F.relu(self.conv(x))).amax(dim=2)
        # In eval mode ReLU and batch norm are monotone per channel, so pooling before them gives
        # the same values and skips two passes over the largest maps. A channel whose batch-norm
        # scale is negative needs the minimum: its filter is negated, max-pooled and negated back.
        bn = self.bn
        sign = torch.where(bn.weight >= 0, 1.0, -1.0)
        bias = self.conv.bias
        z = F.conv2d(x, self.conv.weight * sign[:, None, None, None], None if bias is None else bias * sign)
        pooled = z.amax(dim=2) * sign[:, None]
        return F.batch_norm(F.relu(pooled), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


class PretrainedTagger(nn.Module):
    """A backbone filled with a musicnn-wheel tagger's converted weights: its tag names and source."""

    tags: tuple[str, ...]
    source: str


M = TypeVar("M", bound=PretrainedTagger)


class Musicnn(PretrainedTagger):
    """The musicnn tagger: ``(batch, 1, n_mels, frames)`` log-mel patches to :class:`MusicnnOutput`.

    Parameters
    ----------
    n_tags : int
        Number of output tags (50 for both pretrained models).
    n_mels : int
        Mel bands of the input (the timbral filters span 40 % and 70 % of them).
    midend_filters : int
        Channels of each mid-end convolution.
    backend_units : int
        Width of the penultimate dense layer.
    """

    def __init__(self, *, n_tags: int = 50, n_mels: int = N_MELS, midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS, momentum=BN_MOMENTUM)
        timbral_filters, temporal_filters = int(1.6 * 128), int(1.6 * 32)
        # vertical filters: 7 frames x 40 % / 70 % of the bands, time padded to keep the length
        self.timbral = nn.ModuleList(
            _ConvBN(nn.Conv2d(1, timbral_filters, (int(f * n_mels), 7)), (3, 3)) for f in (0.4, 0.7)
        )
        # horizontal filters: 1 band x 128 / 64 / 32 frames, TensorFlow "same" padding
        self.temporal = nn.ModuleList(
            _ConvBN(nn.Conv2d(1, temporal_filters, (1, k)), ((k - 1) // 2, k // 2)) for k in (128, 64, 32)
        )
        frontend_channels = 2 * timbral_filters + 3 * temporal_filters
        self.midend = nn.ModuleList(
            _ConvBN(nn.Conv1d(c, midend_filters, 7), (3, 3))
            for c in (frontend_channels, midend_filters, midend_filters)
        )
        pooled_channels = frontend_channels + 3 * midend_filters
        self.pool_bn = nn.BatchNorm1d(2 * pooled_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.dense = nn.Linear(2 * pooled_channels, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.out = nn.Linear(backend_units, n_tags)
        self.dropout = nn.Dropout(0.5)
        # patches per front-end pass on CPU in eval mode (None: the whole batch, as an ONNX export needs)
        self.frontend_chunk: int | None = CPU_FRONTEND_CHUNK
        self.tags: tuple[str, ...] = ()  # both set by load_pretrained
        self.source = ""

    def _frontend(self, x: torch.Tensor) -> torch.Tensor:
        # each map is max-pooled over all its frequency rows: (batch, channels, frames)
        return torch.cat([block(x) for block in (*self.timbral, *self.temporal)], dim=1)

    def frontend(self, x: torch.Tensor) -> torch.Tensor:
        """The front end's maps ``(batch, channels, frames)`` of log-mel patches ``(batch, 1, n_mels, frames)``:
        the mid-end's input."""
        x = self.input_bn(x)
        if self.training or x.device.type != "cpu" or not self.frontend_chunk:
            return self._frontend(x)
        # the front-end maps of a large batch overflow the CPU caches: ~1.8x slower per patch
        return torch.cat([self._frontend(chunk) for chunk in x.split(self.frontend_chunk)])

    def forward(self, x: torch.Tensor) -> MusicnnOutput:
        """Tags and features of a batch of log-mel patches ``(batch, 1, n_mels, frames)``."""
        features = [self.frontend(x)]
        h = self.midend[0](features[0])
        features.append(h)
        for block in self.midend[1:]:
            h = block(h) + h
            features.append(h)
        stacked = torch.cat(features, dim=1)
        max_pool, mean_pool = stacked.amax(dim=2), stacked.mean(dim=2)
        pooled = torch.stack((max_pool, mean_pool), dim=2).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.dropout(self.pool_bn(pooled)))))
        logits = self.out(self.dropout(penultimate))
        return MusicnnOutput(torch.sigmoid(logits), logits, penultimate, pooled, max_pool, mean_pool)


# ----------------------------------------------------------------------------- pretrained


def _canonical(name: str) -> str:
    key = name.lower().removesuffix("_musicnn")
    if key not in PRETRAINED_FILES:
        raise GenrekitError(f"unknown musicnn model '{name}'; choose one of: {', '.join(PRETRAINED_FILES)}")
    return key


def load_pretrained(name: str = "msd") -> Musicnn:
    """The pretrained musicnn shipped with genrekit, in eval mode (nothing is downloaded).

    Parameters
    ----------
    name : str
        ``"msd"`` (MSD_musicnn, Million Song Dataset tags) or ``"mtt"`` (MTT_musicnn,
        MagnaTagATune tags); the stock names ``"MSD_musicnn"``/``"MTT_musicnn"`` work too.

    Returns
    -------
    Musicnn
        The model; its tag names are ``MUSICNN_TAGS[name]`` (also ``model.tags``).
    """
    payload = pretrained_payload(PRETRAINED_FILES[_canonical(name)], what="musicnn")
    return with_pretrained(Musicnn(n_tags=len(payload["tags"])), payload)


def pretrained_payload(file: str, *, what: str) -> dict:
    """The converted weights ``file`` shipped in ``genrekit/pretrained`` (loaded ``weights_only``)."""
    ref = resources.files("genrekit") / "pretrained" / file
    if not ref.is_file():
        raise GenrekitError(f"the pretrained {what} weights are missing at '{ref}'; run 'make pretrained'")
    with resources.as_file(ref) as path:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format_version") != FORMAT_VERSION:
        raise GenrekitError(f"'{ref}' has format {payload.get('format_version')}, expected {FORMAT_VERSION}")
    return payload


def with_pretrained(model: M, payload: dict) -> M:
    """``model`` holding ``payload``'s weights, tag names (``model.tags``) and source, in eval mode."""
    model.load_state_dict(payload["state_dict"])
    model.tags = tuple(payload["tags"])
    model.source = payload["source"]
    return model.eval()
