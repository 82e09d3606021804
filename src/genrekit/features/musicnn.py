"""``musicnn``: embeddings of the pretrained musicnn taggers (Pons & Serra 2019), one frame per patch.

The front end is musicnn's: 16 kHz mono, n_fft 512, hop 256, 96 Slaney mel bands of the power
spectrum, then ``log10(10000 x + 1)`` in float32 (the stock code's float16 rounding overflows
under numpy 2). Every 3-s patch of 187 log-mel frames goes through the frozen backbone(s)
(:mod:`genrekit.models.musicnn`, weights shipped with genrekit) and becomes one feature frame:
the chosen embeddings side by side. A model trained on these frames is a small head; the
expensive backbone runs once per track and its output is cached like any feature. The backbones
are the musicnn MSD and MTT taggers and the same wheel's VGG taggers (``vgg_msd``, ``vgg_mtt``:
:mod:`genrekit.models.vgg`, on the same patches).

Patches do not overlap. A last partial patch of at least ``min_tail_seconds`` (and any audio
shorter than one patch) is completed by repeating its own frames, as musicnn was trained.

The compression is not gain-invariant: the same song 12 dB quieter changed the genre of 11 % of
the GTZAN clips. So each patch's mel power is first brought to one level (``level_db``, the median
patch level of GTZAN: -7 dB mean mel power), boosting quiet patches by at most ``max_boost_db``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from genrekit.errors import GenrekitError
from genrekit.features import FeatureConfig
from genrekit.features.logmel import MelStream

if TYPE_CHECKING:
    import torch

PATCH_FRAMES = 187  # 3 s at 16000 / 256, as musicnn counts them
EMBEDDING_SIZES = {"penultimate": 200, "pooled": 1506, "tags": 50}  # of a musicnn backbone (msd, mtt)
VGG_EMBEDDING_SIZES = {"penultimate": 256, "tags": 50}  # of a VGG backbone (vgg_msd, vgg_mtt): its flattened pool5
BACKBONES = ("msd", "mtt", "vgg_msd", "vgg_mtt")


def embedding_sizes(backbone: str) -> dict[str, int]:
    """The size of each embedding a backbone gives per patch."""
    return VGG_EMBEDDING_SIZES if backbone.startswith("vgg_") else EMBEDDING_SIZES


def log_compress(mel_power: np.ndarray) -> np.ndarray:
    """musicnn's compression of the mel power, in float32."""
    return np.log10(np.float32(10000.0) * mel_power + np.float32(1.0)).astype(np.float32)


def musicnn_mel_stream(*, backend: str = "torch") -> MelStream:
    """A stream of musicnn's (96, frames) mel power at 16 kHz (before :func:`log_compress`)."""
    return MelStream(
        sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, compress=lambda power: power, backend=backend
    )


def level_patches(power: np.ndarray, *, level_db: float | None, max_boost_db: float) -> np.ndarray:
    """Patches ``(n, 96, frames)`` of mel power scaled so that each one's mean is ``level_db``."""
    if level_db is None or not len(power):
        return power
    target = 10 ** (level_db / 10)
    mean = np.maximum(power.mean(axis=(1, 2), keepdims=True), target * 10 ** (-max_boost_db / 10))
    return (power * (target / mean)).astype(np.float32)


@cache
def _backbone(name: str):
    from genrekit.models.musicnn import load_pretrained
    from genrekit.models.vgg import load_vgg

    # in eval mode; shared read-only by every stream of the process
    return load_vgg(name) if name.startswith("vgg_") else load_pretrained(name)


def torch_embedder(config: MusicnnConfig) -> Callable[[np.ndarray], np.ndarray]:
    """The frozen torch backbones of ``config``: log-mel patches ``(n, 96, 187)`` → embeddings ``(n, n_bins)``."""
    import torch

    backbones = [_backbone(name) for name in config.backbones.split("+")]
    parts = config.embedding.split("+")

    def embed(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            outs = [backbone(torch.from_numpy(x).unsqueeze(1)) for backbone in backbones]
            return torch.cat([getattr(o, part) for o in outs for part in parts], dim=1).numpy()

    return embed


@dataclass(frozen=True)
class MusicnnConfig(FeatureConfig):
    """Embeddings of the frozen musicnn taggers, one frame per 3-s patch.

    Parameters
    ----------
    backbones : ``"msd"``, ``"mtt"``, ``"vgg_msd"``, ``"vgg_mtt"`` (the wheel's MSD_vgg, MTT_vgg) or a stack such as ``"msd+mtt"``,
        ``"msd+vgg_msd"``: each backbone's embeddings in turn
    embedding : what each backbone gives per patch, e.g. ``"penultimate+tags"`` (from
        penultimate 200, pooled 1506, tags 50; a VGG backbone: penultimate 256, tags 50)
    min_tail_seconds : a last partial patch at least this long is kept
    level_db : each patch's mean mel power is brought to this level (``None``: as recorded)
    max_boost_db : the most a quiet patch is raised
    """

    kind = "musicnn"
    sample_rate = 16000
    window_fields = ("segment_seconds", "segment_overlap")

    segment_overlap: float = 0.0
    backbones: str = "msd"
    embedding: str = "penultimate+tags"
    min_tail_seconds: float = 1.0
    level_db: float | None = -7.0
    max_boost_db: float = 20.0

    def __post_init__(self):
        super().__post_init__()
        bad = [b for b in self.backbones.split("+") if b not in BACKBONES]
        bad += [p for p in self.embedding.split("+") if p not in EMBEDDING_SIZES]
        bad += [
            f"{b}:{p}"
            for b in self.backbones.split("+")
            for p in self.embedding.split("+")
            if p not in embedding_sizes(b)
        ]
        if bad:
            raise GenrekitError(
                f"unknown musicnn backbone or embedding {bad}: backbones {', '.join(BACKBONES)}; "
                f"embeddings {', '.join(EMBEDDING_SIZES)} (a VGG backbone: {', '.join(VGG_EMBEDDING_SIZES)})"
            )

    @property
    def n_bins(self) -> int:
        parts = self.embedding.split("+")
        return sum(embedding_sizes(b)[p] for b in self.backbones.split("+") for p in parts)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / 256 / PATCH_FRAMES

    def stream(self) -> MusicnnStream:
        return MusicnnStream(self)

    def normalize(self, windows: torch.Tensor) -> torch.Tensor:
        return windows  # the head scales its input itself (batch norm)


class MusicnnStream:
    """Embedding frames of a stream of 16-kHz blocks: one per complete 187-frame log-mel patch.

    Parameters
    ----------
    config : the kind's settings
    embed : log-mel patches ``(n, 96, 187)`` → embeddings ``(n, n_bins)`` (default: the torch
        backbones, :func:`torch_embedder`; :mod:`genrekit.runtime` gives ONNX ones)
    backend : the mel front end's, ``"torch"`` or ``"numpy"``
    """

    def __init__(
        self, config: MusicnnConfig, *, embed: Callable[[np.ndarray], np.ndarray] | None = None, backend: str = "torch"
    ):
        self.config = config
        self.mel = musicnn_mel_stream(backend=backend)
        self.embed = embed or torch_embedder(config)
        self.pending = np.zeros((96, 0), np.float32)  # mel-power frames not yet in a patch
        self.patches = 0  # patches seen
        self.embedded = 0  # patches the backbone ran on
        self.known: dict[int, np.ndarray] = {}

    def reuse(self, known: dict[int, np.ndarray]) -> None:
        """Take the embeddings ``(n_bins,)`` of these complete patches (by index in the stream)
        as computed: the backbone skips them (a sampled analysis going whole keeps its patches)."""
        self.known = dict(known)

    def embed_patches(self, patches: np.ndarray) -> np.ndarray:
        """Embedding frames ``(n_bins, n)`` of mel-power patches ``(n, 96, 187)``."""
        c = self.config
        out = np.zeros((len(patches), c.n_bins), np.float32)
        index = range(self.patches, self.patches + len(patches))
        todo = [i for i, p in enumerate(index) if p not in self.known]
        if todo:
            x = log_compress(level_patches(patches[todo], level_db=c.level_db, max_boost_db=c.max_boost_db))
            out[todo] = self.embed(np.ascontiguousarray(x))
        for i, p in enumerate(index):
            if p in self.known:
                out[i] = self.known[p]
        self.patches += len(patches)
        self.embedded += len(todo)
        return np.ascontiguousarray(out.T)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Embeddings of the patches complete once ``block`` is appended."""
        return self._push_power(self.mel.push(block))

    def _push_power(self, power: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, power], axis=1)
        n = self.pending.shape[1] // PATCH_FRAMES
        patches = self.pending[:, : n * PATCH_FRAMES].reshape(96, n, PATCH_FRAMES).transpose(1, 0, 2)
        self.pending = self.pending[:, n * PATCH_FRAMES :]
        return self.embed_patches(patches)

    def finish(self) -> np.ndarray:
        """Embeddings of what is left: a long enough tail, or a signal shorter than one patch."""
        return self._finish_power(np.concatenate([self.pending, self.mel.finish()], axis=1))

    def embed_power(self, power: np.ndarray) -> np.ndarray:
        """Embedding frames ``(n_bins, n)`` of a whole mel-power spectrogram ``(96, frames)`` made
        elsewhere (e.g. from a Kaggle image), patched as a stream patches its audio's frames."""
        return np.concatenate([self._push_power(power.astype(np.float32)), self._finish_power(self.pending)], axis=1)

    def _finish_power(self, tail: np.ndarray) -> np.ndarray:
        n = tail.shape[1] // PATCH_FRAMES
        out = [tail[:, i * PATCH_FRAMES : (i + 1) * PATCH_FRAMES] for i in range(n)]
        rest = tail[:, n * PATCH_FRAMES :]
        keep = rest.shape[1] >= self.config.min_tail_seconds * self.config.sample_rate / 256
        if rest.shape[1] and (keep or not (self.patches or out)):
            out.append(np.tile(rest, (1, -(-PATCH_FRAMES // rest.shape[1])))[:, :PATCH_FRAMES])
        return self.embed_patches(np.stack(out) if out else np.zeros((0, 96, PATCH_FRAMES), np.float32))
