"""What ``genrekit predict`` writes, as people expect it: the format from the extension, truncated
files flagged in every output, decoders kept quiet, a progress bar that never mixes with results,
the exit status, the lock and exactly-once JSON."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, labelled_clip, run_cli, slow_except, write_audio

from genrekit.outputs import _JsonArrayFile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "music"
    for i, label in enumerate(("bass", "hiss", "treble")):
        write_audio(d / f"track{i}.wav", labelled_clip(label, i, 4.0))
    return d


@pytest.fixture(scope="module")
def truncated_mp3(tmp_path_factory) -> Path:
    """A 30-s MP3 whose file was cut to its first fifth: its header still says 0:30."""
    d = tmp_path_factory.mktemp("mp3")
    t = np.arange(30 * SR) / SR
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * (t % 0.5)) + 0.02 * np.sin(2 * np.pi * 97 * t)).astype(
        np.float32
    )
    sf.write(d / "full.mp3", y, SR, format="MP3", subtype="MPEG_LAYER_III")
    data = (d / "full.mp3").read_bytes()
    (d / "cut.mp3").write_bytes(data[: len(data) // 5])
    return d / "cut.mp3"


@pytest.mark.parametrize(
    "ext,fmt", slow_except([("csv", "csv"), ("json", "json"), ("jsonl", "jsonl"), ("ndjson", "jsonl")], "ndjson")
)
def test_the_format_follows_the_extension(random_model, folder, tmp_path, ext, fmt):
    out = tmp_path / f"tags.{ext}"
    assert run_cli(["predict", folder, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]) == 0
    text = out.read_text()
    if fmt == "csv":
        assert text.startswith("path,artist,album,title,genre,probability,confident,label,top")
    elif fmt == "json":
        assert len(json.loads(text)) == 3
    else:
        assert [json.loads(line)["path"] for line in text.splitlines()] == sorted(str(p) for p in folder.iterdir())
    # --format still says otherwise when given
    other = tmp_path / f"other.{ext}"
    assert (
        run_cli(
            [
                "predict",
                folder,
                "--model",
                random_model,
                "-o",
                other,
                "--format",
                "csv",
                "--no-progress",
                "--processes",
                "1",
            ]
        )
        == 0
    )
    assert other.read_text().startswith("path,")


def test_an_output_whose_format_cannot_be_told_and_a_missing_folder_are_errors(random_model, folder, tmp_path, capsys):
    assert run_cli(["predict", folder, "--model", random_model, "-o", tmp_path / "tags.txt", "--processes", "1"]) == 2
    assert "cannot tell the format of" in capsys.readouterr().err
    missing = tmp_path / "no" / "such" / "dir" / "x.csv"
    assert run_cli(["predict", folder, "--model", random_model, "-o", missing, "--processes", "1"]) == 2
    err = capsys.readouterr().err
    assert "does not exist; create it first" in err and not (tmp_path / "no").exists()
    assert run_cli(["predict", folder, "--top-k", "0", "--processes", "1"]) == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_a_truncated_file_is_flagged_in_every_output(random_model, truncated_mp3, tmp_path, capsys):
    assert run_cli(["predict", truncated_mp3, "--model", random_model, "--processes", "1"]) == 0
    assert "truncated: the file ends at 0:05 although its header says 0:30" in capsys.readouterr().out
    for fmt in ("csv", "json"):
        out = tmp_path / f"t.{fmt}"
        assert run_cli(["predict", truncated_mp3, "--model", random_model, "-o", out, "--processes", "1"]) == 0
        if fmt == "csv":
            with open(out, newline="") as f:
                row = next(csv.DictReader(f))
            assert row["truncated"] == "yes" and 5.0 < float(row["duration_s"]) < 7.0
        else:
            row = json.loads(out.read_text())[0]
            assert row["truncated"] is True and row["declared_duration_s"] == pytest.approx(30.0, abs=0.1)
            assert 5.0 < row["duration_s"] < 7.0
    assert run_cli(["predict", truncated_mp3, "--model", random_model, "--max-duration", "5", "--processes", "1"]) == 1
    assert "its header says it lasts 0:30, longer than the limit of 0:05" in capsys.readouterr().out


@pytest.mark.slow
def test_decoder_chatter_is_kept_off_the_terminal(random_model, truncated_mp3, tmp_path):
    log = tmp_path / "decoders.log"
    code = "import sys\nfrom genrekit.cli import main\nmain(sys.argv[1:])\n"
    run = subprocess.run(
        [sys.executable, "-c", code, "predict", str(truncated_mp3), "--model", str(random_model)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Xing" not in run.stderr and "MPEG" not in run.stderr and "Xing" not in run.stdout
    assert "line(s) of decoder messages were kept off the terminal" in run.stderr
    argv = ["predict", str(truncated_mp3), "--model", str(random_model), "--decoder-log", str(log), "--processes", "1"]
    run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, check=False)
    assert "Xing" in log.read_text() and str(log) in run.stderr


def _terminal_run(argv: list[str]) -> str:
    """Run genrekit with stdout and stderr on one pseudo-terminal, as in a person's shell; what it showed."""
    code = "import sys\nfrom genrekit.cli import main\nmain(sys.argv[1:])\n"
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a terminal of 120 columns
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "COLUMNS": "100"},
    )
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([primary], [], [], 120)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_the_progress_bar_never_mixes_with_results_on_a_terminal(random_model, folder):
    shown = _terminal_run(["predict", str(folder), "--model", str(random_model), "--processes", "1"])
    assert "predict" in shown and "of audio" in shown, shown  # a bar was drawn, over seconds of audio
    # what stays on each line once the terminal has drawn it: the text after its last carriage return
    lines = [line.split("\r")[-1].replace("\x1b[A", "") for line in shown.replace("\r\n", "\n").split("\n")]
    for i in range(3):
        name = str(folder / f"track{i}.wav")
        assert any(line.startswith(name + "  (0:04)") for line in lines), (name, lines)
    assert not any("of audio" in line and "track" in line for line in lines), lines
    assert sum("done 3, failed 0" in line for line in lines) == 1  # the summary once, and no bar left


def test_the_lock_is_removed_and_follows_the_resolved_path(random_model, folder, tmp_path):
    out = tmp_path / "tags.json"
    assert run_cli(["predict", folder, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]) == 0
    assert not (tmp_path / "tags.json.lock").exists() and not (tmp_path / "tags.json.journal").exists()
    os.symlink(out, tmp_path / "link.json")
    write_audio(folder / "new.wav", labelled_clip("bass", 9, 3.0))
    assert (
        run_cli(
            [
                "predict",
                folder,
                "--model",
                random_model,
                "-o",
                tmp_path / "link.json",
                "--no-progress",
                "--processes",
                "1",
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())
    assert len(rows) == 4 and len({r["path"] for r in rows}) == 4  # through the link: the same output, resumed
    assert (tmp_path / "link.json").is_symlink() and not list(tmp_path.glob("*.lock"))


def test_a_kill_between_the_fold_and_the_journals_removal_duplicates_nothing(
    random_model, folder, tmp_path, monkeypatch
):
    out = tmp_path / "tags.json"
    real_unlink = Path.unlink

    def killed(self, *a, **kw):
        if self.name.endswith(".journal"):
            raise KeyboardInterrupt  # the run dies right after os.replace put the folded array in place
        return real_unlink(self, *a, **kw)

    monkeypatch.setattr(Path, "unlink", killed)
    assert (
        run_cli(["predict", folder, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]) == 130
    )  # interrupted
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert len(json.loads(out.read_text())) == 3 and (tmp_path / "tags.json.journal").exists()
    assert run_cli(["predict", folder, "--model", random_model, "-o", out, "--no-progress", "--processes", "1"]) == 0
    rows = json.loads(out.read_text())
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.iterdir())  # each file once
    assert not (tmp_path / "tags.json.journal").exists()


def test_json_never_holds_nan(tmp_path):
    from genrekit.prediction import Prediction

    odd = Prediction("x.wav", 3.0, {"a": float("nan"), "b": 0.5}, [], "m", confident=False)
    writer = _JsonArrayFile(tmp_path / "x.json", retry_failed=True, top_k=2, windows=False, timeline=None)
    writer.write("x.wav", odd)
    writer.close()
    row = json.loads((tmp_path / "x.json").read_text())[0]  # strict: a NaN would not parse as JSON numbers do
    assert row["error"] and "NaN" not in (tmp_path / "x.json").read_text()
