"""Calibration: the temperature fitted on held-out windows, the confident rule, the head that applies it,
and what the bundled model says of signals that are not music."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrekit.calibration import confident_threshold, expected_calibration_error, fit_temperature, track_probabilities
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


def _signals(sr: int = 22050, seconds: float = 6.0) -> dict[str, np.ndarray]:
    t = np.arange(int(sr * seconds)) / sr
    return {
        "sine 440 Hz": 0.5 * np.sin(2 * np.pi * 440 * t),
        "sweep": 0.5 * np.sin(2 * np.pi * 50 * seconds / np.log(160) * (160 ** (t / seconds) - 1)),
        "clicks": np.where(np.arange(len(t)) % (sr // 2) < 20, 0.8, 0.0),
    }


@pytest.mark.parametrize("name", list(_signals()))
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
