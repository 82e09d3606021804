"""Calibration: the temperature fitted on held-out windows, the confident rule, the head that applies it,
the out-of-distribution gate, and what the bundled model says of signals that are not music."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import slow_except

from genrekit.calibration import (
    confident_threshold,
    expected_calibration_error,
    fit_ood,
    fit_temperature,
    ood_gated,
    ood_scores,
    track_probabilities,
)
from genrekit.errors import GenrekitError
from genrekit.models.heads import EmbeddingHead


def _overconfident(rng: np.random.Generator, n: int = 2000, classes: int = 4, windows: int = 2):
    """Tracks drawn from calibrated window logits z (label ~ softmax of the mean of z), reported as 3 z."""
    z = rng.normal(scale=1.5, size=(n, windows, classes))
    p = np.exp(z) / np.exp(z).sum(axis=2, keepdims=True)
    mean = p.mean(axis=1)
    y = np.array([rng.choice(classes, p=m / m.sum()) for m in mean])
    sharp = 3 * z
    return [w - np.log(np.exp(w).sum(axis=1, keepdims=True)) for w in sharp], y


@pytest.mark.slow
def test_temperature_undoes_overconfidence():
    logp, y = _overconfident(np.random.default_rng(0))
    t = fit_temperature(window_log_probs=logp, y=y)
    assert 2.5 < t < 3.5  # three times too sharp: a temperature near 3 undoes it: a temperature above 1 softens it
    before = track_probabilities(window_log_probs=logp, temperature=1.0)
    after = track_probabilities(window_log_probs=logp, temperature=t)
    np.testing.assert_allclose(after.sum(axis=1), 1, atol=1e-6)
    assert (before.argmax(1) == after.argmax(1)).mean() > 0.8  # rescaling barely changes the ranking
    ece = {
        name: expected_calibration_error(confidence=p.max(1), correct=p.argmax(1) == y)
        for name, p in (("before", before), ("after", after))
    }
    assert ece["after"] < ece["before"] / 2


def test_threshold_is_the_lowest_reaching_the_precision():
    confidence = np.array([0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95])
    correct = np.array([0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert confident_threshold(confidence=confidence, correct=correct, precision=0.8) == 0.46  # 4 of the 5 above 0.45
    assert confident_threshold(confidence=confidence, correct=correct, precision=1.0) == 0.66
    assert confident_threshold(confidence=confidence, correct=~correct, precision=1.0) == 0.99  # never reached


def test_head_temperature_divides_the_logits():
    torch.manual_seed(0)
    plain = EmbeddingHead(5, (8, 1)).eval()
    warm = EmbeddingHead(5, (8, 1), temperature=2.5).eval()
    warm.load_state_dict(plain.state_dict())
    x = torch.randn(3, 1, 8, 1)
    torch.testing.assert_close(warm(x), plain(x) / 2.5)
    with pytest.raises(GenrekitError, match="temperature"):
        EmbeddingHead(5, (8, 1), temperature=0)


def test_head_on_the_last_rows_ignores_the_others_but_its_gate_reads_them():
    torch.manual_seed(0)
    head = EmbeddingHead(3, (8, 1), first_input=5, ood_threshold=4.0).eval()
    assert head.net[0].num_features == 3  # batch norm over the three rows it classifies
    x = torch.randn(4, 1, 8, 1)
    moved = x.clone()
    moved[:, :, :5] += 100.0  # far from the gate's genre means (zeros, identity precision) on the ignored rows
    plain = EmbeddingHead(3, (8, 1), first_input=5).eval()
    plain.load_state_dict({k: v for k, v in head.state_dict().items() if not k.startswith("ood_")})
    torch.testing.assert_close(plain(moved), plain(x))
    assert torch.softmax(head(moved), 1).max() <= 0.1 + 0.9 / 3 + 1e-6  # gated: a tenth of its probabilities kept
    with pytest.raises(GenrekitError, match="first_input"):
        EmbeddingHead(3, (8, 1), first_input=8)


def _clusters(rng: np.random.Generator, n: int = 600, dim: int = 8, classes: int = 3):
    """Points around ``classes`` means with one correlated covariance, and their labels."""
    means = rng.normal(scale=4, size=(classes, dim))
    mix = rng.normal(size=(dim, dim))
    y = rng.integers(0, classes, n)
    return means[y] + rng.normal(size=(n, dim)) @ mix, y, means, mix


def test_ood_scores_are_near_one_inside_and_large_far_away():
    rng = np.random.default_rng(0)
    x, y, means, mix = _clusters(rng)
    fitted_means, precision = fit_ood(embeddings=x, y=y, n_classes=3)
    np.testing.assert_allclose(fitted_means, means, atol=1.0)  # 200 noisy points per mean
    fresh = means[rng.integers(0, 3, 300)] + rng.normal(size=(300, 8)) @ mix
    inside = ood_scores(embeddings=fresh, means=fitted_means, precision=precision)
    assert 0.7 < np.median(inside) < 1.3  # per dimension: a chi-square of 8 degrees over 8
    # as far from every mean along the cluster's thinnest direction as the means are apart
    thin = np.linalg.svd(mix)[2][-1]
    far = ood_scores(
        embeddings=fitted_means + 3 * thin * np.linalg.norm(mix, 2), means=fitted_means, precision=precision
    )
    assert (far > np.percentile(inside, 99.9)).all()


def _gated_head(rng: np.random.Generator, threshold: float = 4.0, dim: int = 8):
    x, y, _, _ = _clusters(rng, n=100 * dim, dim=dim)
    means, precision = fit_ood(embeddings=x, y=y, n_classes=3)
    torch.manual_seed(0)
    head = EmbeddingHead(3, (dim, 1), temperature=1.5, ood_threshold=threshold, ood_keep=0.1).eval()
    plain = EmbeddingHead(3, (dim, 1), temperature=1.5).eval()
    plain.load_state_dict({k: v for k, v in head.state_dict().items() if not k.startswith("ood_")})
    head.ood_means.copy_(torch.tensor(means, dtype=torch.float32))
    head.ood_precision.copy_(torch.tensor(precision, dtype=torch.float32))
    return head, plain, x, means, precision


def test_head_gate_makes_an_out_of_distribution_window_unsure_and_leaves_the_others():
    rng = np.random.default_rng(1)
    head, plain, x, means, precision = _gated_head(rng)
    windows = np.concatenate([x[:20], x[:5] * 40]).astype(np.float32)  # 20 inside, 5 far outside
    scores = ood_scores(embeddings=windows, means=means, precision=precision)
    assert (scores[:20] < 4).all() and (scores[20:] > 4).all()
    t = torch.from_numpy(windows)[:, None, :, None]
    p, q = torch.softmax(head(t), 1).detach().numpy(), torch.softmax(plain(t), 1).detach().numpy()
    np.testing.assert_allclose(p[:20], q[:20], atol=1e-6)  # inside: the calibrated head's probabilities
    np.testing.assert_allclose(p[20:], 0.1 * q[20:] + 0.9 / 3, atol=1e-6)  # outside: a tenth kept
    assert (p[20:].max(1) <= 0.1 + 0.9 / 3 + 1e-6).all() and (p.argmax(1) == q.argmax(1)).all()
    # the numpy form the benchmarks use is the head's
    raw = torch.log_softmax(plain(t) * 1.5, 1).detach().numpy()  # the logits before the temperature
    np.testing.assert_allclose(
        np.exp(ood_gated(window_log_probs=raw, scores=scores, threshold=4.0, keep=0.1, temperature=1.5)), p, atol=1e-5
    )


def test_head_gate_survives_a_checkpoint_and_the_onnx_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from genrekit.checkpoint import Checkpoint, load_checkpoint
    from genrekit.features import make_feature_config
    from genrekit.onnx_export import _export, _Head

    features = make_feature_config("musicnn", embedding="tags")
    head, _, x, _, _ = _gated_head(np.random.default_rng(2), dim=features.n_bins)
    params = {"temperature": 1.5, "ood_threshold": 4.0, "ood_keep": 0.1}
    path = Checkpoint("embedding_head", params, ["a", "b", "c"], features, head.state_dict()).save(tmp_path / "g.pt")
    loaded = load_checkpoint(path).build()
    windows = torch.from_numpy(np.concatenate([x[:4], x[:4] * 40]).astype(np.float32))[:, :, None]
    expected = torch.softmax(head(windows[:, None]), 1).detach().numpy()
    np.testing.assert_allclose(torch.softmax(loaded(windows[:, None]), 1).detach().numpy(), expected, atol=1e-6)
    with torch.no_grad():
        _export(
            _Head(loaded, features), windows[:2], tmp_path / "g.onnx", inputs=["windows"], outputs=["probabilities"]
        )
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"windows": windows.numpy()})[0], expected, atol=1e-5)


def test_bundled_model_is_unsure_far_from_gtzan():
    from genrekit.checkpoint import bundled_model_path, load_checkpoint

    ckpt = load_checkpoint(bundled_model_path())
    assert ckpt.model_params.get("ood_threshold", 0) > 0, "the bundled head has no out-of-distribution gate"
    assert ckpt.metadata["calibration"]["ood_threshold"] == ckpt.model_params["ood_threshold"]
    head, means = ckpt.build(), ckpt.state_dict["ood_means"]
    inside = means[:, :, None, None].permute(0, 2, 1, 3)  # each genre's mean patch: (genres, 1, dim, 1)
    outside = (inside * 3).clone()
    p_in, p_out = (torch.softmax(head(w), 1).detach() for w in (inside, outside))
    assert (p_in.argmax(1) == torch.arange(len(means))).float().mean() >= 0.8
    assert (p_out.max(1).values <= 0.1 + 0.9 / len(means) + 1e-6).all()


def _signals(sr: int = 22050, seconds: float = 6.0) -> dict[str, np.ndarray]:
    t = np.arange(int(sr * seconds)) / sr
    return {
        "sine 440 Hz": 0.5 * np.sin(2 * np.pi * 440 * t),
        "sweep": 0.5 * np.sin(2 * np.pi * 50 * seconds / np.log(160) * (160 ** (t / seconds) - 1)),
        "clicks": np.where(np.arange(len(t)) % (sr // 2) < 20, 0.8, 0.0),
    }


@pytest.mark.parametrize("name", slow_except(list(_signals()), "sweep"))
def test_bundled_model_is_never_confident_on_synthetic_signals(name):
    from genrekit.predictor import Predictor

    p = Predictor.load().predict_signal(_signals()[name].astype(np.float32), 22050, name=name)
    assert not p.confident, f"{name}: {p.genre} {max(p.probabilities.values()):.2f} flagged confident"


def test_bundled_model_records_the_confident_threshold_in_use():
    from genrekit.checkpoint import bundled_model_path, load_checkpoint
    from genrekit.presence import PresenceConfig

    calibration = load_checkpoint(bundled_model_path()).metadata.get("calibration")
    assert calibration is not None, "the bundled model carries no calibration record"
    assert calibration["confident_threshold"] == PresenceConfig().confident
    assert calibration["temperature"] > 0


@pytest.mark.parametrize(
    "name,reason", [("sine 440 Hz", "steady tones"), ("sweep", "steady tones"), ("clicks", "isolated sounds")]
)
def test_presence_calls_tones_and_clicks_no_music(name, reason):
    from genrekit.presence import PresenceCheck

    check = PresenceCheck(22050)
    check.push(_signals()[name].astype(np.float32))
    assert reason in (check.verdict() or ""), name


def test_presence_keeps_a_melody_with_its_level_moving():
    from genrekit.presence import PresenceCheck

    sr, t = 22050, np.arange(6 * 22050) / 22050
    y = 0.4 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0))  # a pulsed tone
    y += 0.2 * np.sin(2 * np.pi * np.where(t % 1 < 0.5, 330, 440) * t)  # and a second voice that moves
    check = PresenceCheck(sr)
    check.push(y.astype(np.float32))
    assert check.verdict() is None
