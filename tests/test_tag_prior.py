"""The MSD-tag prior of the genre head: the genres its tags name, what it moves, and its torch, numpy and ONNX forms."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genrekit.errors import GenrekitError
from genrekit.features import make_feature_config
from genrekit.features.musicnn_tags import MSD_TAGS
from genrekit.models.heads import EmbeddingHead

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
tp = pytest.importorskip("_tag_prior")

LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
SIZE = make_feature_config("musicnn").n_bins  # penultimate + tags
ROCK = 200 + MSD_TAGS.index("rock")


def _windows(n: int = 6, seed: int = 0) -> torch.Tensor:
    """Windows of one frame: penultimate values, then tag probabilities well inside (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, SIZE, generator=g)
    x[:, 200:] = torch.rand(n, 50, generator=g) * 0.3 + 0.01
    return x[:, None, :, None]


def _heads(weight: float = 1.0) -> tuple[EmbeddingHead, EmbeddingHead]:
    torch.manual_seed(0)
    rows = tp.prior_rows(labels=LABELS)
    with_prior = EmbeddingHead(len(LABELS), (SIZE, 1), temperature=1.3, prior_rows=rows, prior_weight=weight).eval()
    plain = EmbeddingHead(len(LABELS), (SIZE, 1), temperature=1.3).eval()
    plain.load_state_dict(with_prior.state_dict())
    return with_prior, plain


def test_the_mapping_names_seven_genres_by_tag_names_only():
    rows = tp.prior_rows(labels=LABELS)
    unnamed = {g for g, r in zip(LABELS, rows) if not r}
    assert unnamed == {"classical", "disco", "reggae"}
    assert all(MSD_TAGS[r - 200] in tp.GENRE_TAGS[g] for g, rs in zip(LABELS, rows) for r in rs)


def test_head_prior_is_the_benchmarks_form_and_keeps_the_unnamed_genres():
    head, plain = _heads()
    x = _windows()
    p = torch.softmax(head(x), 1).detach().numpy()
    raw = torch.log_softmax(plain(x) * 1.3, 1).detach().numpy().astype(np.float64)  # before the temperature
    scores = tp.raw_scores(window_means=[x[:, 0, :, 0].numpy()], labels=LABELS)[0]
    lp = tp.with_prior(window_log_probs=raw, scores=scores, weight=1.0, among=tp.named(labels=LABELS))
    z = lp / 1.3
    expected = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(p, expected / expected.sum(1, keepdims=True), atol=1e-5)
    # at temperature 1 the unnamed genres keep the head's probabilities exactly
    one, one_plain = _heads()
    one.temperature = one_plain.temperature = 1.0
    q, q_plain = (torch.softmax(m(x), 1).detach().numpy() for m in (one, one_plain))
    unnamed = ~tp.named(labels=LABELS)
    np.testing.assert_allclose(q[:, unnamed], q_plain[:, unnamed], atol=1e-6)
    assert not np.allclose(q, q_plain, atol=1e-3)


def test_a_rock_tagged_window_moves_toward_rock():
    head, plain = _heads()
    x = _windows()
    rocky = x.clone()
    rocky[:, 0, ROCK] = 0.95
    rock = LABELS.index("rock")
    before, after = (torch.softmax(head(w), 1)[:, rock] for w in (x, rocky))
    assert (after > before + 0.05).all()
    weak, _ = _heads(weight=0.0)  # no weight: no move
    torch.testing.assert_close(torch.softmax(weak(x), 1), torch.softmax(plain(x), 1), atol=1e-6, rtol=0)


def test_bad_prior_rows_are_refused():
    with pytest.raises(GenrekitError, match="prior_rows"):
        EmbeddingHead(3, (8, 1), prior_rows=[[1], [], [9]])
    with pytest.raises(GenrekitError, match="prior_rows"):
        EmbeddingHead(3, (8, 1), prior_rows=[[1], []])


def test_prior_survives_a_checkpoint_and_the_onnx_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from genrekit.checkpoint import Checkpoint, load_checkpoint
    from genrekit.onnx_export import _export, _Head

    head, _ = _heads()
    features = make_feature_config("musicnn")
    params = {"temperature": 1.3, "prior_rows": tp.prior_rows(labels=LABELS), "prior_weight": 1.0}
    path = Checkpoint("embedding_head", params, LABELS, features, head.state_dict()).save(tmp_path / "p.pt")
    loaded = load_checkpoint(path).build()
    windows = _windows(n=4, seed=1)[:, 0]
    expected = torch.softmax(head(windows[:, None]), 1).detach().numpy()
    np.testing.assert_allclose(torch.softmax(loaded(windows[:, None]), 1).detach().numpy(), expected, atol=1e-6)
    with torch.no_grad():
        _export(
            _Head(loaded, features), windows[:2], tmp_path / "p.onnx", inputs=["windows"], outputs=["probabilities"]
        )
    session = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"windows": windows.numpy()})[0], expected, atol=1e-5)
