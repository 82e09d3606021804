"""What ``genrekit predict`` and ``genrekit tag`` say around the genre: the artist, album and title
read from the tags, playlists per genre, and the files of the folders they ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import csv_rows, labelled_clip, run_cli, write_audio

from genrekit.tagging.containers import open_tags


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
    base = ["predict", named, "--model", random_model, "--no-progress", "--processes", "1"]
    assert run_cli([*base, "-o", tmp_path / "t.csv"]) == 0
    rows = {Path(r["path"]).name: r for r in csv_rows(tmp_path / "t.csv")}
    assert list(next(iter(rows.values())))[:5] == ["path", "artist", "album", "title", "genre"]
    assert (rows["a.flac"]["artist"], rows["a.flac"]["album"], rows["a.flac"]["title"]) == (
        "Ann Artist",
        "First Album",
        "Opening",
    )
    assert (
        rows["b.wav"]["artist"] == rows["b.wav"]["title"] == "" and rows["b.wav"]["genre"]
    )  # no tags: empty, row whole
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


def _playlists(folder: Path) -> dict[str, list[str]]:
    return {
        p.name: [ln for ln in p.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
        for p in sorted(folder.glob("*.m3u8"))
    }


def _genres(csv_path: Path) -> dict[str, str]:
    """file name -> the playlist it belongs in, from the predict CSV."""
    want = {}
    for r in csv_rows(csv_path):
        if r["error"] or not r["genre"]:
            continue
        want[Path(r["path"]).name] = f"{r['genre']}.m3u8" if r["confident"] == "yes" else "unsure.m3u8"
    return want


def test_predict_playlists_hold_every_row_of_a_resumed_output(random_model, named, tmp_path, capsys):
    lists = tmp_path / "lists"
    lists.mkdir()
    (named / "broken.wav").write_bytes(b"RIFF not audio")
    out = tmp_path / "t.csv"
    base = ["predict", "--model", random_model, "-o", out, "--no-progress", "--playlists", lists, "--processes", "1"]
    assert run_cli([*base, named / "a.flac"]) == 0
    assert run_cli([*base, named]) == 1  # resumed: a.flac is skipped, broken.wav fails
    err = capsys.readouterr().err
    assert f"playlists in '{lists}'" in err
    got = _playlists(lists)
    want = _genres(out)
    assert len(want) == 2 and not any("broken" in line for v in got.values() for line in v)
    assert {Path(line).name: name for name, v in got.items() for line in v} == want
    for v in got.values():  # relative to the playlists' folder
        assert all(not Path(line).is_absolute() and (lists / line).resolve().is_file() for line in v)
    assert "#EXTINF:4,Ann Artist - Opening" in (lists / want["a.flac"]).read_text()
    assert not list(lists.glob(".*.tmp"))


def test_predict_playlists_on_the_terminal_and_a_missing_folder(random_model, named, tmp_path, capsys):
    lists = tmp_path / "lists"
    assert run_cli(["predict", named, "--model", random_model, "--playlists", lists, "--processes", "1"]) == 2
    assert "is not a folder; create it first" in capsys.readouterr().err
    lists.mkdir()
    assert (
        run_cli(["predict", named, "--model", random_model, "--no-progress", "--playlists", lists, "--processes", "1"])
        == 0
    )
    assert sum(len(v) for v in _playlists(lists).values()) == 2


def test_tag_playlists_use_the_names_it_writes(random_model, named, tmp_path, capsys):
    lists = tmp_path / "lists"
    lists.mkdir()
    argv = ["tag", named, "--model", random_model, "--no-state", "--min-confidence", "0", "--playlists", lists]
    assert run_cli(argv) == 0
    got = _playlists(lists)
    assert sum(len(v) for v in got.values()) == 2 and "unsure.m3u8" not in got
    (lists / "mine.m3u8").write_text("#EXTM3U\nsomewhere.mp3\n")
    assert run_cli([*argv[:-4], "--min-confidence", "1", "--playlists", lists]) == 0
    got = _playlists(lists)
    assert set(got) == {"unsure.m3u8", "mine.m3u8"} and len(got["unsure.m3u8"]) == 2  # ours of before: gone


def test_the_run_says_what_it_ignored_by_kind(random_model, named, tmp_path, capsys):
    (named / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (named / "album.cue").write_text("FILE a.flac WAVE")
    (named / "notes.txt").write_text("hello")
    (named / "sub").mkdir()
    (named / "sub" / "more.txt").write_text("x")
    assert (
        run_cli(
            ["predict", named, "--model", random_model, "--no-progress", "-o", tmp_path / "t.csv", "--processes", "1"]
        )
        == 0
    )
    assert "ignored 4 files (not audio): 2 .txt, 1 .cue, 1 .png" in capsys.readouterr().err
    assert run_cli(["tag", named, "--model", random_model, "--no-state"]) == 0
    assert "ignored 4 files (not audio): 2 .txt, 1 .cue, 1 .png" in capsys.readouterr().err
    assert run_cli(["predict", named / "a.flac", "--model", random_model, "--no-progress", "--processes", "1"]) == 0
    assert "ignored" not in capsys.readouterr().err  # a file named is never ignored


@pytest.mark.slow
def test_styles_in_every_predict_output(gtzan_root, tmp_path, capsys):
    """The musicnn MSD tags of the bundled model, computed in the same pass, as the tag command has them."""
    from genrekit.predictor import Predictor
    from genrekit.tagging.styles import predict_with_styles

    clip = gtzan_root / "genres_original" / "jazz" / "jazz.00000.ogg"
    predictor = Predictor.load(None)
    p = predictor.predict_file(clip, styles=True)
    assert len(p.styles) == 50 and all(0.0 <= v <= 1.0 for v in p.styles.values())
    assert p.probabilities == predictor.predict_file(clip).probabilities  # the genres are the same
    assert predict_with_styles(predictor, clip)[1] == p.styles
    want = sorted((t for t, v in p.styles.items() if v >= 0.1), key=lambda t: -p.styles[t])
    base = ["predict", clip, "--styles", "--style-threshold", "0.1", "--no-progress", "--processes", "1"]
    assert run_cli([*base, "-o", tmp_path / "t.csv"]) == 0
    row = csv_rows(tmp_path / "t.csv")[0]
    assert [cell.split(":")[0] for cell in row["styles"].split(";")] == want
    assert run_cli([*base, "-o", tmp_path / "t.json"]) == 0
    assert [s["style"] for s in json.loads((tmp_path / "t.json").read_text())[0]["styles"]] == want
    capsys.readouterr()
    assert run_cli(base) == 0
    assert f"  styles: {want[0]} " in capsys.readouterr().out
    assert run_cli(["predict", clip, "--no-progress", "-o", tmp_path / "plain.csv", "--processes", "1"]) == 0
    assert csv_rows(tmp_path / "plain.csv")[0]["styles"] == ""  # not asked: not computed


def test_styles_of_a_model_without_them_is_one_error(random_model, named, capsys):
    assert run_cli(["predict", named, "--model", random_model, "--styles", "--no-progress", "--processes", "1"]) == 2
    assert "styles come from the musicnn MSD tagger" in capsys.readouterr().err


def test_genrekit_models_says_what_the_styles_are_with_the_measured_figures(capsys):
    from genrekit.tagging.styles import MEASURED

    summary = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/summary.json").read_text())
    assert {k: summary[k] for k in MEASURED} == MEASURED  # the figures shown are the benchmark's
    assert run_cli(["models"]) == 0
    out = capsys.readouterr().out
    musicnn = out.split("musicnn-gtzan.pt")[1].split("gknet-gtzan.pt")[0]
    assert "styles (--styles): the 50 tags of musicnn's MSD tagger" in musicnn and "Pons & Serra 2019" in musicnn
    assert f"GTZAN mean {MEASURED['styles_gtzan_mean_auc']:.3f}" in musicnn
    assert "styles" not in out.split("gknet-gtzan.pt")[1].split("musicnn weights")[0]  # a model without them


def test_ray_rows_carry_the_names_and_give_playlists(random_model, named, tmp_path):
    """What an actor of --engine ray returns for a file (tag_file, then the typed row), written as
    the driver writes it: a Parquet partition, then tags.csv; the playlists are made from tags.csv."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from genrekit.predictor import Predictor
    from genrekit.tagging.core import Limits, tag_file
    from genrekit.tagging.playlists import entry, output_rows, write_playlists
    from genrekit.tagging.ray_engine import export_csv
    from genrekit.tagging.rows import CSV_FIELDS, parquet_row, parquet_schema
    from genrekit.tagging.scan import LibraryItem

    predictor = Predictor.load(random_model)
    items = [LibraryItem(named / "a.flac"), LibraryItem(named / "b.wav"), LibraryItem(named / "gone.wav", "it is gone")]
    rows = [parquet_row(str(i.path), tag_file(predictor, i, limits=Limits()), 3) for i in items]
    out = tmp_path / "ray"
    out.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=parquet_schema()), out / "part-x-000000.parquet")
    cells = {Path(r["path"]).name: r for r in csv_rows(export_csv(out))}
    assert list(cells["a.flac"]) == CSV_FIELDS
    assert (cells["a.flac"]["artist"], cells["a.flac"]["title"], cells["b.wav"]["artist"]) == (
        "Ann Artist",
        "Opening",
        "",
    )
    assert cells["gone.wav"]["error"] == "it is gone"
    lists = tmp_path / "lists"
    lists.mkdir()
    counts = write_playlists(lists, map(entry, output_rows(out / "tags.csv", "csv")))
    assert sum(counts.values()) == 2  # the error row is in none
