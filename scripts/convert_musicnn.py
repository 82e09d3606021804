"""Convert the pretrained musicnn TensorFlow checkpoints into PyTorch state dicts for genrekit.

    python scripts/convert_musicnn.py [--wheel PATH] [--out src/genrekit/pretrained]

Without ``--wheel`` it runs ``pip download --no-deps musicnn==0.1.0`` into a temporary folder (the
package pins numpy<1.17 and tensorflow, so it is never installed). The checkpoints of MSD_musicnn,
MTT_musicnn, MSD_vgg and MTT_vgg (``--models``: a few of them) are read straight from the wheel (a zip) by
``scripts/tf_checkpoint.py``, without tensorflow; every TensorFlow model tensor must land in exactly
one torch parameter or buffer of ``genrekit.models.musicnn.Musicnn`` (or
``genrekit.models.vgg.MusicnnVgg``) and every one of those must be filled, or the script fails.

Writes ``musicnn_msd.pt``, ``musicnn_mtt.pt``, ``vgg_msd.pt`` and ``vgg_mtt.pt``: plain dicts loadable with
``torch.load(path, weights_only=True)``::

    {"state_dict": {name: float32 tensor}, "tags": [50 names], "source": "...",
     "license": "ISC", "wheel_sha256": "...", "format_version": 1}

musicnn is (c) 2019 Music Technology Group, Universitat Pompeu Fabra, under the ISC licence
(``LICENSES/musicnn-ISC.txt``).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tf_checkpoint import CheckpointError, read_bundle

from genrekit.models import vgg
from genrekit.models.musicnn import FORMAT_VERSION, MUSICNN_TAGS, PRETRAINED_FILES, Musicnn

WHEEL = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"  # PyPI's file, 29 MB
# genrekit name -> (the wheel's folder, architecture, tag set)
MODELS = {
    "msd": ("MSD_musicnn", "musicnn", "msd"),
    "mtt": ("MTT_musicnn", "musicnn", "mtt"),
    "vgg_msd": ("MSD_vgg", "vgg", "msd"),
    "vgg_mtt": ("MTT_vgg", "vgg", "mtt"),
}
DEFAULT_MODELS = tuple(MODELS)
FILES = {**PRETRAINED_FILES, **vgg.PRETRAINED_FILES}

# TensorFlow layer -> torch module, in the order the stock graph creates them
LAYERS = {
    "batch_normalization": "input_bn",
    "conv2d": "timbral.0.conv",
    "batch_normalization_1": "timbral.0.bn",
    "conv2d_1": "timbral.1.conv",
    "batch_normalization_2": "timbral.1.bn",
    "conv2d_2": "temporal.0.conv",
    "batch_normalization_3": "temporal.0.bn",
    "conv2d_3": "temporal.1.conv",
    "batch_normalization_4": "temporal.1.bn",
    "conv2d_4": "temporal.2.conv",
    "batch_normalization_5": "temporal.2.bn",
    "conv2d_5": "midend.0.conv",
    "batch_normalization_6": "midend.0.bn",
    "conv2d_6": "midend.1.conv",
    "batch_normalization_7": "midend.1.bn",
    "conv2d_7": "midend.2.conv",
    "batch_normalization_8": "midend.2.bn",
    "batch_normalization_9": "pool_bn",
    "dense": "dense",
    "batch_normalization_10": "dense_bn",
    "dense_1": "out",
}
# the stock vgg: conv2d layers named 1CNN..5CNN, batch norms in creation order
VGG_LAYERS = {
    "batch_normalization": "input_bn",
    **{f"{i + 1}CNN": f"blocks.{i}.conv" for i in range(5)},
    **{f"batch_normalization_{i + 1}": f"blocks.{i}.bn" for i in range(5)},
    "dense": "out",
}
ARCHS = {"musicnn": (LAYERS, Musicnn), "vgg": (VGG_LAYERS, vgg.MusicnnVgg)}
BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _convert_tensor(module: str, leaf: str, value: np.ndarray, arch: str) -> tuple[str, np.ndarray]:
    """The torch name and layout of one TensorFlow tensor of an ``arch`` model."""
    if leaf in BN_NAMES:
        return f"{module}.{BN_NAMES[leaf]}", value
    if leaf == "bias":
        return f"{module}.bias", value
    if leaf != "kernel":
        raise ValueError(f"unexpected tensor '{leaf}' in layer for {module}")
    if value.ndim == 2:  # dense (in, out) -> Linear (out, in)
        return f"{module}.weight", value.T
    if arch == "vgg":  # (time, freq, in, out) -> Conv2d over (time, freq) inputs: (out, in, time, freq)
        return f"{module}.weight", value.transpose(3, 2, 0, 1)
    if module.startswith("midend"):  # (time, channels, 1, out) -> Conv1d (out, channels, time)
        return f"{module}.weight", value[:, :, 0, :].transpose(2, 1, 0)
    # (time, freq, in, out) -> Conv2d over (freq, time) inputs: (out, in, freq, time)
    return f"{module}.weight", value.transpose(3, 2, 1, 0)


def tf_to_torch(tensors: dict[str, np.ndarray], *, n_tags: int = 50, arch: str = "musicnn") -> dict[str, torch.Tensor]:
    """Map the TensorFlow model tensors of a musicnn checkpoint onto a ``Musicnn`` or ``MusicnnVgg`` state dict.

    Parameters
    ----------
    tensors : dict of str to numpy.ndarray
        Model tensors by TensorFlow variable name (optimizer slots already left out).
    n_tags : int
        Tags of the output layer.
    arch : str
        ``"musicnn"`` (:class:`Musicnn`) or ``"vgg"`` (:class:`genrekit.models.vgg.MusicnnVgg`).

    Returns
    -------
    dict of str to torch.Tensor
        A complete state dict: float32 parameters and running statistics, and
        ``num_batches_tracked`` set to 0 (TensorFlow does not count batches).

    Raises
    ------
    ValueError
        When a TensorFlow tensor is unused or unknown, a torch entry is left unfilled, or a shape
        differs.
    """
    layers, model = ARCHS[arch]
    reference = model(n_tags=n_tags).state_dict()
    out: dict[str, torch.Tensor] = {}
    for name, value in tensors.items():
        layer, _, leaf = name.rpartition("/")
        if layer not in layers:
            raise ValueError(f"TensorFlow tensor '{name}' belongs to no known {arch} layer")
        key, array = _convert_tensor(layers[layer], leaf, value, arch)
        if key not in reference:
            raise ValueError(f"TensorFlow tensor '{name}' maps to '{key}', which {model.__name__} does not have")
        if key in out:
            raise ValueError(f"two TensorFlow tensors map to '{key}'")
        if tuple(array.shape) != tuple(reference[key].shape):
            raise ValueError(f"'{name}' {value.shape} -> '{key}' {array.shape}, expected {tuple(reference[key].shape)}")
        out[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    for key, value in reference.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros_like(value)
    missing = sorted(set(reference) - set(out))
    if missing:
        raise ValueError(f"{model.__name__} entries not filled from the checkpoint: {missing}")
    return {key: out[key] for key in reference}


def read_model(wheel: zipfile.ZipFile, folder: str) -> dict[str, np.ndarray]:
    """Model tensors of ``musicnn/<folder>/`` (its checkpoint prefix) inside the wheel."""
    prefix = f"musicnn/{folder}/"
    try:
        index = wheel.read(prefix + ".index")
    except KeyError:
        raise CheckpointError(f"the wheel has no checkpoint {prefix}.index") from None
    return read_bundle(index=index, read_shard=lambda i, n: wheel.read(f"{prefix}.data-{i:05d}-of-{n:05d}"))


def download_wheel(*, dest: Path) -> Path:
    """``pip download --no-deps musicnn==0.1.0`` into ``dest``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "musicnn==0.1.0"]
        + ["-d", str(dest)],
        check=True,
    )
    return dest / WHEEL


def convert(*, wheel_path: Path, out_dir: Path, models: tuple[str, ...] = DEFAULT_MODELS) -> list[Path]:
    """Convert the ``models`` (keys of :data:`MODELS`) of the wheel into ``out_dir``; returns the written files."""
    digest = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel_path}: sha256 {digest}, expected {WHEEL_SHA256} (musicnn 0.1.0 from PyPI)")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(wheel_path) as wheel:
        for key in models:
            folder, arch, tag_set = MODELS[key]
            tags = list(MUSICNN_TAGS[tag_set])
            state = tf_to_torch(read_model(wheel, folder), n_tags=len(tags), arch=arch)
            model = ARCHS[arch][1](n_tags=len(tags))
            model.load_state_dict(state, strict=True)
            with torch.no_grad():
                check = model.eval()(torch.zeros(2, 1, 96, 187)).tags
            if not torch.isfinite(check).all():
                raise SystemExit(f"{folder}: the converted model gives non-finite tags")
            n_values = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
            payload = {
                "state_dict": state,
                "tags": tags,
                "source": f"musicnn 0.1.0 (ISC licence, (c) 2019 Music Technology Group, Universitat Pompeu Fabra) "
                f"{folder}, converted by genrekit scripts/convert_musicnn.py",
                "license": "ISC",
                "wheel_sha256": digest,
                "format_version": FORMAT_VERSION,
            }
            path = out_dir / FILES[key]
            torch.save(payload, path)
            print(f"{folder}: {n_values:,} values (parameters + batch-norm statistics) -> {path}")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"a local {WHEEL} (default: pip download it)")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "genrekit" / "pretrained")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"comma-separated, of: {', '.join(MODELS)}")
    args = parser.parse_args(argv)
    models = tuple(args.models.split(","))
    if unknown := [m for m in models if m not in MODELS]:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    if args.wheel is not None:
        convert(wheel_path=args.wheel, out_dir=args.out, models=models)
        return
    with tempfile.TemporaryDirectory() as tmp:
        convert(wheel_path=download_wheel(dest=Path(tmp)), out_dir=args.out, models=models)


if __name__ == "__main__":
    main()
