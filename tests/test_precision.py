"""``--precision int8``: the bundled model's quantised backbone, checked like every file its card
names, giving the genres of the fp32 one; a precision that cannot run says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import labelled_clip, run_cli, write_audio

from genrekit.checkpoint import bundled_model_path
from genrekit.errors import GenrekitError
from genrekit.predictor import Predictor
from genrekit.runtime import OnnxModel, card_path, card_problem

pytest.importorskip("onnxruntime")

INT8 = "musicnn_msd.int8.onnx"


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    """A copy of the bundled model's folder: its checkpoint."""
    src = bundled_model_path().parent
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / bundled_model_path().name


def test_the_bundled_card_names_an_int8_backbone_and_checks_it(bundle_copy):
    card = json.loads(card_path(bundle_copy).read_text())
    assert card["precisions"]["int8"] == {"msd": INT8} and INT8 in card["sha256"]
    assert card_problem(bundle_copy) is None
    int8 = bundle_copy.parent / INT8
    int8.write_bytes(int8.read_bytes()[:-1] + b"\0")
    assert INT8 in card_problem(bundle_copy)
    with pytest.raises(GenrekitError, match=INT8):
        OnnxModel(card_path(bundle_copy), precision="int8")


def test_int8_runs_the_quantised_backbone_close_to_fp32():
    fp32, int8 = Predictor.load(threads=1), Predictor.load(threads=1, precision="int8")
    assert int8.checkpoint.precision == "int8" and fp32.checkpoint.precision == "fp32"
    assert int8.name.endswith("(int8)") and not fp32.name.endswith(")")
    y = labelled_clip("bass", seed=0, seconds=9.0, sr=22050)
    a, b = fp32.predict_signal(y, 22050), int8.predict_signal(y, 22050)
    pa, pb = np.array(list(a.probabilities.values())), np.array(list(b.probabilities.values()))
    assert not np.array_equal(pa, pb)  # another backbone ran
    np.testing.assert_allclose(pa, pb, atol=0.05)


@pytest.mark.slow
def test_int8_gives_the_fp32_top_genre_on_gtzan_clips_with_a_clear_lead(gtzan_root):
    clips = sorted((gtzan_root / "genres_original").glob("*/*.*"))[::67]
    fp32, int8 = Predictor.load(threads=1), Predictor.load(threads=1, precision="int8")
    for clip in clips:
        a, b = fp32.predict_file(clip), int8.predict_file(clip)
        (first, p1), (_, p2) = a.top[:2]
        if p1 - p2 > 0.05:  # a near tie may go either way at any precision change
            assert b.top[0][0] == first, clip


def test_a_precision_that_cannot_run_says_so(bundle_copy):
    with pytest.raises(GenrekitError, match="unknown precision 'int4'; choose one of: fp32, int8"):
        Predictor.load(precision="int4")
    with pytest.raises(GenrekitError, match="onnxruntime on the CPU only"):
        Predictor.load(precision="int8", runtime="torch")
    card = card_path(bundle_copy)
    d = json.loads(card.read_text())
    del d["precisions"]
    card.write_text(json.dumps(d))
    with pytest.raises(GenrekitError, match="has no int8 backbone"):
        OnnxModel(card, precision="int8")


def test_predict_and_tag_take_the_precision(tmp_path, bundle_copy, capsys):
    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(3):
        write_audio(songs / f"s{i}.wav", labelled_clip("treble", seed=i, seconds=7.0, sr=22050), 22050)
    out = tmp_path / "out.json"
    assert run_cli(["predict", songs / "s0.wav", "--precision", "int8", "-o", out]) == 0
    assert json.loads(out.read_text())[0]["model"].endswith("(int8)")
    out2 = tmp_path / "lib.json"
    assert run_cli(["predict", songs, "--precision", "int8", "--processes", "2", "-o", out2]) == 0
    assert [r["model"].endswith("(int8)") for r in json.loads(out2.read_text())] == [True] * 3
    assert run_cli(["predict", songs / "s0.wav", "--precision", "int4"]) == 2
    # tag's worker processes load the int8 backbone: a model whose card names none fails there
    assert run_cli(["tag", songs, "--precision", "int8", "--no-state", "--processes", "2"]) == 0
    card = card_path(bundle_copy)
    card.write_text(json.dumps({k: v for k, v in json.loads(card.read_text()).items() if k != "precisions"}))
    capsys.readouterr()
    argv = ["tag", songs, "--model", bundle_copy, "--no-state", "--processes", "2"]
    assert run_cli([*argv, "--precision", "int8"]) == 2
    assert "has no int8 backbone" in capsys.readouterr().err
    assert run_cli(argv) == 0


def test_tag_keeps_the_predictions_of_each_precision_apart(tmp_path):
    from genrekit.tagging.engine import run_tag

    for i in range(2):
        write_audio(tmp_path / f"s{i}.wav", labelled_clip("bass", seed=i, seconds=7.0, sr=22050), 22050)
    state = tmp_path / "state.jsonl"
    runs = [run_tag([tmp_path], state=state, processes=1, precision=p) for p in ("fp32", "int8", "int8", "fp32")]
    # the state holds each file's last prediction: one of another precision is never reused
    assert [(s.predicted, s.reused) for s in runs] == [(2, 0), (2, 0), (0, 2), (2, 0)]
