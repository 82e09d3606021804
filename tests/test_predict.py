"""Prediction: the API, streaming equals whole-signal, CLI output formats, library mode, robustness."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import LABELS, SR, csv_rows, labelled_clip, noise_band, random_checkpoint, slow_except, tone, write_audio

from genrekit.audio import AudioError, GenrekitError, load_audio, stream_audio
from genrekit.cli import main
from genrekit.default_predictor import predict
from genrekit.features import FeatureConfig, extract
from genrekit.features.kaggle_image import KaggleImageConfig
from genrekit.features.logmel import LogMelConfig
from genrekit.features.windows import cut_windows, stream_windows, window_starts
from genrekit.library import CSV_FIELDS, collect_inputs, run_library
from genrekit.predictor import Prediction, Predictor, Segment


def run_cli(argv) -> int:
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _music(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Something with structure over time: a melody over band noise, with rests."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sr)
    y = noise_band(100, 6000, seconds, sr=sr, amp=0.05, seed=seed)[:n]
    note = int(0.5 * sr)
    for start in range(0, n, note):
        f = rng.choice([220.0, 277.2, 329.6, 440.0, 554.4])
        seg = tone(f, note / sr, sr=sr, amp=rng.uniform(0.05, 0.4))[: n - start]
        y[start : start + len(seg)] += seg
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    return write_audio(tmp_path_factory.mktemp("song") / "song.wav", _music(10.0))


# ----------------------------------------------------------------------------- the API


def _check_prediction(pred: Prediction, labels: list[str], duration: float):
    assert isinstance(pred, Prediction)
    assert pred.duration_s == pytest.approx(duration, abs=1e-3)
    # top: every genre, sorted by probability
    assert len(pred.top) == len(labels)
    probs = [p for _, p in pred.top]
    assert probs == sorted(probs, reverse=True)
    assert pred.genre == (pred.top[0][0] if pred.music_detected else None)
    # probabilities over all labels, unrounded: they sum to 1
    assert list(pred.probabilities) == labels
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(type(p) is float for p in pred.probabilities.values())
    assert all(0 <= p <= 1 for p in pred.probabilities.values())
    for g, p in pred.top:
        assert pred.probabilities[g] == p
    # the timeline covers the whole duration
    tl = pred.timeline
    assert tl and all(isinstance(s, Segment) for s in tl)
    assert tl[0].start_s == 0.0
    assert tl[-1].end_s == pytest.approx(duration, abs=1e-3)
    for a, b in itertools.pairwise(tl):
        assert a.start_s < b.start_s <= a.end_s  # increasing, no gap
    for s in tl:
        assert s.start_s < s.end_s <= duration + 1e-3
        assert s.label in labels and s.label == max(s.probabilities, key=s.probabilities.get)
        assert sum(s.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert type(s.start_s) is float and type(s.end_s) is float
    # JSON-serialisable
    d = json.loads(json.dumps(pred.to_dict(), allow_nan=False))
    if pred.music_detected:
        assert d["top"][0] == {"genre": pred.top[0][0], "probability": pred.top[0][1]}
        assert d["genre"] == pred.genre and d["probability"] == pred.top[0][1]
        assert [w["genre"] for w in d["windows"]] == [s.label for s in tl]


def test_predict_file(random_model, song):
    predictor = Predictor.load(random_model)
    pred = predictor.predict_file(song)
    _check_prediction(pred, ["a", "b", "c"], 10.0)
    assert pred.path == str(song)
    assert pred.model == "random.pt"
    # 3-s windows, 50 % overlap over 431 frames: starts 0, 64, ..., 256 and the end-aligned 302
    assert len(pred.timeline) == 6
    assert pred.timeline[1].start_s == pytest.approx(64 * 512 / SR, abs=1e-3)


@pytest.mark.parametrize(
    "what,signal,reason",
    slow_except(
        [
            ("30 s of silence", np.zeros(30 * SR, np.float32), "silence"),
            ("near-silence", (1e-5 * np.random.default_rng(0).standard_normal(30 * SR)).astype(np.float32), "silence"),
            ("one sample", np.full(1, 0.5, np.float32), "too short"),
            ("white noise", (0.2 * np.random.default_rng(1).standard_normal(30 * SR)).astype(np.float32), "noise"),
        ],
        "one sample",
    ),
)
def test_no_music_gets_no_genre(random_model, tmp_path, capsys, what, signal, reason):
    predictor = Predictor.load(random_model)
    path = write_audio(tmp_path / "x.wav", signal, subtype="FLOAT")
    for pred in (predictor.predict_signal(signal, SR), predictor.predict_file(path)):
        assert pred.no_music is not None and reason in pred.no_music, what
        assert pred.genre is None and not pred.music_detected and not pred.confident
        d = pred.to_dict()
        assert d["genre"] is None and d["probability"] is None and reason in d["no_music"]
        assert d["label"] == "no music detected" and d["top"] == [] and d["probabilities"] is None
        assert d["timeline"] == [] and d["windows"] == [] and d["genres"] == []
    assert run_cli(["predict", tmp_path / "x.wav", "--model", random_model, "--no-progress", "--processes", "1"]) == 0
    assert f"no music detected: {reason}" in capsys.readouterr().out
    # every output says the same, with no genre and no top list
    for fmt in ("csv", "json", "jsonl"):
        out = tmp_path / f"x.{fmt}"
        assert run_cli(["predict", tmp_path / "x.wav", "--model", random_model, "-o", out, "--processes", "1"]) == 0
        text = out.read_text()
        if fmt == "csv":
            row = next(csv.DictReader(io.StringIO(text)))
            assert row["genre"] == row["top"] == row["probability"] == "" and row["label"] == "no music detected"
        else:
            row = json.loads(text)[0] if fmt == "json" else json.loads(text.splitlines()[0])
            assert row["genre"] is None and row["top"] == [] and row["label"] == "no music detected"


def test_values_that_are_not_audio_are_refused_with_no_genre(random_model, tmp_path, capsys):
    signal = np.full(5 * SR, 1e30, np.float32)
    predictor = Predictor.load(random_model)
    path = write_audio(tmp_path / "x.wav", signal, subtype="FLOAT")
    for call in (lambda: predictor.predict_signal(signal, SR), lambda: predictor.predict_file(path)):
        with pytest.raises(GenrekitError, match="not audio"):
            call()
    assert run_cli(["predict", path, "--model", random_model, "--no-progress", "--processes", "1"]) == 1
    out = capsys.readouterr().out
    assert "not audio" in out and "%" not in out


@pytest.mark.slow
def test_music_is_detected_as_music(trained_model, tmp_path):
    pred = Predictor.load(trained_model).predict_file(write_audio(tmp_path / "m.wav", _music(6.0)))
    assert pred.music_detected and pred.no_music is None and pred.genre == pred.top[0][0]


def test_segment_prints_plain_floats(random_model, song):
    seg = Predictor.load(random_model).predict_file(song).timeline[1]
    assert "np.float" not in repr(seg) and "np.float" not in repr(seg.probabilities)


def test_predict_takes_a_path_or_a_signal(random_model, song):
    predictor = Predictor.load(random_model)
    y = load_audio(song)
    a, b = predictor.predict(song), predictor.predict(y, sr=SR)
    assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)
    with pytest.raises(GenrekitError, match="sample rate"):
        predictor.predict(y)


def test_a_stereo_signal_is_downmixed_not_flattened(random_model):
    predictor = Predictor.load(random_model)
    y = _music(5.0)
    stereo = np.stack([y, y], axis=1)  # (n, 2), soundfile's layout
    mono = predictor.predict_signal(y, SR)
    for layout in (stereo, stereo.T):  # and librosa's (2, n)
        pred = predictor.predict_signal(layout, SR)
        assert pred.duration_s == pytest.approx(5.0, abs=1e-3)  # not 10 s of interleaved samples
        assert pred.probabilities == pytest.approx(mono.probabilities, abs=1e-6)
    with pytest.raises(GenrekitError, match="mono"):
        predictor.predict_signal(np.zeros((3, 4, 5), np.float32), SR)


@pytest.mark.parametrize("seconds", [0.3, 2.0, 3.0, 4.7])
def test_short_files_get_a_covering_timeline(random_model, tmp_path, seconds):
    path = write_audio(tmp_path / "short.wav", _music(seconds))
    pred = Predictor.load(random_model).predict_file(path)
    _check_prediction(pred, ["a", "b", "c"], seconds)
    if seconds < 3.0:
        assert len(pred.timeline) == 1


def test_max_seconds(random_model, song):
    pred = Predictor.load(random_model).predict_file(song, max_seconds=4.0)
    _check_prediction(pred, ["a", "b", "c"], 4.0)


def test_predict_function_with_a_model(random_model, song):
    a = predict(song, model=random_model)
    b = Predictor.load(random_model).predict_file(song)
    assert a.top == b.top and a.probabilities == b.probabilities
    assert [s.probabilities for s in a.timeline] == [s.probabilities for s in b.timeline]


def test_predict_loads_a_model_once_and_again_when_its_file_changes(tmp_path, song, monkeypatch):
    model = random_checkpoint(tmp_path / "model.pt")
    loads = []
    real_load = Predictor.load.__func__

    def counted_load(cls, m=None, **options):
        loads.append(m)
        return real_load(cls, m, **options)

    monkeypatch.setattr(Predictor, "load", classmethod(counted_load))
    first, again = predict(song, model=model), predict(song, model=model)
    assert len(loads) == 1 and first.probabilities == again.probabilities
    random_checkpoint(model, seed=1)  # rewritten: another model at the same path
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**9))
    rewritten = predict(song, model=model)
    assert len(loads) == 2 and rewritten.probabilities != first.probabilities


def test_documented_top_level_predict(random_model, song):
    import genrekit

    pred = genrekit.predict(song, model=random_model)
    assert isinstance(pred, Prediction)


def test_predict_signal_resamples(random_model):
    predictor = Predictor.load(random_model)
    y44 = _music(5.0, sr=44100)
    pred = predictor.predict_signal(y44, 44100, name="mem")
    _check_prediction(pred, ["a", "b", "c"], 5.0)
    assert pred.path == "mem"


def test_predict_signal_rejects_empty(random_model):
    with pytest.raises(GenrekitError, match="empty"):
        Predictor.load(random_model).predict_signal(np.zeros(0, np.float32), SR)


def test_unreadable_file_raises_audio_error(random_model, tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 500)
    with pytest.raises(AudioError, match="bad.mp3"):
        Predictor.load(random_model).predict_file(bad)


def test_info(random_model):
    info = Predictor.load(random_model).info
    assert info["name"] == "random.pt" and info["architecture"] == "gknet"
    assert info["labels"] == ["a", "b", "c"]
    assert FeatureConfig.from_dict(info["features"]) == LogMelConfig()
    assert info["description"] == "random weights"


def test_load_missing_model(tmp_path):
    with pytest.raises(GenrekitError, match="not found"):
        Predictor.load(tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- streaming == whole signal


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """95 s on disk: four 30-s decoding blocks, the last one partial."""
    return write_audio(tmp_path_factory.mktemp("long") / "long.wav", _music(95.0, seed=3))


@pytest.mark.slow
def test_long_file_streaming_equals_whole_signal(random_model, long_file):
    predictor = Predictor.load(random_model)
    assert len(list(stream_audio(long_file, block_seconds=30.0))) == 4
    streamed = predictor.predict_file(long_file)
    whole = predictor.predict_signal(load_audio(long_file), SR)
    assert streamed.duration_s == whole.duration_s == pytest.approx(95.0, abs=1e-3)
    assert [(s.start_s, s.end_s) for s in streamed.timeline] == [(s.start_s, s.end_s) for s in whole.timeline]
    for g in streamed.probabilities:
        assert streamed.probabilities[g] == pytest.approx(whole.probabilities[g], abs=1e-4)
    for a, b in zip(streamed.timeline, whole.timeline):
        for g in a.probabilities:
            assert a.probabilities[g] == pytest.approx(b.probabilities[g], abs=1e-4 + 1e-9)
    # window probabilities from the core
    s = predictor.classifier.analyse(blocks=stream_audio(long_file, block_seconds=30.0))
    w = predictor.classifier.analyse(blocks=[load_audio(long_file)])
    assert s.n_samples == w.n_samples and len(s.starts) == len(w.starts) > 40
    np.testing.assert_array_equal(s.starts, w.starts)
    np.testing.assert_allclose(s.probabilities, w.probabilities, atol=1e-5)


@pytest.mark.parametrize(
    "block,n_samples",
    [(b, n) for n in (100, 1500, 33_333) for b in (511, 512, 2048, 5000, 22050, 10**6)] + [(7, 100), (7, 1500)],
)
def test_streamed_logmel_frames_equal_whole_signal_frames(block, n_samples):
    """Blocks of any size, even shorter than one FFT frame, give the frames of the whole signal."""
    cfg = LogMelConfig(n_mels=40)
    y = noise_band(30, 10000, n_samples / SR, amp=0.2, seed=n_samples)[:n_samples]
    frames = cfg.stream()
    parts = [frames.push(y[i : i + block]) for i in range(0, len(y), block)]
    parts.append(frames.finish())
    streamed = np.concatenate(parts, axis=1)
    whole = extract(cfg, y, sr=SR)
    assert streamed.shape == whole.shape == (40, 1 + n_samples // cfg.hop_length)
    np.testing.assert_allclose(streamed, whole, atol=2e-3)


@pytest.mark.parametrize("seconds", [0.02, 0.5, 3.0, 10.0])
def test_window_probabilities_equal_the_evaluation_path(random_model, seconds):
    """Inference (streamed frames, streamed windows) gives what evaluation computes on whole features."""
    from genrekit.evaluate import evaluate_tracks

    predictor = Predictor.load(random_model)
    core, cfg = predictor.classifier, predictor.feature_config
    y = _music(seconds, seed=5)
    w = core.analyse(blocks=iter([y[: len(y) // 3], y[len(y) // 3 :]]))
    ref = core.analyse_tracks([extract(cfg, y, sr=SR)])[0]
    assert w.n_samples == len(y)
    n_frames = 1 + len(y) // 512
    np.testing.assert_array_equal(w.starts, window_starts(n_frames, size=cfg.segment_frames, hop=cfg.hop_frames))
    np.testing.assert_allclose(w.probabilities, ref, atol=1e-5)
    rep = evaluate_tracks(core, [extract(cfg, y, sr=SR)], np.array([0]))
    np.testing.assert_allclose(rep["track_probabilities"][0], w.mean, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 7, 64, 129, 1000])
@pytest.mark.parametrize("n_frames", [5, 129, 130, 300, 1293])
@pytest.mark.parametrize("overlap", [0.0, 0.5, 0.9])
def test_streamed_windows_equal_the_whole_matrix_windows(chunk, n_frames, overlap):
    cfg = LogMelConfig(n_mels=8, segment_overlap=overlap)
    size, hop = cfg.segment_frames, cfg.hop_frames
    spec = np.random.default_rng(n_frames).normal(size=(8, n_frames)).astype(np.float32)
    blocks = [spec[:, i : i + chunk] for i in range(0, n_frames, chunk)]
    got = list(stream_windows(iter(blocks), size=size, hop=hop))
    starts, want = cut_windows(spec, size=size, hop=hop)
    assert [s for s, _ in got] == list(starts) == list(window_starts(n_frames, size=size, hop=hop))
    assert len(got) == len(want)
    for (s, w), ref in zip(got, want):
        np.testing.assert_array_equal(np.asarray(w), ref)
        if s + size <= n_frames:
            np.testing.assert_array_equal(ref, spec[:, s : s + size])


@pytest.mark.parametrize("seconds", slow_except([20.0, 31.0, 45.0, 65.0, 95.0], 31.0, 45.0))
@pytest.mark.parametrize("block_seconds", slow_except([7.0, 30.0], 7.0))
def test_streamed_kaggle_image_columns_equal_whole_signal(seconds, block_seconds):
    cfg = KaggleImageConfig()
    y = _music(seconds, seed=int(seconds))
    frames = cfg.stream()
    b = int(block_seconds * SR)
    parts = [frames.push(y[i : i + b]) for i in range(0, len(y), b)]
    parts.append(frames.finish())
    streamed = np.concatenate(parts, axis=1)
    whole = extract(cfg, y, sr=SR)
    columns = 334 if 30 <= seconds <= 31 else seconds / 30 * 334  # a GTZAN-length clip is one image
    assert streamed.shape == whole.shape and abs(whole.shape[1] - columns) <= 2
    np.testing.assert_array_equal(streamed, whole)


@pytest.mark.slow
def test_kaggle_image_model_streaming_equals_whole_signal(tmp_path, long_file):
    ckpt = random_checkpoint(tmp_path / "img.pt", config=KaggleImageConfig())
    predictor = Predictor.load(ckpt)
    streamed = predictor.predict_file(long_file)
    whole = predictor.predict_signal(load_audio(long_file), SR)
    _check_prediction(streamed, ["a", "b", "c"], 95.0)
    assert [(s.start_s, s.end_s) for s in streamed.timeline] == [(s.start_s, s.end_s) for s in whole.timeline]
    for g in streamed.probabilities:
        assert streamed.probabilities[g] == pytest.approx(whole.probabilities[g], abs=1e-4)


# ----------------------------------------------------------------------------- CLI output formats


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "music"
    for i in range(4):
        write_audio(d / ("sub" if i == 3 else "") / f"track{i}.wav", _music(2.0 + i, seed=i))
    (d / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    return d


def test_collect_inputs(folder, tmp_path):
    files = collect_inputs([folder, folder / "track0.wav"])
    assert files == sorted(files)
    assert sorted(f.name for f in files) == ["track0.wav", "track1.wav", "track2.wav", "track3.wav"]  # no duplicate
    with pytest.raises(GenrekitError, match="does not exist"):
        collect_inputs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenrekitError, match="no audio file"):
        collect_inputs([tmp_path / "empty"])


@pytest.mark.slow
def test_album_covers_in_a_library_are_not_taken_for_spectrograms(tmp_path, folder, random_model):
    from PIL import Image

    from genrekit.features.kaggle_image import render_image, save_png

    Image.new("RGB", (500, 500), "red").save(folder / "cover.png")  # an album cover
    save_png(render_image(_music(30.0), SR), folder / "sub" / "spectrogram.png")  # the Kaggle geometry
    names = lambda files: sorted(f.name for f in files)
    # an audio model takes no PNG; a kaggle-image model takes only the Kaggle-shaped one
    assert names(collect_inputs([folder])) == ["track0.wav", "track1.wav", "track2.wav", "track3.wav"]
    assert "spectrogram.png" in names(collect_inputs([folder], images=True))
    assert "cover.png" not in names(collect_inputs([folder], images=True))
    out = tmp_path / "tags.csv"
    assert run_cli(["predict", folder, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]) == 0
    rows = csv_rows(out)
    assert len(rows) == 4 and not any(r["error"] for r in rows)
    img_model = random_checkpoint(tmp_path / "img.pt", config=KaggleImageConfig())
    out2 = tmp_path / "tags2.csv"
    assert run_cli(["predict", folder, "--model", img_model, "-o", out2, "--no-progress", "--processes", "1"]) == 0
    rows = csv_rows(out2)
    assert sorted(Path(r["path"]).name for r in rows) == ["spectrogram.png", *[f"track{i}.wav" for i in range(4)]]
    assert not any(r["error"] for r in rows)


def test_cli_csv_format(random_model, folder, capsys):
    assert (
        run_cli(["predict", folder, "--model", random_model, "--format", "csv", "--no-progress", "--processes", "1"])
        == 0
    )
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == CSV_FIELDS
    assert sorted(Path(r["path"]).name for r in rows) == ["track0.wav", "track1.wav", "track2.wav", "track3.wav"]
    for r in rows:
        assert r["genre"] in ("a", "b", "c") and r["error"] == ""
        assert 0 < float(r["probability"]) <= 1
        assert r["top"].split(";")[0].split(":")[0] == r["genre"]
        assert r["label"].split(" (")[0].split(" / ")[0] == r["genre"] and float(r["duration_s"]) >= 2.0
        assert r["confident"] in ("yes", "no") and r["truncated"] == "no"


def test_cli_json_format(random_model, folder, capsys):
    assert (
        run_cli(
            [
                "predict",
                folder,
                "--model",
                random_model,
                "--format",
                "json",
                "--top-k",
                2,
                "--no-progress",
                "--processes",
                "1",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)  # one document: an array
    assert len(rows) == 4
    for d in rows:
        assert set(d) >= {"path", "duration_s", "top", "probabilities", "timeline", "model"}
        assert len(d["top"]) == 2 and sum(d["probabilities"].values()) == pytest.approx(1, abs=2e-3)


def test_cli_table_format(random_model, folder, capsys):
    assert (
        run_cli(
            [
                "predict",
                folder / "track1.wav",
                folder / "sub",
                "--model",
                random_model,
                "--timeline",
                "--no-progress",
                "--processes",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "track1.wav" in out and "track3.wav" in out and "track0.wav" not in out
    assert "%" in out and "(0:03)" in out


# ----------------------------------------------------------------------------- library mode


def test_library_output_is_resumable(random_model, folder, tmp_path, capsys):
    out = tmp_path / "res.csv"
    argv = ["predict", folder, "--model", random_model, "--output", out, "--no-progress", "--processes", "1"]
    assert run_cli(argv) == 0
    rows = csv_rows(out)
    assert len(rows) == 4 and len({r["path"] for r in rows}) == 4
    # simulate a kill after two rows
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]))
    capsys.readouterr()
    assert run_cli(argv) == 0
    assert "skipped 2" in capsys.readouterr().err
    again = csv_rows(out)
    assert sorted(r["path"] for r in again) == sorted(r["path"] for r in rows)  # each file exactly once
    assert again[:2] == rows[:2]  # rows already there are kept as they were
    assert out.read_text().count("path,artist,album,title,genre") == 1  # one header
    # nothing left to do
    assert run_cli(argv) == 0
    assert "done 0, skipped 4" in capsys.readouterr().err
    assert len(csv_rows(out)) == 4


def test_library_json_lines_output_is_resumable(random_model, folder, tmp_path):
    out = tmp_path / "res.jsonl"
    argv = [
        "predict",
        folder,
        "--model",
        random_model,
        "--format",
        "jsonl",
        "--output",
        out,
        "--no-progress",
        "--processes",
        "1",
    ]
    assert run_cli(argv) == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:1]))
    assert run_cli(argv) == 0
    paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert sorted(paths) == sorted(json.loads(line)["path"] for line in lines)


@pytest.mark.parametrize("where", ["inside the path", "after the path"])
@pytest.mark.parametrize("fmt", slow_except(["csv", "jsonl"], "csv"))
def test_library_resumes_after_a_row_cut_in_the_middle(random_model, folder, tmp_path, fmt, where):
    out = tmp_path / f"res.{fmt}"
    argv = [
        "predict",
        folder,
        "--model",
        random_model,
        "--format",
        fmt,
        "--output",
        out,
        "--no-progress",
        "--processes",
        "1",
    ]
    assert run_cli(argv) == 0
    expected = sorted(str(p) for p in collect_inputs([folder]))
    lines = out.read_text().splitlines(keepends=True)
    keep = 3 if fmt == "csv" else 2  # CSV: header + 2 rows; JSON: 2 rows
    row = lines[keep]
    path_end = row.index(",") if fmt == "csv" else row.index('",') + 2
    cut_at = path_end // 2 if where == "inside the path" else path_end + 3
    out.write_text("".join(lines[:keep]) + row[:cut_at])
    assert run_cli(argv) == 0
    if fmt == "csv":
        rows = csv_rows(out)
        assert all(r["genre"] in ("a", "b", "c") and r["error"] == "" for r in rows)
        paths = [r["path"] for r in rows]
        runs = csv_rows(tmp_path / "res.timeline.csv")  # each file's timeline once, the redone one too
        assert sorted(r["path"] for r in runs if float(r["start_s"]) == 0) == sorted(paths)
    else:
        paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert sorted(paths) == expected  # every file exactly once, every row whole


def test_library_bad_file_gets_an_error_row(random_model, folder, tmp_path):
    (folder / "bad.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    out = tmp_path / "res.csv"
    argv = [
        "predict",
        folder,
        "--model",
        random_model,
        "--output",
        out,
        "--format",
        "csv",
        "--no-progress",
        "--processes",
        "1",
    ]
    assert run_cli(argv) == 1  # a file failed
    rows = {Path(r["path"]).name: r for r in csv_rows(out)}
    assert len(rows) == 5
    assert rows["bad.wav"]["error"] and "bad.wav" in rows["bad.wav"]["error"] and rows["bad.wav"]["genre"] == ""
    for name in ("track0.wav", "track1.wav", "track2.wav", "track3.wav"):
        assert rows[name]["error"] == "" and rows[name]["genre"] in ("a", "b", "c")
    # a rerun retries it (and it fails again), and leaves the rest
    summary = run_library([folder], model=random_model, fmt="csv", output=out, progress=False, processes=1)
    assert (summary.done, summary.skipped, summary.failed, summary.retried) == (0, 4, 1, 1)
    assert len(csv_rows(out)) == 5


def test_library_all_files_bad_exits_1(random_model, tmp_path, capsys):
    d = tmp_path / "bad"
    d.mkdir()
    for i in range(2):
        (d / f"bad{i}.mp3").write_bytes(b"\x00" * 300)
    assert run_cli(["predict", d, "--model", random_model, "--format", "csv", "--no-progress", "--processes", "1"]) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 and all(r["error"] for r in rows)


def test_library_summary(random_model, folder):
    summary = run_library([folder], model=random_model, fmt="json", progress=False, processes=1)
    assert (summary.done, summary.skipped, summary.failed) == (4, 0, 0)


@pytest.mark.parametrize("what", ["empty folder", "missing path"])
def test_library_bad_input_exits_2(random_model, tmp_path, capsys, what):
    target = tmp_path / ("empty" if what == "empty folder" else "nope")
    if what == "empty folder":
        target.mkdir()
        (target / "notes.txt").write_text("x")
    assert run_cli(["predict", target, "--model", random_model, "--no-progress", "--processes", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().startswith("error: ") and len(err.strip().splitlines()) == 1
    assert str(target) in err


def test_predicting_files_leaves_torch_threads_alone(random_model, folder):
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        list(Predictor.load(random_model).predict_files(sorted(folder.glob("*.wav")), workers=2))
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- robustness


def test_pure_gain_gives_the_same_probabilities(random_model, tmp_path):
    y = _music(6.0, seed=9)
    loud = write_audio(tmp_path / "loud.wav", y, subtype="FLOAT")
    quiet = write_audio(tmp_path / "quiet.wav", y * 10 ** (-12 / 20), subtype="FLOAT")
    predictor = Predictor.load(random_model)
    a, b = predictor.predict_file(loud), predictor.predict_file(quiet)
    for g in a.probabilities:
        assert a.probabilities[g] == pytest.approx(b.probabilities[g], abs=1e-4 + 1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("label", LABELS)
def test_rate_channels_and_gain_do_not_change_the_genre(trained_model, tmp_path, label):
    seed = 7000 + LABELS.index(label)  # clips never seen in training
    variants = {
        "wav 22.05 kHz": write_audio(tmp_path / "a.wav", labelled_clip(label, seed, 6.0)),
        "flac 44.1 kHz stereo": write_audio(
            tmp_path / "b.flac", np.stack([labelled_clip(label, seed, 6.0, sr=44100)] * 2, axis=1), sr=44100
        ),
        "wav -12 dB": write_audio(tmp_path / "c.wav", labelled_clip(label, seed, 6.0) * 10 ** (-12 / 20)),
        "m4a": write_audio(tmp_path / "d.m4a", labelled_clip(label, seed, 6.0)),
    }
    predictor = Predictor.load(trained_model)
    genres = {name: predictor.predict_file(p).genre for name, p in variants.items()}
    assert set(genres.values()) == {label}, genres


@pytest.mark.slow
def test_trained_model_reports_a_confident_timeline(trained_model, tmp_path):
    """A file of one class then another: the timeline follows the change."""
    y = np.concatenate([labelled_clip("bass", 8001, 4.0), labelled_clip("treble", 8002, 4.0)])
    pred = Predictor.load(trained_model).predict_file(write_audio(tmp_path / "mix.wav", y))
    first = [s.label for s in pred.timeline if s.end_s <= 3.9]
    last = [s.label for s in pred.timeline if s.start_s >= 4.1]
    assert first and last
    assert set(first) == {"bass"} and set(last) == {"treble"}
    assert math.isclose(sum(pred.probabilities.values()), 1.0, abs_tol=2e-3)


def test_kaggle_image_model_predicts_a_png_like_its_audio(tmp_path):
    # the bridge: a PNG rendered from audio and the audio itself give the same windows and result
    from genrekit.checkpoint import Checkpoint
    from genrekit.features.kaggle_image import render_image, save_png
    from genrekit.models import build_model
    from genrekit.predictor import Predictor

    cfg = KaggleImageConfig()
    labels = ["a", "b", "c"]
    torch.manual_seed(0)
    model = build_model("gknet", n_classes=3, input_shape=(cfg.n_bins, cfg.segment_frames))
    Checkpoint("gknet", {}, labels, cfg, model.state_dict(), {}).save(tmp_path / "m.pt")
    t = np.arange(30 * 22050) / 22050
    y = 0.3 * np.sin(2 * np.pi * 440 * t * (1 + t / 30)) + 0.05 * np.random.default_rng(0).standard_normal(len(t))
    sf.write(tmp_path / "clip.wav", y.astype(np.float32), 22050)
    save_png(render_image(y.astype(np.float32), 22050), tmp_path / "clip.png")
    p = Predictor.load(tmp_path / "m.pt")
    from_audio, from_png = p.predict_file(tmp_path / "clip.wav"), p.predict_file(tmp_path / "clip.png")
    assert len(from_png.timeline) == len(from_audio.timeline)
    for g in labels:
        assert from_png.probabilities[g] == pytest.approx(from_audio.probabilities[g], abs=1e-3)


def test_logmel_model_rejects_a_png_with_a_clear_error(tmp_path, random_model):
    from genrekit.features.kaggle_image import render_image, save_png
    from genrekit.predictor import Predictor

    save_png(render_image(np.zeros(22050, np.float32), 22050), tmp_path / "x.png")
    with pytest.raises(GenrekitError, match="only models trained on kaggle-image"):
        Predictor.load(random_model).predict_file(tmp_path / "x.png")
