"""What ``genrekit predict`` and ``genrekit tag`` say around the genre: the artist, album and title
read from the tags, playlists per genre, and the files of the folders they ignored."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from conftest import labelled_clip, write_audio

from genrekit.cli import main
from genrekit.tagging.containers import open_tags


def run_cli(argv) -> int:
    try:
        main([os.fsdecode(a) if not isinstance(a, str) else a for a in argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@pytest.fixture
def named(tmp_path) -> Path:
    """A FLAC with its artist, album and title; a WAV without tags; a FLAC whose tags are broken."""
    d = tmp_path / "music"
    tagged = write_audio(d / "a.flac", labelled_clip("bass", 0, 4.0))
    tags = open_tags(tagged)
    for field, value in (("artist", "Ann Artist"), ("album", "First Album"), ("title", "Opening")):
        tags.set(field, [value])
    tags.save()
    write_audio(d / "b.wav", labelled_clip("hiss", 1, 4.0))
    return d


def test_names_are_in_every_output(random_model, named, tmp_path, capsys):
    base = ["predict", named, "--model", random_model, "--no-progress"]
    assert run_cli([*base, "-o", tmp_path / "t.csv"]) == 0
    rows = {Path(r["path"]).name: r for r in csv.DictReader(open(tmp_path / "t.csv"))}
    assert list(next(iter(rows.values())))[:5] == ["path", "artist", "album", "title", "genre"]
    assert (rows["a.flac"]["artist"], rows["a.flac"]["album"], rows["a.flac"]["title"]) == ("Ann Artist", "First Album", "Opening")
    assert rows["b.wav"]["artist"] == rows["b.wav"]["title"] == "" and rows["b.wav"]["genre"]  # no tags: empty, row whole
    for ext in ("json", "jsonl"):
        assert run_cli([*base, "-o", tmp_path / f"t.{ext}"]) == 0
        text = (tmp_path / f"t.{ext}").read_text()
        objs = json.loads(text) if ext == "json" else [json.loads(line) for line in text.splitlines()]
        by = {Path(o["path"]).name: o for o in objs}
        assert by["a.flac"]["title"] == "Opening" and by["b.wav"]["album"] == ""
        assert list(by["a.flac"])[:4] == ["path", "artist", "album", "title"]
    capsys.readouterr()
    assert run_cli(base) == 0
    out = capsys.readouterr().out
    assert f"{named / 'a.flac'}  [Ann Artist – Opening]  (0:04)" in out
    assert f"{named / 'b.wav'}  (0:04)" in out


def test_broken_tags_leave_the_names_empty_and_the_row_whole(random_model, named, tmp_path):
    broken = named / "c.flac"
    write_audio(broken, labelled_clip("treble", 2, 4.0))
    data = bytearray(broken.read_bytes())
    data[4:8] = b"\xff\xff\xff\xff"  # the first metadata block's header: mutagen cannot parse it
    broken.write_bytes(bytes(data))
    from genrekit.tagging.containers import read_names

    assert read_names(broken) == {"artist": "", "album": "", "title": ""}
    assert read_names(named / "missing.flac") == {"artist": "", "album": "", "title": ""}
