"""genrekit tag: genres written into real files of every container, safely, journalled, undoable."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import SR, labelled_clip
from tag_library import CONTAINERS, decoded, ffmpeg_tags, write_container

from genrekit.cli import main
from genrekit.errors import GenrekitError
from genrekit.tagging.containers import TagError, open_tags
from genrekit.tagging.decide import GenreMap, Rules, decide
from genrekit.tagging.safe import Journal, read_journal, temp_path, undo_journal, write_tags

GENREKIT_FIELDS = ("genrekit_genre", "genrekit_probability", "genrekit_model", "genrekit_model_sha256")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Default journals and state go to a folder of the test, never into the home folder."""
    monkeypatch.setenv("GENREKIT_CACHE", str(tmp_path / "cache"))


def _make(name: str, folder: Path, *, seed: int = 1, stem: str | None = None, seconds: float = 3.0) -> Path:
    path = write_container(name, folder, labelled_clip("bass", seed, seconds), SR, stem=stem)
    if isinstance(path, str):
        pytest.skip(path)
    return path


def tag(capsys, *args) -> tuple[int, str, str]:
    """Run ``genrekit tag ARGS`` in this process: exit status, stdout, stderr."""
    with pytest.raises(SystemExit) as exit_:
        main(["tag", *map(str, args)])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def rows(path: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in json.loads(path.read_text())}


# ----------------------------------------------------------------------------- containers


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_every_container_gets_the_genre_and_keeps_its_audio(tmp_path, name):
    path = _make(name, tmp_path)
    before = decoded(path)
    diffs = write_tags(
        path,
        {"genre": ["Jazz", "Blues"], "genrekit_probability": ["0.8123"], "style": ["electronic", "dance"]},
        journal=None,
    )
    assert set(diffs) == {"genre", "genrekit_probability", "style"}
    again = open_tags(path)
    assert again.get("genre") == ["Jazz", "Blues"]  # multi-valued in every format
    assert again.get("genrekit_probability") == ["0.8123"] and again.get("style") == ["electronic", "dance"]
    seen = ffmpeg_tags(path)  # what players built on FFmpeg read
    assert seen["GENRE"].split(";")[0] == "Jazz" and seen["GENREKIT_PROBABILITY"] == "0.8123"
    after = decoded(path)
    assert len(after) == len(before) > 0 and np.array_equal(before, after)
    assert not temp_path(path).exists()


def test_fields_can_be_removed_and_other_tags_stay(tmp_path):
    path = _make("flac", tmp_path)
    write_tags(path, {"artist": ["Ann"], "genre": ["Pop"]}, journal=None)
    write_tags(path, {"genre": None}, journal=None)
    assert open_tags(path).read() == {"artist": ["Ann"]}


def test_unsupported_and_broken_files_are_clear_errors(tmp_path):
    au = tmp_path / "a.au"
    import soundfile as sf

    sf.write(au, labelled_clip("bass", 0, 1.0), SR, format="AU")
    with pytest.raises(TagError, match="cannot write tags into"):
        open_tags(au)
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"fLaC" + b"\x00\x00\x00\x22" + os.urandom(40))
    with pytest.raises(TagError, match="broken"):
        open_tags(broken)


def test_read_only_file_is_refused_and_left_alone(tmp_path):
    path = _make("mp3", tmp_path)
    path.chmod(0o444)
    data = path.read_bytes()
    with pytest.raises(TagError, match="read-only"):
        write_tags(path, {"genre": ["Rock"]}, journal=None)
    assert path.read_bytes() == data


def test_a_failed_rename_leaves_the_old_file_and_no_copy(tmp_path, monkeypatch):
    path = _make("ogg_vorbis", tmp_path)
    data = path.read_bytes()

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(TagError, match="nothing was changed"):
        write_tags(path, {"genre": ["Rock"]}, journal=None)
    assert path.read_bytes() == data and not temp_path(path).exists()


def test_permissions_kept_and_a_stale_copy_replaced(tmp_path):
    path = _make("wav", tmp_path)
    path.chmod(0o640)
    temp_path(path).write_bytes(b"left by a killed run")
    write_tags(path, {"genre": ["Rock"]}, journal=None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert open_tags(path).get("genre") == ["Rock"] and not temp_path(path).exists()


def test_journal_and_undo_restore_every_field(tmp_path):
    a, b = _make("mp3", tmp_path, stem="a"), _make("m4a_aac", tmp_path, stem="b")
    write_tags(a, {"genre": ["Soundtrack"], "title": ["Intro"]}, journal=None)
    originals = {p: open_tags(p).read() for p in (a, b)}
    with Journal(tmp_path / "j.jsonl") as j:
        write_tags(a, {"genre": ["Jazz"], "genrekit_probability": ["0.9"]}, journal=j)
        write_tags(a, {"genre": ["Blues"]}, journal=j)  # a field changed twice: undo goes back to the first
        write_tags(b, {"genre": ["Rock"]}, journal=j)
    lines = list(read_journal(tmp_path / "j.jsonl"))
    assert [(Path(e["path"]).name, e["field"], e["old"], e["new"]) for e in lines] == [
        ("a.mp3", "genre", ["Soundtrack"], ["Jazz"]),
        ("a.mp3", "genrekit_probability", None, ["0.9"]),
        ("a.mp3", "genre", ["Jazz"], ["Blues"]),
        ("b.m4a", "genre", None, ["Rock"]),
    ]
    with open(tmp_path / "j.jsonl", "a") as f:
        f.write('{"path": "/x", "fie')  # a line cut by a kill is ignored
    result = undo_journal(tmp_path / "j.jsonl", journal=None)
    assert not result.errors and result.fields == 3
    assert {p: open_tags(p).read() for p in (a, b)} == originals


def test_undo_refuses_what_is_not_a_journal(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"path": "a"}\n')
    with pytest.raises(TagError, match="not a genrekit tag journal"):
        list(read_journal(tmp_path / "x.jsonl"))


# ----------------------------------------------------------------------------- rules


def _decide(current, *, mode="keep", p=0.9, label="hiphop", no_music=None, **kw):
    return decide(
        current=current,
        label=label,
        probability=p,
        no_music=no_music,
        rules=Rules(mode=mode, **kw),
        model="m.pt",
        model_sha256="abc",
    )


def test_rules_keep_replace_add_and_confidence():
    assert _decide({}).changes["genre"] == ["Hip-Hop"]
    keep = _decide({"genre": ["Trip-Hop"]})
    assert keep.action == "skip" and "has a genre already, kept" in keep.reason
    assert _decide({"genre": ["Trip-Hop"]}, mode="replace").changes["genre"] == ["Hip-Hop"]
    assert _decide({"genre": ["Trip-Hop"]}, mode="add").changes["genre"] == ["Trip-Hop", "Hip-Hop"]
    ours = {"genre": ["Jazz"], "genrekit_genre": ["Jazz"]}  # what genrekit wrote is genrekit's to change
    assert _decide(ours).changes["genre"] == ["Hip-Hop"]
    assert _decide({"genre": ["Trip-Hop", "Jazz"], "genrekit_genre": ["Jazz"]}, mode="add").changes["genre"] == [
        "Trip-Hop",
        "Hip-Hop",
    ]
    low = _decide({}, p=0.3, min_confidence=0.5)
    assert low.action == "skip" and "0.30 is below --min-confidence 0.5" in low.reason
    assert _decide({}, no_music="silence").reason == "no music detected (silence)"
    done = _decide({}).changes
    assert _decide(done).action == "unchanged"
    assert done["genrekit_model"] == ["m.pt"] and done["genrekit_model_sha256"] == ["abc"]


def test_genre_map_files(tmp_path):
    (tmp_path / "map.txt").write_text("# mine\nhiphop = Hip Hop\nmetal=Heavy Metal\n")
    m = GenreMap.load(tmp_path / "map.txt")
    assert (m("hiphop"), m("metal"), m("jazz"), m("techno")) == ("Hip Hop", "Heavy Metal", "Jazz", "techno")
    (tmp_path / "map.json").write_text('{"rock": "Rock & Roll"}')
    assert GenreMap.load(tmp_path / "map.json")("rock") == "Rock & Roll"
    (tmp_path / "bad.txt").write_text("hiphop\n")
    with pytest.raises(GenrekitError, match="line 1"):
        GenreMap.load(tmp_path / "bad.txt")


# ----------------------------------------------------------------------------- the command


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    for i, name in enumerate(("mp3", "flac", "m4a_aac", "ogg_vorbis")):
        _make(name, lib / "album", seed=i, stem=f"{i:02d} {name}")
    return lib


def test_without_write_nothing_changes_and_the_rows_say_what_would(capsys, library, tmp_path):
    before = {p: p.read_bytes() for p in library.rglob("*.*")}
    rc, out, err = tag(capsys, library, "--min-confidence", "0", "-o", tmp_path / "rows.json")
    assert rc == 0
    assert {p: p.read_bytes() for p in library.rglob("*.*")} == before
    r = rows(tmp_path / "rows.json")
    assert len(r) == 4 and {x["action"] for x in r.values()} == {"would write"}
    assert all(x["genre_now"] == "" and x["genre_new"] in GenreMap().names.values() for x in r.values())
    assert "would write 4" in err and "(no genre) -> " in out


def test_write_then_rerun_then_undo(capsys, library, tmp_path):
    first = library / "album" / "00 mp3.mp3"
    write_tags(first, {"genre": ["Trip-Hop"], "artist": ["Ann"], "title": ["One"]}, journal=None)
    originals = {p: open_tags(p).read() for p in library.rglob("*.*")}
    journal = tmp_path / "j.jsonl"
    rc, out, err = tag(
        capsys, library, "--write", "--min-confidence", "0", "--journal", journal, "-o", tmp_path / "rows.csv"
    )
    assert rc == 0 and "written 3" in err and "skipped 1" in err and "predicted 4" in err
    assert "[Ann – One]" in out and "Trip-Hop -> " in out  # the genre it has, the one it would get
    for p in library.rglob("*.*"):
        t = open_tags(p).read()
        if p == first:  # --mode keep: a genre someone set stays
            assert t == originals[p]
            continue
        assert t["genre"] == t["genrekit_genre"] and t["genrekit_model"] == ["musicnn-gtzan.pt"]
        assert float(t["genrekit_probability"][0]) > 0 and len(t["genrekit_model_sha256"][0]) == 64
    import csv

    with open(tmp_path / "rows.csv") as f:
        assert sorted(r["action"] for r in csv.DictReader(f)) == ["skipped", "written", "written", "written"]
    rc, out, err = tag(capsys, library, "--write", "--min-confidence", "0", "--journal", tmp_path / "j2.jsonl")
    assert "written 0, unchanged 3, skipped 1" in err and "predicted 0, reused 4" in err  # nothing to look at again
    rc, out, err = tag(capsys, library, "--write", "--mode", "replace", "--min-confidence", "0", "--journal", journal)
    assert "written 1" in err and "predicted 0" in err
    rc, out, err = tag(capsys, "--undo", journal, "--journal", tmp_path / "undo.jsonl")
    assert rc == 0 and "restored 4 file(s), failed 0" in err
    assert {p: open_tags(p).read() for p in library.rglob("*.*")} == originals


def test_a_changed_file_is_predicted_again(capsys, library, tmp_path):
    state = tmp_path / "state.jsonl"
    tag(capsys, library, "--state", state)
    p = library / "album" / "01 flac.flac"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    rc, out, err = tag(capsys, library, "--state", state)
    assert "predicted 1, reused 3" in err


def test_bad_files_get_error_rows_and_the_batch_goes_on(capsys, library, tmp_path):
    import soundfile as sf

    sf.write(library / "x.au", labelled_clip("bass", 0, 2.0), SR, format="AU")
    (library / "broken.flac").write_bytes(b"fLaC" + b"\x00\x00\x00\x22" + os.urandom(40))
    ro = library / "album" / "00 mp3.mp3"
    ro.chmod(0o444)
    rc, out, err = tag(
        capsys,
        library,
        "--write",
        "--min-confidence",
        "0",
        "--journal",
        tmp_path / "j.jsonl",
        "-o",
        tmp_path / "rows.json",
    )
    assert rc == 1  # a file failed
    r = rows(tmp_path / "rows.json")
    assert "cannot write tags into" in r["x.au"]["reason"] and "broken" in r["broken.flac"]["reason"]
    assert "read-only" in r["00 mp3.mp3"]["reason"]
    assert {n: x["action"] for n, x in r.items()} == {
        "x.au": "error",
        "broken.flac": "error",
        "00 mp3.mp3": "error",
        "01 flac.flac": "written",
        "02 m4a_aac.m4a": "written",
        "03 ogg_vorbis.ogg": "written",
    }


def test_min_confidence_and_genre_map(capsys, library, tmp_path):
    rc, out, err = tag(capsys, library, "--write", "--min-confidence", "1", "-o", tmp_path / "rows.json")
    assert all(
        x["action"] == "skipped" and "below --min-confidence 1" in x["reason"]
        for x in rows(tmp_path / "rows.json").values()
    )
    assert all(not open_tags(p).read() for p in library.rglob("*.*"))
    mapping = tmp_path / "names.json"
    mapping.write_text(json.dumps({g: f"GK {g}" for g in GenreMap().names}))
    tag(capsys, library, "--write", "--min-confidence", "0", "--genre-map", mapping)
    assert all(open_tags(p).get("genre")[0].startswith("GK ") for p in library.rglob("*.*"))


def test_options_that_do_not_fit(capsys, tmp_path, library):
    assert tag(capsys)[0] == 2
    rc, _, err = tag(capsys, library, "-o", tmp_path / "nowhere" / "x.csv")
    assert rc == 2 and "does not exist" in err
    rc, _, err = tag(capsys, library, "--write-styles")
    assert rc == 2 and "--write" in err


# ----------------------------------------------------------------------------- albums


def test_one_genre_per_album_from_the_mean_of_its_tracks(capsys, tmp_path):
    from genrekit.predictor import Predictor
    from genrekit.tagging.engine import album_probabilities
    from genrekit.tagging.state import Record

    lib = tmp_path / "lib"
    a = [_make("flac", lib / "a", seed=s, stem=f"t{s}") for s in range(3)]
    b = [_make("flac", lib / "b", seed=10 + s, stem=f"t{s}") for s in range(2)]
    b.append(_make("flac", lib / "elsewhere", seed=20, stem="t9"))
    for p in b:  # an album tag brings a track from another folder into its album
        write_tags(p, {"album": ["Bee"], "albumartist": ["B"]}, journal=None)
    tag(capsys, lib, "--write", "--per", "album", "--min-confidence", "0", "--mode", "replace")
    predictor = Predictor.load()
    for tracks in (a, b):
        probs = [predictor.predict_file(p).probabilities for p in tracks]
        mean, _ = album_probabilities([Record(0, 0, "", q) for q in probs])
        expected = GenreMap()(max(mean, key=mean.get))
        assert {open_tags(p).get("genre")[0] for p in tracks} == {expected}
        got = float(open_tags(tracks[0]).get("genrekit_probability")[0])
        assert got == pytest.approx(max(mean.values()), abs=1e-4)


# ----------------------------------------------------------------------------- styles


def test_styles_are_the_msd_tags_and_change_no_genre(capsys, tmp_path):
    from genrekit.features.musicnn_tags import MSD_TAGS
    from genrekit.predictor import Predictor
    from genrekit.tagging.styles import predict_with_styles

    path = _make("flac", tmp_path, seconds=7.0)
    predictor = Predictor.load()
    prediction, styles = predict_with_styles(predictor, path)
    assert list(styles) == list(MSD_TAGS) and all(0 <= p <= 1 for p in styles.values())
    assert prediction.probabilities == predictor.predict_file(path).probabilities
    rc, out, err = tag(
        capsys, path, "--styles", "--style-threshold", "0", "--write", "--write-styles", "--min-confidence", "0"
    )
    top = sorted(styles, key=styles.get, reverse=True)[:5]
    assert open_tags(path).get("style") == top and f"styles: {'; '.join(top)}" in out


def test_styles_need_a_musicnn_model(capsys, tmp_path, random_model):
    path = _make("flac", tmp_path)
    rc, _, err = tag(capsys, path, "--styles", "--model", random_model)
    assert rc == 2 and "styles come from the musicnn MSD tagger" in err


def test_two_runs_never_share_a_state(tmp_path):
    from genrekit.tagging.state import State

    first = State(tmp_path / "state.jsonl")
    with pytest.raises(GenrekitError, match="another genrekit tag run"):
        State(tmp_path / "state.jsonl")
    first.close()
    State(tmp_path / "state.jsonl").close()


def test_a_journal_cut_by_a_kill_goes_on_cleanly(tmp_path):
    path = _make("flac", tmp_path)
    with Journal(tmp_path / "j.jsonl") as j:
        write_tags(path, {"genre": ["Jazz"]}, journal=j)
    with open(tmp_path / "j.jsonl", "a") as f:
        f.write('{"path": "/x", "fie')  # the kill came while this line was written: its change was never made
    with Journal(tmp_path / "j.jsonl") as j:
        write_tags(path, {"genre": ["Rock"]}, journal=j)
    assert [e["new"] for e in read_journal(tmp_path / "j.jsonl")] == [["Jazz"], ["Rock"]]
    undo_journal(tmp_path / "j.jsonl", journal=None)
    assert open_tags(path).read() == {}


def test_wavpack_and_musepack_are_found_in_folders(capsys, tmp_path):
    lib = tmp_path / "lib"
    _make("wavpack", lib)
    made = [lib / "track.wv"]
    if not isinstance(write_container("musepack", lib, labelled_clip("bass", 2, 3.0), SR), str):
        made.append(lib / "track.mpc")
    rc, out, err = tag(capsys, lib, "--min-confidence", "0", "-o", tmp_path / "rows.json")
    assert rc == 0 and sorted(rows(tmp_path / "rows.json")) == sorted(p.name for p in made)
    assert {x["action"] for x in rows(tmp_path / "rows.json").values()} == {"would write"}


def test_tag_and_styles_need_no_training_extras(tmp_path):
    import subprocess
    import sys

    from test_runtime import BLOCK_TRAIN_MODULES

    path = _make("flac", tmp_path / "lib", seconds=4.0)
    code = (
        f"from genrekit.cli import main\nimport sys\nsys.argv = ['genrekit']\n"
        f"main(['tag', {str(tmp_path / 'lib')!r}, '--write', '--min-confidence', '0', '--styles', "
        f"'--journal', {str(tmp_path / 'j.jsonl')!r}, '--no-state'])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_TRAIN_MODULES + code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "written 1" in done.stderr and open_tags(path).get("genrekit_genre")
