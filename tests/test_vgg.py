"""The musicnn wheel's VGG taggers in PyTorch (:mod:`genrekit.models.vgg`): the converted weights,
the port against the stock TensorFlow graph and the ``vgg_msd`` feature backbone.

``tests/data/vgg_reference.npz`` holds the stock outputs (``scripts/musicnn_reference.py --models
MSD_vgg,MTT_vgg``, run once with tensorflow outside the repository); the inputs are regenerated here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GTZAN, noise_band, script_module, tone

from genrekit.errors import GenrekitError
from genrekit.features import extract, make_feature_config
from genrekit.features.musicnn import level_patches, log_compress, musicnn_mel_stream
from genrekit.features.musicnn_tags import MSD_TAGS, MTT_TAGS
from genrekit.models.vgg import MusicnnVgg, load_vgg

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "vgg_reference.npz"
PRETRAINED = ROOT / "src" / "genrekit" / "pretrained"
SR = 16000
TOL = 1e-4
MODELS = {"MSD_vgg": "vgg_msd", "MTT_vgg": "vgg_mtt"}


ref = script_module("musicnn_reference")


@pytest.fixture(scope="module")
def model() -> MusicnnVgg:
    return load_vgg("vgg_msd")


@pytest.fixture(scope="module")
def models() -> dict[str, MusicnnVgg]:
    return {stock: load_vgg(key) for stock, key in MODELS.items()}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as f:
        return {k: f[k] for k in f.files}


def _patches(y: np.ndarray) -> torch.Tensor:
    """The stock patches of a 16-kHz signal as ``(n, 1, 96, 187)``."""
    return torch.from_numpy(np.ascontiguousarray(ref.stock_patches(ref.stock_frontend(y)).transpose(0, 2, 1)[:, None]))


@pytest.mark.parametrize("stock, tags", [("MSD_vgg", MSD_TAGS), ("MTT_vgg", MTT_TAGS)])
def test_converted_file_loads_plainly_and_gives_finite_outputs(stock, tags, models):
    model = models[stock]
    payload = torch.load(PRETRAINED / f"{MODELS[stock]}.pt", weights_only=True)
    assert payload["format_version"] == 1 and payload["tags"] == list(tags) and payload["license"] == "ISC"
    assert stock in payload["source"] and "Music Technology Group" in payload["source"]
    values = {k: v for k, v in payload["state_dict"].items() if not k.endswith("num_batches_tracked")}
    assert len(values) == 36  # the checkpoint's model tensors: 5 convolutions, 6 batch norms, the dense layer
    assert sum(v.numel() for v in values.values()) == 607_030
    assert not model.training and model.tags == tags
    n = 5 * SR
    y = (noise_band(50, 7000, 5, sr=SR, amp=0.05, seed=3)[:n] + tone(330.0, 5, sr=SR, amp=0.2)[:n]).astype(np.float32)
    with torch.inference_mode():
        out = model(_patches(y))
    assert out.tags.shape == (1, 50) and out.logits.shape == (1, 50) and out.penultimate.shape == (1, 256)
    assert torch.isfinite(out.penultimate).all() and ((out.tags > 0) & (out.tags < 1)).all()
    torch.testing.assert_close(out.tags, torch.sigmoid(out.logits))


def test_other_patch_lengths_are_refused(model):
    with pytest.raises(GenrekitError, match="96 bands x 187 frames"):
        model(torch.zeros(1, 1, 96, 200))


@pytest.mark.parametrize("name", ["melody", "drums", "chirp"])
def test_port_matches_stock_tensorflow_on_synthetic_signals(name, models, reference):
    for stock, model in models.items():
        with torch.no_grad():
            out = model(_patches(ref.synthetic_signals()[name]))
        tags, pen = reference[f"{name}/{stock}/tags"], reference[f"{name}/{stock}/penultimate"]
        assert out.tags.shape == tags.shape and out.penultimate.shape == pen.shape
        assert np.abs(out.tags.numpy() - tags).max() < TOL, f"{name} {stock} tags"
        assert np.abs(out.penultimate.numpy() - pen).max() < TOL, f"{name} {stock} penultimate"


@pytest.mark.slow
@pytest.mark.parametrize("clip", ref.GTZAN_CLIPS)
def test_port_matches_stock_tensorflow_on_gtzan(clip, models, reference):
    if not (GTZAN / "genres_original").is_dir():
        pytest.skip(f"GTZAN data not found at {GTZAN} (set GENREKIT_DATA)")
    patches = _patches(ref.load_gtzan(GTZAN, clip))
    for stock, model in models.items():
        with torch.no_grad():
            out = model(patches)
        assert np.abs(out.tags.numpy() - reference[f"{clip}/{stock}/tags"]).max() < TOL, stock
    with torch.no_grad():
        top = [MSD_TAGS[i] for i in models["MSD_vgg"](patches).tags.mean(0).argsort(descending=True)[:5]]
    genre = clip.split(".")[0]
    assert genre == "classical" or genre in top or (genre == "metal" and "rock" in top), (clip, top)


def test_converter_maps_every_vgg_tensor_once_or_fails():
    conv = script_module("convert_musicnn")
    state = torch.load(PRETRAINED / "vgg_msd.pt", weights_only=True)["state_dict"]
    bn = {v: k for k, v in conv.BN_NAMES.items()}
    tf = {}
    for tf_layer, module in conv.VGG_LAYERS.items():
        for key, value in state.items():
            owner, _, leaf = key.rpartition(".")
            if owner != module or leaf == "num_batches_tracked":
                continue
            v = value.numpy()
            name = bn.get(leaf) if "bn" in module else None
            name = name or ("bias" if leaf == "bias" else "kernel")
            tf[f"{tf_layer}/{name}"] = v.T if v.ndim == 2 else v.transpose(2, 3, 1, 0) if v.ndim == 4 else v
    assert tf["2CNN/kernel"].shape == (3, 3, 128, 128) and tf["dense/kernel"].shape == (256, 50)
    back = conv.tf_to_torch(tf, arch="vgg")
    assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state)
    with pytest.raises(ValueError, match="not filled.*blocks.4.bn.running_var"):
        conv.tf_to_torch({k: v for k, v in tf.items() if k != "batch_normalization_5/moving_variance"}, arch="vgg")
    with pytest.raises(ValueError, match="no known vgg layer"):
        conv.tf_to_torch({**tf, "6CNN/kernel": np.zeros(1, np.float32)}, arch="vgg")


def test_vgg_msd_is_a_feature_backbone(model):
    cfg = make_feature_config("musicnn", backbones="vgg_msd")
    assert cfg.n_bins == 256 + 50
    assert make_feature_config("musicnn", backbones="msd+vgg_msd").n_bins == 250 + 306
    assert cfg.matrix_key() != make_feature_config("musicnn").matrix_key()
    with pytest.raises(GenrekitError, match="vgg_msd:pooled"):
        make_feature_config("musicnn", backbones="vgg_msd", embedding="pooled")
    n = 4 * SR
    y = (noise_band(80, 6000, 4, sr=SR, amp=0.05, seed=5)[:n] + tone(220.0, 4, sr=SR, amp=0.2)[:n]).astype(np.float32)
    frames = extract(cfg, y, sr=SR)
    assert frames.shape == (306, 2)  # one patch and the 1-s tail repeated to one
    stream = musicnn_mel_stream()
    mel = np.concatenate([stream.push(y), stream.finish()], axis=1)[:, :187]
    x = log_compress(level_patches(mel[None], level_db=cfg.level_db, max_boost_db=cfg.max_boost_db))
    with torch.inference_mode():
        out = model(torch.from_numpy(x)[:, None])
    np.testing.assert_allclose(frames[:, 0], torch.cat([out.penultimate, out.tags], dim=1)[0].numpy(), atol=1e-4)


def test_styles_find_the_musicnn_msd_tags_after_a_vgg_backbone():
    from genrekit.tagging.styles import style_rows

    assert style_rows(make_feature_config("musicnn", backbones="vgg_msd+msd")) == slice(306 + 200, 306 + 250)
    assert style_rows(make_feature_config("musicnn", backbones="msd+vgg_msd")) == slice(200, 250)
    assert style_rows(make_feature_config("musicnn", backbones="vgg_msd")) is None  # styles are musicnn MSD's
