"""The ``musicnn`` feature kind (frozen backbone embeddings, one frame per 3-s patch) and the head
trained on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import noise_band, tone

from genrekit.features import FeatureConfig, extract, make_feature_config
from genrekit.features.musicnn import EMBEDDING_SIZES, PATCH_FRAMES, level_patches, log_compress, musicnn_mel_stream
from genrekit.models import build_model
from genrekit.models.musicnn import load_pretrained

SR = 16000


def _signal(seconds: float, seed: int = 0) -> np.ndarray:
    n = int(seconds * SR)
    y = noise_band(50, 7000, seconds, sr=SR, amp=0.05, seed=seed)[:n] + tone(440.0, seconds, sr=SR, amp=0.2)[:n]
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return _signal(7.5)  # two whole patches and a 1.5-s tail


def test_the_kind_is_registered_and_sized_by_its_embeddings():
    cfg = make_feature_config("musicnn")
    assert cfg.n_bins == EMBEDDING_SIZES["penultimate"] + EMBEDDING_SIZES["tags"]
    assert cfg.segment_frames == 1 and cfg.hop_frames == 1  # a window is one patch
    two = make_feature_config("musicnn", backbones="msd+mtt", embedding="penultimate+pooled+tags")
    assert two.n_bins == 2 * (200 + 1506 + 50)
    assert FeatureConfig.from_dict(two.to_dict()) == two
    assert two.matrix_key() != cfg.matrix_key()  # the cache tells the embeddings apart
    assert make_feature_config("musicnn", segment_seconds=30).segment_frames == 10  # the clip-mean window


@pytest.mark.slow
def test_frames_are_the_backbone_outputs_of_the_log_mel_patches(clip):
    cfg = make_feature_config("musicnn")
    frames = extract(cfg, clip)
    assert frames.shape == (250, 3)  # 2 patches + the 1.5-s tail, repeated to one patch
    stream = musicnn_mel_stream()
    mel = np.concatenate([stream.push(clip), stream.finish()], axis=1)
    patches = [mel[:, :PATCH_FRAMES], mel[:, PATCH_FRAMES : 2 * PATCH_FRAMES]]
    tail = mel[:, 2 * PATCH_FRAMES :]
    patches.append(np.tile(tail, (1, -(-PATCH_FRAMES // tail.shape[1])))[:, :PATCH_FRAMES])
    x = log_compress(level_patches(np.stack(patches), level_db=cfg.level_db, max_boost_db=cfg.max_boost_db))
    with torch.inference_mode():
        out = load_pretrained("msd")(torch.from_numpy(x).unsqueeze(1))
    want = torch.cat([out.penultimate, out.tags], dim=1).T.numpy()
    np.testing.assert_allclose(frames, want, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("block", [1000, 4096, 16000, 47_999])
def test_stream_equals_whole_signal(clip, block):
    cfg = make_feature_config("musicnn")
    whole = extract(cfg, clip)
    streamed = extract(cfg, [clip[i : i + block] for i in range(0, len(clip), block)])
    np.testing.assert_allclose(streamed, whole, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("gain_db", [-12.0, -6.0, 6.0])
def test_the_gain_of_a_recording_does_not_change_the_frames(clip, gain_db):
    cfg = make_feature_config("musicnn")
    np.testing.assert_allclose(extract(cfg, clip * 10 ** (gain_db / 20)), extract(cfg, clip), atol=2e-3, rtol=1e-3)
    as_recorded = make_feature_config("musicnn", level_db=None)  # without levelling, it would
    assert np.abs(extract(as_recorded, clip * 10 ** (gain_db / 20)) - extract(as_recorded, clip)).max() > 0.01


@pytest.mark.parametrize("seconds,frames", [(0.2, 1), (2.9, 1), (3.5, 1), (4.2, 2), (6.0, 2)])
def test_short_clips_and_tails(seconds, frames):
    # a clip shorter than one patch still gives one frame; a tail under min_tail_seconds is dropped
    cfg = make_feature_config("musicnn")
    assert extract(cfg, _signal(seconds, seed=1)).shape == (cfg.n_bins, frames)


def test_the_head_reads_windows_of_any_length():
    for frames in (1, 10):
        head = build_model("embedding_head", n_classes=4, input_shape=(250, frames), hidden=32).eval()
        x = torch.randn(6, 1, 250, frames)
        assert head(x).shape == (6, 4)
        # the mean over frames: the order of the patches does not matter
        torch.testing.assert_close(head(x), head(x.flip(-1)))


def test_the_bundled_default_is_the_musicnn_head_and_gknet_stays_by_name():
    from genrekit.checkpoint import bundled_models, load_checkpoint
    from genrekit.predictor import Predictor

    default = load_checkpoint(None)
    assert default.model_name == "embedding_head" and default.feature_config.kind == "musicnn"
    assert len(default.split["train"]) == 335 and not default.split["test"]
    assert [p.name for p in bundled_models()] == ["musicnn-gtzan.pt", "gknet-gtzan.pt"]
    assert load_checkpoint("gknet-gtzan").model_name == "gknet"
    assert Predictor.load("gknet-gtzan").feature_config.kind == "kaggle-image"


@pytest.mark.slow
def test_the_bundled_model_hears_a_jazz_clip_as_jazz():
    from conftest import GTZAN

    from genrekit.predictor import Predictor

    clip = GTZAN / "genres_original" / "jazz" / "jazz.00000.ogg"
    if not clip.is_file():
        pytest.skip(f"GTZAN audio not found at {GTZAN} (set GENREKIT_DATA)")
    pred = Predictor.load().predict_file(clip)
    assert pred.genre == "jazz" and pred.music_detected  # the old bundled model said "classical"
