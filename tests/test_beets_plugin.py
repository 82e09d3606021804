"""The beets plugin, against real beets: a temporary library, files imported, the command run,
the database and the files' tags checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SR, labelled_clip
from tag_library import write_container

from genrekit.tagging.containers import open_tags

pytest.importorskip("beets")
pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[1] / "src"


def _beets(tmp_path: Path, config: str):
    """A beets home with ``config``; a function running ``beet ARGS`` there."""
    home = tmp_path / "beetsdir"
    home.mkdir()
    (home / "config.yaml").write_text(
        f"directory: {tmp_path / 'music'}\nlibrary: {home / 'library.db'}\nplugins: [genrekit]\n" + config
    )
    env = {
        **os.environ,
        "BEETSDIR": str(home),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "GENREKIT_CACHE": str(tmp_path / "cache"),
    }

    def beet(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "beets", *args], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    return beet, home / "library.db"


def _items(db: Path):
    from beets.library import Library

    lib = Library(str(db))
    return {Path(os.fsdecode(i.path)).name: i for i in lib.items()}


def _genres(item) -> list[str]:
    return list(item.genres) if "genres" in type(item)._fields else [item.genre]


def _album(folder: Path) -> list[Path]:
    paths = [
        write_container(n, folder, labelled_clip("bass", s, 4.0), SR, stem=f"{s:02d}")
        for s, n in enumerate(("flac", "mp3", "ogg_vorbis"))
    ]
    from genrekit.tagging.safe import write_tags

    for i, p in enumerate(paths):
        write_tags(p, {"album": ["Bee"], "artist": ["B"], "title": [f"t{i}"]}, journal=None)
    return paths


def test_import_with_auto_tags_the_album_and_writes_the_files(tmp_path):
    beet, db = _beets(
        tmp_path,
        "import: {write: yes, copy: no, autotag: no, quiet: yes}\n"
        "genrekit: {auto: yes, per: album, min_confidence: 0.0}\n",
    )
    paths = _album(tmp_path / "in" / "bee")
    beet("import", str(tmp_path / "in" / "bee"))
    items = _items(db)
    assert set(items) == {p.name for p in paths}
    genres = {_genres(i)[0] for i in items.values()}
    assert len(genres) == 1 and genres <= {
        "Blues",
        "Classical",
        "Country",
        "Disco",
        "Hip-Hop",
        "Jazz",
        "Metal",
        "Pop",
        "Reggae",
        "Rock",
    }  # one genre per album
    for p in paths:
        item = items[p.name]
        assert item["genrekit_genre"] == _genres(item)[0] and item["genrekit_model"] == "musicnn-gtzan.pt"
        assert 0 < float(item["genrekit_probability"]) <= 1 and len(item["genrekit_model_sha256"]) == 64
        tags = open_tags(p).read()  # beets wrote the files (import.write), under genrekit tag's names
        assert tags["genre"] == _genres(item) and tags["genrekit_genre"] == [item["genrekit_genre"]]
        assert tags["genrekit_model_sha256"] == [item["genrekit_model_sha256"]]


def test_command_honours_write_and_mode(tmp_path):
    beet, db = _beets(
        tmp_path,
        "import: {write: no, copy: no, autotag: no, quiet: yes}\n"
        "genrekit: {min_confidence: 0.0, styles: yes, style_threshold: 0.0}\n",
    )
    paths = _album(tmp_path / "in" / "bee")
    from genrekit.tagging.safe import write_tags

    write_tags(paths[0], {"genre": ["Trip-Hop"]}, journal=None)
    beet("import", str(tmp_path / "in" / "bee"))
    assert "genrekit_genre" not in next(iter(_items(db).values()))  # auto is off
    before = {p: p.read_bytes() for p in paths}
    out = beet("-v", "genrekit")
    items = _items(db)
    assert _genres(items[paths[0].name]) == ["Trip-Hop"]  # mode keep
    assert "genrekit_genre" not in items[paths[0].name]
    for p in paths[1:]:
        assert _genres(items[p.name]) == [items[p.name]["genrekit_genre"]]
        assert len(items[p.name]["genrekit_styles"].split(", ")) == 5
    assert {p: p.read_bytes() for p in paths} == before  # import.write is off: the files stay as they are
    assert "has a genre already, kept" in out
    beet("genrekit", "-m", "add")
    item = _items(db)[paths[0].name]
    assert _genres(item) == ["Trip-Hop", item["genrekit_genre"]]
