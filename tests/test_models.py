"""Model registry, the forward/backward contract of every architecture, and checkpoints."""

from __future__ import annotations

import pickle

import pytest
import torch
from conftest import random_checkpoint

from genrekit.checkpoint import FORMAT_VERSION, Checkpoint, load_checkpoint
from genrekit.errors import GenrekitError
from genrekit.features.logmel import LogMelConfig
from genrekit.models import DEFAULT_MODEL, build_model, model_names, model_spec

NAMES = model_names()
# (128, 129): 3-s log-mel windows; (128, 33): 3-s windows of a Kaggle image
SHAPES = [(128, 129), (128, 33)]


def test_registry_lists_the_default_first_and_every_name_once():
    assert NAMES[0] == DEFAULT_MODEL == "gknet"
    assert len(NAMES) == len(set(NAMES)) >= 2
    for n in NAMES:
        assert model_spec(n).name == n and model_spec(n).source


def test_unknown_model_is_rejected_with_the_list_of_names():
    with pytest.raises(GenrekitError, match="unknown model 'resnet9000'") as info:
        build_model("resnet9000", n_classes=3, input_shape=(128, 129))
    for n in NAMES:
        assert n in str(info.value)


def _cases():
    for name in NAMES:
        for shape in SHAPES:
            marks = ()
            yield pytest.param(name, shape, marks=marks, id=f"{name}-{shape[0]}x{shape[1]}")


@pytest.mark.parametrize("name,shape", _cases())
def test_forward_gives_logits_and_gradients_flow(name, shape):
    torch.manual_seed(0)
    n_classes = 10
    model = build_model(name, n_classes=n_classes, input_shape=shape)
    # zero-mean input: with inputs in [0, 1], s001_cnn's single-filter ReLU layers are dead at
    # initialisation for about one seed in four (a trait of that documented architecture)
    x = torch.randn(3, 1, *shape, requires_grad=True)
    model.train()
    logits = model(x)
    assert logits.shape == (3, n_classes)
    assert torch.isfinite(logits).all()
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 4, 9]))
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    params = [p for p in model.parameters() if p.requires_grad]
    assert params
    for p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert sum(float(p.grad.abs().sum()) for p in params) > 0
    # eval mode: deterministic, batch-independent
    model.eval()
    with torch.no_grad():
        a = model(x[:2])
        b = model(x)[:2]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_a_training_step_changes_the_output(name):
    torch.manual_seed(1)
    model = build_model(name, n_classes=3, input_shape=(32, 43))
    x, y = torch.rand(4, 1, 32, 43), torch.tensor([0, 1, 2, 0])
    model.eval()
    with torch.no_grad():
        before = model(x)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(before, model(x))


def test_hyper_parameters_reach_the_model():
    small = build_model("gknet", n_classes=3, input_shape=(32, 43), width=4)
    large = build_model("gknet", n_classes=3, input_shape=(32, 43), width=16)
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(small) < count(large)
    with pytest.raises(TypeError):
        build_model("gknet", n_classes=3, input_shape=(32, 43), no_such_param=1)


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_reproduces_outputs_exactly(tmp_path, name):
    cfg = LogMelConfig(n_mels=32, segment_seconds=1.0)
    shape = (cfg.n_bins, cfg.segment_frames)
    torch.manual_seed(2)
    model = build_model(name, n_classes=4, input_shape=shape)
    # one training step so that batch-norm statistics and weights are not the initial ones
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    torch.nn.functional.cross_entropy(model(torch.rand(4, 1, *shape)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    model.eval()
    labels = ["w", "x", "y", "z"]
    meta = {"history": [{"epoch": 1, "train_loss": 1.5}], "note": "ünïcode"}
    path = Checkpoint(name, {}, labels, cfg, model.state_dict(), metadata=meta).save(tmp_path / "sub" / "m.pt")
    assert path.is_file() and not list(tmp_path.rglob("*.tmp"))

    ckpt = load_checkpoint(path)
    assert ckpt.model_name == name and ckpt.labels == labels
    assert ckpt.feature_config == cfg and ckpt.metadata == meta
    assert ckpt.input_shape == shape
    rebuilt = ckpt.build()
    assert not rebuilt.training
    x = torch.rand(5, 1, *shape)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


def test_checkpoint_keeps_model_params(tmp_path):
    cfg = LogMelConfig(n_mels=32, segment_seconds=1.0)
    m = build_model("gknet", n_classes=2, input_shape=(32, cfg.segment_frames), width=4, dropout=0.1)
    Checkpoint("gknet", {"width": 4, "dropout": 0.1}, ["a", "b"], cfg, m.state_dict()).save(tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt.model_params == {"width": 4, "dropout": 0.1}
    rebuilt = ckpt.build()
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in m.parameters())


def test_checkpoint_file_is_plain_data(tmp_path):
    path = random_checkpoint(tmp_path / "r.pt")
    d = torch.load(path, weights_only=True)  # no pickled code needed
    assert d["format_version"] == FORMAT_VERSION
    assert set(d) >= {"model_name", "model_params", "labels", "feature_config", "metadata", "state_dict"}


def test_load_checkpoint_missing_file(tmp_path):
    with pytest.raises(GenrekitError, match="not found") as info:
        load_checkpoint(tmp_path / "nope.pt")
    assert str(tmp_path / "nope.pt") in str(info.value)


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    "kind", ["text", "random bytes", "tensor", "dict without version", "future version", "pickled object", "folder"]
)
def test_load_checkpoint_rejects_non_checkpoints(tmp_path, kind):
    p = tmp_path / "model.pt"
    if kind == "text":
        p.write_text("definitely not a model\n")
    elif kind == "random bytes":
        p.write_bytes(bytes(range(256)) * 8)
    elif kind == "tensor":
        torch.save(torch.zeros(3), p)
    elif kind == "dict without version":
        torch.save({"model_name": "gknet", "labels": ["a"]}, p)
    elif kind == "future version":
        random_checkpoint(p)
        d = torch.load(p, weights_only=True)
        torch.save({**d, "format_version": FORMAT_VERSION + 1}, p)
    elif kind == "pickled object":
        p.write_bytes(pickle.dumps(_Evil()))
    elif kind == "folder":
        p.mkdir()
    with pytest.raises(GenrekitError) as info:
        load_checkpoint(p)
    assert str(p) in str(info.value)
    assert "not found" in str(info.value) or "not a genrekit checkpoint" in str(info.value)


@pytest.mark.parametrize("content", [b"definitely not a model\n", bytes(range(256)) * 8])
def test_load_checkpoint_error_is_one_line(tmp_path, content):
    p = tmp_path / "model.pt"
    p.write_bytes(content)
    with pytest.raises(GenrekitError) as info:
        load_checkpoint(p)
    assert "\n" not in str(info.value)


def test_build_rejects_weights_of_another_architecture(tmp_path):
    cfg = LogMelConfig(n_mels=32, segment_seconds=1.0)
    m = build_model("s003_cnn", n_classes=3, input_shape=(32, cfg.segment_frames))
    Checkpoint("gknet", {}, ["a", "b", "c"], cfg, m.state_dict()).save(tmp_path / "m.pt")
    with pytest.raises(RuntimeError):
        load_checkpoint(tmp_path / "m.pt").build()
