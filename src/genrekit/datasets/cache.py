"""Feature extraction for datasets, with an on-disk cache.

A cached entry is keyed by the file's content hash and the feature configuration, so a second run
decodes nothing, a renamed file hits the cache, and a changed file or config misses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from genrekit.audio import stream_audio
from genrekit.datasets import Track
from genrekit.errors import GenrekitError
from genrekit.features import FeatureConfig, extract


def default_cache_dir() -> Path:
    """``$GENREKIT_CACHE``, else ``~/.cache/genrekit``."""
    return Path(os.environ.get("GENREKIT_CACHE", Path.home() / ".cache" / "genrekit"))


def save_entry(entry: Path, array: np.ndarray) -> None:
    """Write ``array`` to the cache file ``entry`` whole or not at all (a reader never sees half of it)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=entry.parent, suffix=".tmp.npy")  # unique per thread and process
    with os.fdopen(fd, "wb") as f:
        np.save(f, array)
    os.replace(tmp, entry)


def _file_hash(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _config_hash(config: FeatureConfig, source_kind: str) -> str:
    key = {**config.matrix_key(), "source": source_kind, "v": 2}
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class FeatureSet:
    """Features of the readable tracks; ``failed`` maps unreadable track ids to the reason."""

    tracks: list[Track]
    features: list[np.ndarray]
    failed: dict[str, str] = field(default_factory=dict)


def _extract(track: Track, config: FeatureConfig) -> np.ndarray:
    if track.kind != "image":
        return extract(config, stream_audio(track.path, sr=config.sample_rate), sr=config.sample_rate)
    if not config.reads_images:
        raise GenrekitError(
            f"'{track.path}' is a spectrogram image: {config.kind} features are computed from audio; "
            "use --input audio, or kaggle-image features"
        )
    from genrekit.features.kaggle_image import image_features

    return image_features(track.path)


def load_features(
    tracks: list[Track],
    config: FeatureConfig,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    workers: int = 2,
    progress: bool = True,
) -> FeatureSet:
    """Compute (or read from the cache) the (bins, frames) features of every track.

    Unreadable tracks are skipped: a warning lists them and they are returned in ``failed``.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()

    def one(track: Track) -> np.ndarray:
        if not use_cache:
            return _extract(track, config).astype(np.float16)
        entry = cache / "features" / _config_hash(config, track.kind) / f"{_file_hash(track.path)}.npy"
        if entry.exists():
            try:
                return np.load(entry)
            except (OSError, ValueError):
                pass  # a damaged cache entry is recomputed
        feats = _extract(track, config).astype(np.float16)
        save_entry(entry, feats)
        return feats

    def guarded(track: Track):
        try:
            return one(track)
        except GenrekitError as exc:
            return exc

    result = FeatureSet([], [])
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for track, out in tqdm(
            zip(tracks, pool.map(guarded, tracks)),
            total=len(tracks),
            desc="features",
            unit="track",
            disable=not progress,
        ):
            if isinstance(out, Exception):
                result.failed[track.id] = str(out)
            else:
                result.tracks.append(track)
                result.features.append(out)
    if result.failed:
        listing = "\n  ".join(f"{k}: {v}" for k, v in result.failed.items())
        warnings.warn(f"skipped {len(result.failed)} unreadable track(s):\n  {listing}", stacklevel=2)
    return result
