"""How the genre head pools a window's embedding frames: the mean, statistics, or learnt attention."""

from __future__ import annotations

import pytest
import torch

from genrekit.errors import GenrekitError
from genrekit.models.heads import EmbeddingHead

SIZE, FRAMES, CLASSES = 12, 5, 4


def _windows(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, SIZE, FRAMES, generator=torch.Generator().manual_seed(seed))


def _pair() -> tuple[EmbeddingHead, EmbeddingHead]:
    torch.manual_seed(0)
    attention = EmbeddingHead(CLASSES, (SIZE, FRAMES), pooling="attention").eval()
    mean = EmbeddingHead(CLASSES, (SIZE, FRAMES)).eval()
    mean.load_state_dict({k: v for k, v in attention.state_dict().items() if not k.startswith("attention.")})
    return attention, mean


def test_attention_pooling_starts_as_the_mean():
    attention, mean = _pair()
    x = _windows()
    torch.testing.assert_close(attention(x), mean(x))


def test_attention_pooling_can_listen_to_one_frame_only():
    attention, mean = _pair()
    x = _windows()
    marker = torch.zeros(SIZE)
    marker[0] = 1.0
    x[:, :, :, 2] += 100 * marker[None, None, :]  # frame 2 carries a mark the attention score reads
    with torch.no_grad():
        attention.attention.weight[0, 0] = 10.0
    only = x[:, :, :, 2:3].expand(-1, -1, -1, FRAMES)  # a window of that frame alone, to the mean head
    torch.testing.assert_close(attention(x), mean(only))
    assert not torch.allclose(attention(x), mean(x))


def test_attention_pooling_learns_which_frames_matter():
    """Frames 0-3 are noise and frame 4 holds the class: attention should beat the plain mean."""
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, CLASSES, (400,), generator=g)
    x = torch.randn(400, 1, SIZE, FRAMES, generator=g)
    x[:, 0, :CLASSES, 4] += 3 * torch.nn.functional.one_hot(y, CLASSES)
    x[:, 0, SIZE - 1, 4] += 4.0  # what marks the informative frame
    losses = {}
    for pooling in ("mean", "attention"):
        torch.manual_seed(0)
        head = EmbeddingHead(CLASSES, (SIZE, FRAMES), pooling=pooling, dropout=0.0)
        opt = torch.optim.Adam(head.parameters(), lr=0.05)
        for _ in range(150):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(head(x), y)
            loss.backward()
            opt.step()
        losses[pooling] = loss.item()
    assert losses["attention"] < 0.5 * losses["mean"]


def test_unknown_pooling_is_refused_with_the_choices():
    with pytest.raises(GenrekitError, match="attention"):
        EmbeddingHead(CLASSES, (SIZE, FRAMES), pooling="max")


def test_attention_pooling_survives_a_checkpoint_and_the_onnx_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from genrekit.checkpoint import Checkpoint, load_checkpoint
    from genrekit.features import make_feature_config
    from genrekit.onnx_export import _export, _Head

    features = make_feature_config("musicnn", embedding="tags", segment_seconds=15)
    torch.manual_seed(0)
    head = EmbeddingHead(3, (features.n_bins, FRAMES), pooling="attention").eval()
    with torch.no_grad():
        head.attention.weight.normal_()  # a learnt attention, not the mean it starts as
    path = Checkpoint("embedding_head", {"pooling": "attention"}, ["a", "b", "c"], features, head.state_dict()).save(
        tmp_path / "a.pt"
    )
    loaded = load_checkpoint(path).build()
    windows = torch.rand(4, features.n_bins, FRAMES, generator=torch.Generator().manual_seed(3))
    expected = torch.softmax(head(windows[:, None]), 1).detach().numpy()
    torch.testing.assert_close(torch.softmax(loaded(windows[:, None]), 1).detach().numpy(), expected)
    with torch.no_grad():
        _export(
            _Head(loaded, features), windows[:2], tmp_path / "a.onnx", inputs=["windows"], outputs=["probabilities"]
        )
    session = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    torch.testing.assert_close(session.run(None, {"windows": windows.numpy()})[0], expected, atol=1e-5, rtol=1e-4)
