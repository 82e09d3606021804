"""Tagging a library at scale: any file name, links, loops and pipes, one run per output, long files,
the JSON array and JSON lines, the timeline merged into runs."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, csv_rows, labelled_clip, run_cli, slow_except, write_audio

from genrekit import audio
from genrekit.audio import AudioError, stream_audio
from genrekit.cli import build_parser
from genrekit.library import CSV_FIELDS, run_library
from genrekit.predictor import Predictor, Segment
from genrekit.schema import TimelineConfig, timeline_runs

ODD_NAMES = [b"caf\xe9.wav", b"line\nbreak.wav", b'comma, "quoted".wav', b"tab\tand 'quote'.wav", "ünï.wav".encode()]


def _clip(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return labelled_clip(("bass", "hiss", "treble")[seed % 3], seed, seconds)


def _rows(path: Path, fmt: str) -> list[dict]:
    if fmt == "csv":
        return csv_rows(path)
    if fmt == "json":
        return json.loads(path.read_text())
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "music"
    for i in range(4):
        write_audio(d / ("sub" if i == 3 else "") / f"track{i}.wav", _clip(2.0, seed=i))
    return d


@pytest.fixture
def odd_folder(tmp_path) -> Path:
    """Files whose names hold bytes that are not UTF-8, newlines, commas, quotes and tabs."""
    d = tmp_path / "odd"
    d.mkdir()
    for i, name in enumerate(ODD_NAMES):
        write_audio(d / "x.wav", _clip(2.0, seed=i))
        os.rename(os.fsencode(d / "x.wav"), os.fsencode(d) + b"/" + name)
    return d


# ----------------------------------------------------------------------------- any file name


@pytest.mark.parametrize("fmt", slow_except(["csv", "json", "jsonl"], "csv"))
def test_file_names_of_any_bytes_are_written_and_recognised_on_a_rerun(random_model, odd_folder, tmp_path, fmt, capsys):
    out = tmp_path / f"tags.{fmt}"
    argv = [
        "predict",
        odd_folder,
        "--model",
        random_model,
        "--format",
        fmt,
        "-o",
        out,
        "--no-progress",
        "--processes",
        "1",
    ]
    assert run_cli(argv) == 0
    rows = _rows(out, fmt)
    assert not any(r.get("error") for r in rows)
    # each name exactly as it is on disk, bytes included
    assert sorted(os.fsencode(r["path"]) for r in rows) == sorted(os.fsencode(odd_folder) + b"/" + n for n in ODD_NAMES)
    capsys.readouterr()
    assert run_cli(argv) == 0
    assert f"done 0, skipped {len(ODD_NAMES)}" in capsys.readouterr().err
    assert len(_rows(out, fmt)) == len(ODD_NAMES)


def test_the_terminal_shows_names_that_are_not_utf8_escaped(random_model, odd_folder, capsys):
    for fmt in ("table", "csv"):
        assert (
            run_cli(
                ["predict", odd_folder, "--model", random_model, "--format", fmt, "--no-progress", "--processes", "1"]
            )
            == 0
        )
        assert "caf\\xe9.wav" in capsys.readouterr().out


def test_a_csv_row_cut_after_a_newline_inside_a_name_is_redone(random_model, tmp_path):
    d = tmp_path / "music"
    write_audio(d / "a.wav", _clip(2.0, seed=0))
    write_audio(d / "z\nnewline.wav", _clip(2.0, seed=1))  # sorted last: its row is the last one
    out = tmp_path / "tags.csv"
    argv = ["predict", d, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]
    assert run_cli(argv) == 0
    data = out.read_bytes()
    out.write_bytes(data[: data.rindex(b"z\n") + 2])  # killed just after the newline of the name
    assert run_cli(argv) == 0
    rows = csv_rows(out)
    assert sorted(r["path"] for r in rows) == [str(d / "a.wav"), str(d / "z\nnewline.wav")]
    assert all(r["genre"] and not r["error"] for r in rows)


# ----------------------------------------------------------------------------- links, loops, pipes


class _PipeWatch:
    """Opens the named pipes for writing whenever something has them open for reading: such a
    reader then never waits, and is seen in ``opened``."""

    def __init__(self, pipes: list[Path]):
        self.pipes, self.opened, self.stop = pipes, set(), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.is_set():
            for p in self.pipes:
                try:
                    os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
                    self.opened.add(p.name)
                except OSError:  # no reader
                    pass
            time.sleep(0.01)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def test_links_loops_and_pipes_get_an_error_row_and_never_block(random_model, folder, tmp_path):
    os.symlink("nowhere.wav", folder / "gone.wav")
    os.symlink("loop.wav", folder / "loop.wav")
    os.symlink(folder / "track0.wav", folder / "alias.wav")  # the same file: one row
    os.symlink(folder, folder / "sub" / "again")  # a folder cycle: searched once
    os.mkfifo(folder / "pipe.wav")
    os.mkfifo(folder / "control")  # not named as audio, still reported
    os.mkfifo(tmp_path / "named.wav")  # named on the command line
    watch = _PipeWatch([folder / "pipe.wav", folder / "control", tmp_path / "named.wav"])
    try:
        out = tmp_path / "tags.csv"
        argv = [
            "predict",
            folder,
            tmp_path / "named.wav",
            "--model",
            random_model,
            "-o",
            out,
            "--no-progress",
            "--processes",
            "1",
        ]
        assert run_cli(argv) == 1  # some files failed
    finally:
        watch.close()
    assert not watch.opened, "a named pipe was opened"
    rows = {Path(r["path"]).name: r for r in csv_rows(out)}
    assert sorted(rows) == sorted(
        ["gone.wav", "loop.wav", "pipe.wav", "control", "named.wav", *(f"track{i}.wav" for i in range(4))]
    )
    assert all(rows[f"track{i}.wav"]["genre"] and not rows[f"track{i}.wav"]["error"] for i in range(4))
    expected = {
        "gone.wav": "is a broken symbolic link",
        "loop.wav": "is a symbolic link loop",
        "pipe.wav": "is not a regular file (named pipe)",
        "control": "is not a regular file (named pipe)",
        "named.wav": "is not a regular file (named pipe)",
    }
    for name, message in expected.items():
        assert message in rows[name]["error"] and name in rows[name]["error"], rows[name]
        assert rows[name]["path"] == str(Path(os.path.realpath(rows[name]["path"])).parent / name)
    # a rerun tries the failed files again (their old rows go), and leaves the rest
    summary = run_library([folder, tmp_path / "named.wav"], model=random_model, output=out, progress=False, processes=1)
    assert (summary.done, summary.skipped, summary.failed, summary.retried) == (0, 4, 5, 5)
    assert sorted(Path(r["path"]).name for r in csv_rows(out)) == sorted(rows)  # still one row per file
    summary = run_library(
        [folder, tmp_path / "named.wav"],
        model=random_model,
        output=out,
        progress=False,
        retry_failed=False,
        processes=1,
    )
    assert (summary.done, summary.skipped, summary.failed, summary.retried) == (0, 9, 0, 0)


def test_a_file_failing_unexpectedly_gets_an_error_row(random_model, folder, tmp_path, monkeypatch):
    real = Predictor.predict_file

    def flaky(self, path, **kw):
        if Path(path).name == "track1.wav":
            raise RuntimeError("a bug")
        return real(self, path, **kw)

    monkeypatch.setattr(Predictor, "predict_file", flaky)
    out = tmp_path / "tags.csv"
    # in this process (--processes 1), where the patched method runs
    assert run_cli(["predict", folder, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]) == 1
    rows = {Path(r["path"]).name: r for r in csv_rows(out)}
    assert len(rows) == 4 and "RuntimeError: a bug" in rows["track1.wav"]["error"]
    assert sum(bool(r["genre"]) for r in rows.values()) == 3


# ----------------------------------------------------------------------------- one row per file, one run per output


def test_a_rerun_through_another_spelling_of_the_folder_skips_what_is_done(
    random_model, folder, tmp_path, monkeypatch, capsys
):
    os.symlink(folder, tmp_path / "linked")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "tags.csv"
    spellings = ["music", str(folder), "linked", "./music/../linked/", "music/track0.wav"]
    for i, spelling in enumerate(spellings):
        assert (
            run_cli(["predict", spelling, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]) == 0
        )
        if i:
            assert "done 0" in capsys.readouterr().err, spelling
    rows = csv_rows(out)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.rglob("*.wav"))


LOCK_SCRIPT = """
import sys, time
from pathlib import Path
from genrekit.library import run_library
from genrekit.predictor import Predictor

started, release, folder, model, out = map(Path, sys.argv[1:])
real = Predictor.predict_file

def held(self, path, **kw):
    if Path(path).name == "track1.wav":  # the third file (after sub/track3.wav, track0.wav)
        started.touch()
        while not release.exists():
            time.sleep(0.05)
    return real(self, path, **kw)

Predictor.predict_file = held
run_library([folder], model=model, fmt="json", output=out, workers=1, processes=1, progress=False)
"""


def _wait_for(condition, what: str, proc: subprocess.Popen, bound: float = 120.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the first run never got to {what}: {proc.communicate()[1].decode()[-2000:]}")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_second_run_on_the_same_output_is_refused_and_a_killed_run_resumes(random_model, folder, tmp_path, capsys):
    out = tmp_path / "tags.json"
    predict = ["predict", folder, "--model", random_model, "--format", "json", "-o", out, "--no-progress"]
    predict += ["--processes", "1"]
    started, release = tmp_path / "started", tmp_path / "release"
    argv = [str(a) for a in (started, release, folder, random_model, out)]
    proc = subprocess.Popen([sys.executable, "-c", LOCK_SCRIPT, *argv], stderr=subprocess.PIPE)
    try:
        journal = tmp_path / "tags.json.journal"
        _wait_for(
            lambda: started.exists() and journal.exists() and journal.read_text().count("\n") == 2,
            "its third file",
            proc,
        )
        assert run_cli(predict) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
        assert str(out) in err and "another genrekit run" in err and f"process {proc.pid}" in err
        proc.kill()  # a hard kill in the middle of the run
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not out.exists()  # the array is only ever written whole
    assert run_cli(predict) == 0
    assert "done 2, skipped 2" in capsys.readouterr().err
    rows = json.loads(out.read_text())
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.rglob("*.wav"))
    assert not journal.exists()


# ----------------------------------------------------------------------------- long files


def test_default_limits_and_how_they_are_written():
    a = build_parser().parse_args(["predict", "x.wav", "--processes", "1"])
    assert (a.max_duration, a.file_timeout) == (7200, 600)
    for text, seconds in [("90", 90), ("1:30", 90), ("2:00:00", 7200), ("0.5", 0.5), ("none", None)]:
        assert (
            build_parser().parse_args(["predict", "x", "--max-duration", text, "--processes", "1"]).max_duration
            == seconds
        )


@pytest.mark.parametrize("bad", ["soon", "1:2:3:4", "-5", "0", "1::2"])
def test_a_bad_duration_is_refused_with_a_clear_message(bad, capsys):
    assert run_cli(["predict", "x.wav", "--max-duration", bad, "--processes", "1"]) == 2
    err = capsys.readouterr().err
    assert "--max-duration" in err and bad in err and ("h:mm:ss" in err or "positive" in err)


def test_a_wav_declared_at_1_hz_gets_an_error_row_at_once(random_model, folder, tmp_path):
    sf.write(folder / "slow.wav", np.zeros(200_000, np.int16), 1, subtype="PCM_16")  # 400 kB: 55 h at 1 Hz
    out = tmp_path / "tags.csv"
    argv = [
        "predict",
        folder,
        "--model",
        random_model,
        "-o",
        out,
        "--max-duration",
        "2:00:00",
        "--no-progress",
        "--processes",
        "1",
    ]
    assert run_cli(argv) == 1
    rows = {Path(r["path"]).name: r for r in csv_rows(out)}
    assert "it declares a sample rate of 1 Hz, outside the 1000-384000 Hz" in rows["slow.wav"]["error"]
    assert all(rows[f"track{i}.wav"]["genre"] for i in range(4))


def test_the_duration_limit(random_model, tmp_path):
    song = write_audio(tmp_path / "music" / "song.flac", _clip(10.0))
    out = tmp_path / "tags.csv"
    summary = run_library([song], model=random_model, output=out, max_duration=5, progress=False, processes=1)
    assert (
        summary.failed == 1
        and "its header says it lasts 0:10, longer than the limit of 0:05" in summary.errors[str(song)]
    )
    summary = run_library([song], model=random_model, fmt="json", max_duration=10.5, progress=False, processes=1)
    assert summary.done == 1


def test_the_duration_limit_holds_while_decoding_when_the_header_does_not_say(tmp_path, monkeypatch):
    song = write_audio(tmp_path / "song.wav", labelled_clip("bass", 0, 10.0, sr=8000), sr=8000)
    monkeypatch.setattr(audio._StraightSoundFile, "frames", property(lambda self: 0))  # a header that does not say
    decoded = 0
    with pytest.raises(AudioError, match="lasts longer than the limit of 0:05"):
        for block in stream_audio(song, block_seconds=0.5, max_duration=5):
            decoded += len(block)
    assert decoded <= 5 * SR  # nothing beyond the limit was given to the model
    assert sum(map(len, stream_audio(song, max_duration=10))) == 10 * SR


def test_a_file_taking_longer_than_the_timeout_gets_an_error_row(random_model, folder, tmp_path):
    out = tmp_path / "tags.csv"
    argv = [
        "predict",
        folder,
        "--model",
        random_model,
        "-o",
        out,
        "--file-timeout",
        "1e-9",
        "--no-progress",
        "--processes",
        "1",
    ]
    assert run_cli(argv) == 1  # every file failed
    rows = csv_rows(out)
    assert len(rows) == 4 and all("took longer than 1e-09 s to decode" in r["error"] for r in rows)


@pytest.fixture
def default_csv_field_limit():
    """csv's limit on a field as a fresh process has it (it is process-wide)."""
    before = csv.field_size_limit(131072)
    yield
    csv.field_size_limit(before)


def test_an_old_output_with_a_huge_timeline_cell_is_resumed(
    random_model, folder, tmp_path, capsys, default_csv_field_limit
):
    out = tmp_path / "tags.csv"
    old_fields = [
        "path",
        "genre",
        "probability",
        "top",
        "duration_s",
        "segments",
        "timeline",
        "no_music",
        "confident",
        "error",
    ]
    with open(out, "w", newline="") as f:  # as older versions wrote it: a 3-hour file's timeline in a cell
        w = csv.writer(f)
        w.writerow(old_fields)
        w.writerow([folder / "track0.wav", "a", 0.5, "a:0.5", 10800, 7000, ";".join(["0-3:a"] * 40_000), "", "yes", ""])
    assert run_cli(["predict", folder, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]) == 0
    assert "done 3, skipped 1" in capsys.readouterr().err
    rows = csv_rows(out)
    assert list(rows[0]) == old_fields and len(rows) == 4 and all(r["genre"] for r in rows)


# ----------------------------------------------------------------------------- output formats


def test_csv_rows_stay_short_and_the_timeline_runs_go_beside_them(random_model, tmp_path):
    song = write_audio(tmp_path / "song.wav", np.concatenate([_clip(20.0, seed=0), _clip(20.0, seed=2)]))
    out = tmp_path / "tags.csv"
    assert run_cli(["predict", song, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]) == 0
    assert out.read_text().splitlines()[0] == ",".join(CSV_FIELDS) and "timeline" not in CSV_FIELDS
    assert len(out.read_text().splitlines()[1]) < 300
    runs = csv_rows(tmp_path / "tags.timeline.csv")
    assert [r["path"] for r in runs] == [str(song)] * len(runs)
    assert float(runs[0]["start_s"]) == 0 and float(runs[-1]["end_s"]) == pytest.approx(40.0, abs=1e-3)
    for a, b in itertools.pairwise(runs):
        assert a["end_s"] == b["start_s"] and a["genre"] != b["genre"]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_outputs_are_one_array_or_one_object_per_line_and_resume(random_model, folder, tmp_path, fmt, capsys):
    (folder / "sub" / "track3.wav").rename(tmp_path / "later.wav")
    out = tmp_path / f"tags.{fmt}"
    argv = [
        "predict",
        folder,
        "--model",
        random_model,
        "--format",
        fmt,
        "-o",
        out,
        "--top-k",
        "2",
        "--no-progress",
        "--processes",
        "1",
    ]
    assert run_cli(argv) == 0
    first = _rows(out, fmt)
    (tmp_path / "later.wav").rename(folder / "sub" / "track3.wav")
    assert run_cli(argv) == 0
    assert "done 1, skipped 3" in capsys.readouterr().err
    rows = _rows(out, fmt)
    assert rows[:3] == first and len(rows) == 4
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.rglob("*.wav"))
    assert all(len(r["top"]) == 2 and r["timeline"] for r in rows)
    if fmt == "json":
        assert isinstance(json.loads(out.read_text()), list)
    else:
        assert len(out.read_text().splitlines()) == 4


def test_an_interrupted_json_run_leaves_a_valid_array(random_model, folder, tmp_path, monkeypatch):
    real = Predictor.predict_file

    def interrupted(self, path, **kw):
        if Path(path).name == "track2.wav":
            raise KeyboardInterrupt
        return real(self, path, **kw)

    out = tmp_path / "tags.json"
    monkeypatch.setattr(Predictor, "predict_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_library([folder], model=random_model, fmt="json", output=out, workers=1, processes=1, progress=False)
    assert len(json.loads(out.read_text())) == 3  # sub/track3.wav, track0.wav, track1.wav
    monkeypatch.setattr(Predictor, "predict_file", real)
    summary = run_library([folder], model=random_model, fmt="json", output=out, progress=False, processes=1)
    assert (summary.done, summary.skipped) == (1, 3)
    assert len({r["path"] for r in json.loads(out.read_text())}) == 4


def test_terminal_json_is_one_array(random_model, folder, capsys):
    assert (
        run_cli(["predict", folder, "--model", random_model, "--format", "json", "--no-progress", "--processes", "1"])
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)) == 4


RAW = TimelineConfig(smooth_windows=1, min_run_s=0.0)


def _seg(start, label, p=1.0):
    return Segment(start, start + 3.0, {label: p, "other": 1.0 - p})


def _runs(windows, duration, config=RAW):
    return [(r["start_s"], r["end_s"], r["genre"]) for r in timeline_runs(windows, duration, config)]


def test_timeline_runs_cover_the_audio_without_overlap():
    windows = [_seg(0, "a"), _seg(1.5, "a"), _seg(3, "b"), _seg(4.5, "b"), _seg(6, "a")]
    # centres 1.5 3 | 4.5 6 | 7.5: each run ends halfway to the next run's first centre
    assert _runs(windows, 9.0) == [(0.0, 3.75, "a"), (3.75, 6.75, "b"), (6.75, 9.0, "a")]
    assert _runs([_seg(0, "a")], 2.0) == [(0.0, 2.0, "a")]
    assert timeline_runs([], 0.0) == []


def test_a_short_blip_joins_its_neighbours_and_long_runs_stay():
    # 3-s windows: 30 s of rock, one 3-s window of country, 30 s of rock, then 30 s of jazz
    genres = ["rock"] * 10 + ["country"] + ["rock"] * 10 + ["jazz"] * 10
    windows = [
        Segment(3.0 * i, 3.0 * i + 3.0, {g: 0.8 if g == x else 0.1 for g in ("rock", "country", "jazz")})
        for i, x in enumerate(genres)
    ]
    assert [r[2] for r in _runs(windows, 93.0)] == ["rock", "country", "rock", "jazz"]
    for config in (TimelineConfig(), TimelineConfig(smooth_windows=1, min_run_s=9.0), TimelineConfig(3, 0.0)):
        runs = _runs(windows, 93.0, config)
        assert [r[2] for r in runs] == ["rock", "jazz"], config
        assert runs[0][0] == 0.0 and runs[-1][1] == 93.0 and runs[0][1] == runs[1][0]
    # a song shorter than the minimum keeps one run
    assert len(_runs(windows[:2], 6.0, TimelineConfig(min_run_s=60.0))) == 1


@pytest.mark.slow
def test_the_table_timeline_shows_merged_runs_and_windows_shows_every_window(random_model, tmp_path, capsys):
    song = write_audio(tmp_path / "song.wav", np.concatenate([_clip(20.0, seed=0), _clip(20.0, seed=2)]))
    assert run_cli(["predict", song, "--model", random_model, "--timeline", "--no-progress", "--processes", "1"]) == 0
    runs = [line.strip() for line in capsys.readouterr().out.splitlines()[2:]]
    assert runs and all(re.fullmatch(r"\d+:\d\d–\d+:\d\d  [abc]", line) for line in runs), runs
    assert runs[0].startswith("0:00–") and runs[-1].split("  ")[0].endswith("–0:40")
    pred = Predictor.load(random_model).predict_file(song)
    assert len(runs) == len(timeline_runs(pred.timeline, pred.duration_s)) < len(pred.timeline)
    assert run_cli(["predict", song, "--model", random_model, "--windows", "--no-progress", "--processes", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()[2:]) == len(pred.timeline)
