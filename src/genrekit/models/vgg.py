"""The musicnn package's VGG taggers in PyTorch: the pretrained MSD_vgg and MTT_vgg.

An independent PyTorch implementation of the ``vgg`` model of ``musicnn/models.py`` (J. Pons and
X. Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging", ISMIR 2019
late-breaking/demo, https://github.com/jordipons/musicnn), with the weights of the ``musicnn`` 0.1.0
package (ISC licence, (c) 2019 Music Technology Group, Universitat Pompeu Fabra; see
``LICENSES/musicnn-ISC.txt``), converted by ``scripts/convert_musicnn.py`` and shipped in
``genrekit/pretrained/``.

Input: the same log-mel patches as :class:`genrekit.models.musicnn.Musicnn`, ``(batch, 1, 96,
frames)``; the VGG models take exactly 3 s = 187 frames (their ``config.json``: ``n_frames`` 187;
the stock extractor refuses any other length, as the flattened last pooling fixes the width).

Network: batch norm of the input, then five blocks of a 3 x 3 convolution (128 filters, "same"
padding), ReLU, batch norm (epsilon 1e-3) and a max-pooling without padding: 4 x 1 frames x bands
with strides 2 x 2, then 2 x 2 three times, then 4 x 4; 187 x 96 becomes 2 x 1 x 128. Flattened
in TensorFlow's (time, band, channel) order, these 256 values ("penultimate" here; the stock
``pool5``) feed a dense layer of ``n_tags`` with a sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genrekit.errors import GenrekitError
from genrekit.models.musicnn import BN_EPS, BN_MOMENTUM, N_MELS, PretrainedTagger, pretrained_payload, with_pretrained

PATCH_FRAMES = 187
FILTERS = 128
PENULTIMATE_SIZE = 2 * 1 * FILTERS  # pool5 of a 187 x 96 patch: 2 frames x 1 band x 128 channels
# (pool size, strides) in (frames, bands) after each convolution, as the stock graph pools
POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

PRETRAINED_FILES: dict[str, str] = {"vgg_msd": "vgg_msd.pt", "vgg_mtt": "vgg_mtt.pt"}


@dataclass
class VggOutput:
    """What :class:`MusicnnVgg` returns for a batch.

    Attributes
    ----------
    tags : torch.Tensor
        ``(batch, n_tags)`` sigmoid tag probabilities.
    logits : torch.Tensor
        ``(batch, n_tags)`` before the sigmoid.
    penultimate : torch.Tensor
        ``(batch, 256)`` the flattened last pooling (the stock ``pool5``), the dense layer's input.
    """

    tags: torch.Tensor
    logits: torch.Tensor
    penultimate: torch.Tensor


class _Block(nn.Module):
    """3 x 3 convolution ("same"), ReLU, batch norm, then max-pooling (no padding)."""

    def __init__(self, in_channels: int, pool: tuple[tuple[int, int], tuple[int, int]]):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, FILTERS, 3, padding=1)
        self.bn = nn.BatchNorm2d(FILTERS, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.pool = nn.MaxPool2d(*pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.bn(F.relu(self.conv(x))))


class MusicnnVgg(PretrainedTagger):
    """The musicnn VGG tagger: ``(batch, 1, n_mels, 187)`` log-mel patches to :class:`VggOutput`.

    Parameters
    ----------
    n_tags : int
        Number of output tags (50 for both pretrained models).
    n_mels : int
        Mel bands of the input (96: with 187 frames, the last pooling leaves 2 x 1 positions).
    """

    def __init__(self, *, n_tags: int = 50, n_mels: int = N_MELS):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.blocks = nn.ModuleList(_Block(1 if i == 0 else FILTERS, pool) for i, pool in enumerate(POOLS))
        self.out = nn.Linear(PENULTIMATE_SIZE, n_tags)
        self.dropout = nn.Dropout(0.5)
        self.n_mels = n_mels
        self.tags: tuple[str, ...] = ()  # both set by load_vgg
        self.source = ""

    def forward(self, x: torch.Tensor) -> VggOutput:
        """Tags and features of a batch of log-mel patches ``(batch, 1, n_mels, 187)``."""
        if x.shape[-2:] != (self.n_mels, PATCH_FRAMES):
            raise GenrekitError(
                f"the VGG tagger takes patches of {self.n_mels} bands x {PATCH_FRAMES} frames, "
                f"got {tuple(x.shape[-2:])}; cut the log-mel spectrogram into 3-s patches"
            )
        h = self.input_bn(x).transpose(2, 3)  # (batch, 1, frames, bands), the stock layout
        for block in self.blocks:
            h = block(h)
        penultimate = h.permute(0, 2, 3, 1).flatten(1)  # TensorFlow's NHWC flattening
        logits = self.out(self.dropout(penultimate))
        return VggOutput(torch.sigmoid(logits), logits, penultimate)


def load_vgg(name: str = "vgg_msd") -> MusicnnVgg:
    """The pretrained VGG tagger shipped with genrekit, in eval mode (nothing is downloaded).

    Parameters
    ----------
    name : str
        ``"vgg_msd"`` (MSD_vgg, Million Song Dataset tags) or ``"vgg_mtt"`` (MTT_vgg, MagnaTagATune
        tags), where its converted file is present.

    Returns
    -------
    MusicnnVgg
        The model; its tag names are also ``model.tags``.
    """
    if name not in PRETRAINED_FILES:
        raise GenrekitError(f"unknown VGG model '{name}'; choose one of: {', '.join(PRETRAINED_FILES)}")
    payload = pretrained_payload(PRETRAINED_FILES[name], what="VGG")
    return with_pretrained(MusicnnVgg(n_tags=len(payload["tags"])), payload)
