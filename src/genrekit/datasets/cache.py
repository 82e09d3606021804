"""Feature extraction for datasets, with an on-disk cache.

A cached entry is keyed by the file's content hash and the feature configuration, so a second run
decodes nothing, a renamed file hits the cache, and a changed file or config misses it.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from genrekit.audio import GenrekitError, load_audio
from genrekit.datasets import Track
from genrekit.features import FeatureConfig, LogMel, compute_features, read_image_features

# fields that do not change a track's (bins, frames) matrix
_WINDOW_FIELDS = ("segment_seconds", "segment_overlap", "top_db")


def default_cache_dir() -> Path:
    """``$GENREKIT_CACHE``, else ``~/.cache/genrekit``."""
    return Path(os.environ.get("GENREKIT_CACHE", Path.home() / ".cache" / "genrekit"))


def _file_hash(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _config_hash(config: FeatureConfig, source_kind: str) -> str:
    d = {k: v for k, v in config.to_dict().items() if k not in _WINDOW_FIELDS}
    return hashlib.sha1(json.dumps({**d, "source": source_kind, "v": 2}, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class FeatureSet:
    """Features of the readable tracks; ``failed`` maps unreadable track ids to the reason."""

    tracks: list[Track]
    features: list[np.ndarray]
    failed: dict[str, str] = field(default_factory=dict)


def _extract(track: Track, config: FeatureConfig, logmel: LogMel) -> np.ndarray:
    if track.kind == "image":
        return read_image_features(track.path, config)
    return compute_features(load_audio(track.path, sr=config.sample_rate), config, logmel)


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
    logmel = LogMel(config) if config.kind == "logmel" else None

    def one(track: Track) -> np.ndarray:
        if not use_cache:
            return _extract(track, config, logmel).astype(np.float16)
        entry = cache / "features" / _config_hash(config, track.kind) / f"{_file_hash(track.path)}.npy"
        if entry.exists():
            try:
                return np.load(entry)
            except (OSError, ValueError):
                pass  # a damaged cache entry is recomputed
        feats = _extract(track, config, logmel).astype(np.float16)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, feats)
        os.replace(tmp, entry)
        return feats

    def guarded(track: Track):
        try:
            return one(track)
        except GenrekitError as exc:
            return exc

    result = FeatureSet([], [])
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for track, out in tqdm(
            zip(tracks, pool.map(guarded, tracks)), total=len(tracks), desc="features", unit="track", disable=not progress
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
