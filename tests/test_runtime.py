"""The torch-free ONNX runtime: same front end, same probabilities, same genres as the torch path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from genrekit.checkpoint import Checkpoint, bundled_model_path
from genrekit.errors import GenrekitError
from genrekit.features import make_feature_config
from genrekit.features.musicnn import log_compress, musicnn_mel_stream
from genrekit.models import build_model
from genrekit.onnx_export import export_onnx
from genrekit.predictor import Predictor
from genrekit.runtime import OnnxModel, card_problem, current_card, file_sha256, labels_sha256

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

LABELS = ["a", "b", "c", "d"]
SR = 16000


def _signals() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(7.4 * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t))
    chirp = 0.2 * np.sin(2 * np.pi * (100 + 400 * t) * t)
    beats = 0.5 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 3 * t) > 0.9)
    return [x.astype(np.float32) for x in (tone, chirp + beats, tone[: int(2.2 * SR)] * 0.01)]


def _mel(backend: str, y: np.ndarray) -> np.ndarray:
    stream = musicnn_mel_stream(backend=backend)
    blocks = [stream.push(b) for b in np.array_split(y, 5)]
    return log_compress(np.concatenate([*blocks, stream.finish()], axis=1))


def test_numpy_mel_front_end_equals_torch():
    for y in _signals():
        a, b = _mel("numpy", y), _mel("torch", y)
        assert a.shape == b.shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    features = make_feature_config("musicnn")
    model = build_model("embedding_head", n_classes=len(LABELS), input_shape=(features.n_bins, features.segment_frames))
    bn = model.net[0]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("onnx") / "random.pt"
    Checkpoint("embedding_head", {}, LABELS, features, model.state_dict()).save(path)
    export_onnx(model=path)
    return path


def test_onnx_export_gives_the_torch_probabilities(random_model):
    onnx, torch_ = Predictor.load(random_model), Predictor.load(random_model, runtime="torch")
    assert (onnx.runtime, torch_.runtime) == ("onnx", "torch")
    assert onnx.labels == LABELS and onnx.feature_config == torch_.feature_config
    for y in _signals():
        a, b = onnx.predict(y, sr=SR), torch_.predict(y, sr=SR)
        assert a.genre == b.genre and len(a.timeline) == len(b.timeline) > 0
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-3)
        for s, t in zip(a.timeline, b.timeline):
            assert (s.start_s, s.end_s) == (t.start_s, t.end_s)
            np.testing.assert_allclose(list(s.probabilities.values()), list(t.probabilities.values()), atol=1e-3)


def test_a_stale_export_is_not_used(random_model, tmp_path):
    copy = tmp_path / random_model.name
    copy.write_bytes(random_model.read_bytes() + b"\0")  # another checkpoint than the export's
    for name in ("random.onnx", "random.onnx.json", "musicnn_msd.onnx"):
        (tmp_path / name).write_bytes((random_model.parent / name).read_bytes())
    assert current_card(copy) is None
    with pytest.raises(Exception, match="no current ONNX export"):
        Predictor.load(copy, runtime="onnx")


def _copy_export(random_model, tmp_path):
    for name in ("random.pt", "random.onnx", "random.onnx.json", "musicnn_msd.onnx"):
        (tmp_path / name).write_bytes((random_model.parent / name).read_bytes())
    return tmp_path / "random.pt"


def _swap_head(folder):
    """The head replaced by another valid graph (the backbone's): a swap, not corruption."""
    (folder / "random.onnx").write_bytes((folder / "musicnn_msd.onnx").read_bytes())


def _edit_labels(folder):
    card = folder / "random.onnx.json"
    d = json.loads(card.read_text())
    d["labels"] = list(reversed(d["labels"]))
    card.write_text(json.dumps(d))


@pytest.mark.parametrize("tamper,what", [(_swap_head, "random.onnx"), (_edit_labels, "labels")])
def test_an_export_that_does_not_match_its_card_is_never_run(random_model, tmp_path, tamper, what):
    """A swapped head or edited labels: refused for ONNX, torch used (with a warning) otherwise."""
    model = _copy_export(random_model, tmp_path)
    assert current_card(model) is not None
    tamper(tmp_path)
    assert current_card(model) is None
    assert what in card_problem(model) and "SHA-256" in card_problem(model)
    with pytest.raises(GenrekitError, match=what):
        Predictor.load(model, runtime="onnx")
    with pytest.raises(GenrekitError, match="SHA-256"):
        OnnxModel(tmp_path / "random.onnx.json")
    with pytest.warns(UserWarning, match="not using the ONNX export"):
        assert Predictor.load(model).runtime == "torch"


def test_the_card_holds_the_sha256_of_every_file_it_names(random_model):
    d = json.loads((random_model.parent / "random.onnx.json").read_text())
    assert set(d["sha256"]) == {"random.onnx", "musicnn_msd.onnx"}
    for name, digest in d["sha256"].items():
        assert digest == file_sha256(random_model.parent / name)
    assert d["checkpoint_sha256"] == file_sha256(random_model)
    assert d["labels_sha256"] == labels_sha256(LABELS)


def test_bundled_model_has_a_current_export():
    assert current_card(bundled_model_path()) is not None
    assert Predictor.load().runtime == "onnx"


BLOCK_TRAIN_MODULES = """
import importlib.abc, sys
from genrekit.cli import TRAIN_MODULES
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in TRAIN_MODULES:
            raise ModuleNotFoundError(f'blocked {name}', name=name.split('.')[0])
sys.meta_path.insert(0, Block())
"""


def _run_without_train_modules(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TRAIN_MODULES + code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_predict_and_serve_need_no_torch_nor_training_extras(tmp_path):
    wav = tmp_path / "clip.wav"
    sf.write(wav, _signals()[1], SR)
    code = (
        "import json; from genrekit.cli import main\n"
        f"wav, out = {str(wav)!r}, {str(tmp_path / 'o.json')!r}\n"
        "try:\n    main(['predict', wav, '--format', 'json', '-o', out])\nexcept SystemExit:\n    pass\n"
        "import genrekit\ng = genrekit.predict(wav).genre\n"
        "from fastapi.testclient import TestClient\nfrom genrekit.serve.app import create_app\n"
        "from genrekit.serve.config import ServeConfig\n"
        "with TestClient(create_app(ServeConfig(workers=1)), base_url='http://localhost') as client:\n"
        "    r = client.post('/api/predict', files={'file': ('clip.wav', open(wav, 'rb'), 'audio/wav')})\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'genre': g, 'served': r.json()['top'][0]['genre']}))\n"
    )
    out = _run_without_train_modules(code)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False and result["genre"] and result["served"] == result["genre"]
    assert json.loads((tmp_path / "o.json").read_text())[0]["genre"] == result["genre"]


def test_training_commands_without_the_extras_say_what_to_install():
    out = _run_without_train_modules("from genrekit.cli import main\nmain(['models'])\n")
    assert out.returncode == 2 and "pip install 'genrekit[train]'" in out.stderr, out.stderr


@pytest.mark.slow
def test_bundled_onnx_agrees_with_torch_on_gtzan():
    root = Path(os.environ.get("GENREKIT_DATA", "../shared/data/gtzan")) / "genres_original"
    clips = sorted(root.glob("*/*.*"))[::33]
    if not clips:
        pytest.skip("GTZAN audio not found (set GENREKIT_DATA)")
    onnx, torch_ = Predictor.load(runtime="onnx"), Predictor.load(runtime="torch")
    for clip in clips:
        a, b = onnx.predict_file(clip), torch_.predict_file(clip)
        assert a.top[0][0] == b.top[0][0], clip
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-3)


def test_a_new_export_keeps_the_other_precisions_of_an_unchanged_backbone(random_model, tmp_path):
    model = _copy_export(random_model, tmp_path)
    int8 = tmp_path / "musicnn_msd.int8.onnx"
    int8.write_bytes(b"an int8 copy")  # named by the card, hash-checked: its content does not matter here
    card = tmp_path / "random.onnx.json"
    d = json.loads(card.read_text())
    d["precisions"] = {"int8": {"msd": int8.name}}
    d["sha256"][int8.name] = file_sha256(int8)
    card.write_text(json.dumps(d))
    export_onnx(model=model)  # e.g. a retrained head: the backbone is the same
    again = json.loads(card.read_text())
    assert again["precisions"] == {"int8": {"msd": int8.name}} and again["sha256"][int8.name] == file_sha256(int8)
    assert current_card(model) is not None
    d = json.loads(card.read_text())
    d["sha256"]["musicnn_msd.onnx"] = "0" * 64  # made from another backbone: not kept
    card.write_text(json.dumps(d))
    export_onnx(model=model)
    assert "precisions" not in json.loads(card.read_text())
