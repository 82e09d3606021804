"""The one Classifier runs any model backend: torch, onnxruntime, or one a test writes."""

from __future__ import annotations

import numpy as np

from genrekit.features import extract
from genrekit.features.logmel import LogMelConfig
from genrekit.features.windows import cut_windows
from genrekit.inference import Classifier, ModelBackend


class Halves:
    """A backend answering 0.5 for both classes, recording the batches it was given."""

    def __init__(self, features):
        self.features, self.shapes = features, []

    def probabilities(self, batches):
        out = []
        for batch in batches:
            self.shapes.append(batch.shape)
            out.append(np.full((len(batch), 2), 0.5, np.float32))
        return out

    def stream(self):
        return self.features.stream()


def test_a_classifier_runs_any_model_backend_batch_by_batch():
    f = LogMelConfig(segment_seconds=1.0)
    backend = Halves(f)
    assert isinstance(backend, ModelBackend)
    c = Classifier(backend, f, ["a", "b"], batch_size=4)
    y = (0.1 * np.sin(2 * np.pi * 440 * np.arange(5 * f.sample_rate) / f.sample_rate)).astype(np.float32)
    w = c.analyse(blocks=[y[:30000], y[30000:]])
    starts, _ = cut_windows(extract(f, y, sr=f.sample_rate), size=f.segment_frames, hop=f.hop_frames)
    assert c.backend is backend and w.starts.tolist() == starts.tolist()
    assert w.probabilities.shape == (len(starts), 2) and np.all(w.probabilities == 0.5)
    assert all(s[0] <= 4 and s[1:] == (f.n_bins, f.segment_frames) for s in backend.shapes)
    assert sum(s[0] for s in backend.shapes) == len(starts)


def test_a_torch_model_is_run_by_a_torch_backend_left_in_its_training_mode():
    import torch
    from torch import nn

    from genrekit.inference import TorchBackend

    f = LogMelConfig(segment_seconds=1.0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(f.n_bins * f.segment_frames, 3)).train()
    c = Classifier(model, f, ["a", "b", "c"])
    assert isinstance(c.backend, TorchBackend) and c.backend.model is model
    probs = c.probabilities([np.random.default_rng(0).random((f.n_bins, f.segment_frames), np.float32)] * 3)
    assert probs.shape == (3, 3) and np.allclose(probs.sum(1), 1, atol=1e-6) and model.training
    assert torch.is_grad_enabled()  # the inference mode ended with the call
