"""A music library's files, one row each (``genrekit predict``), and the genre written into the files
(``genrekit tag``).

The data flow of ``predict``: :mod:`~genrekit.tagging.scan` (the inputs; what is ignored, counted)
→ :func:`~genrekit.tagging.core.tag_file` (one file → its prediction with artist, album, title and
styles, or its error; never raised), called by both engines, :mod:`~genrekit.tagging.local`
(threads) and :mod:`~genrekit.tagging.ray_engine` (Ray Data) → :mod:`~genrekit.tagging.rows` (the
one row schema: CSV, Parquet, JSON lines, the table) → :mod:`genrekit.outputs` (resumable files)
and :mod:`~genrekit.tagging.playlists`. Its options: :mod:`~genrekit.tagging.predict_command`.

``tag`` predicts through the same :func:`~genrekit.tagging.core.tag_file`, then writes safely
(journalled, undoable), per file or per album, with the musicnn styles beside the genre:

- :mod:`~genrekit.tagging.containers`: the tags of every supported container, through mutagen;
- :mod:`~genrekit.tagging.safe`: writing a copy and renaming it over, the journal, undo;
- :mod:`~genrekit.tagging.decide`: the genre names and the rules (mode, minimum confidence);
- :mod:`~genrekit.tagging.state`: past predictions, so that a rerun predicts only what changed;
- :mod:`~genrekit.tagging.engine`: the run; :mod:`~genrekit.tagging.command`: its command line;
- :mod:`~genrekit.tagging.tracks`: the run's files with their tags and predictions;
- :mod:`~genrekit.tagging.styles`: the 50 MSD tags of the musicnn backbone.
"""

from __future__ import annotations

__all__ = ["GenreMap", "Rules", "open_tags", "run_library", "run_tag", "tag_file", "undo_journal", "write_tags"]


def __getattr__(name: str):
    # light on import: the command line reads the options without loading mutagen or numpy
    if name == "run_tag":
        from genrekit.tagging.engine import run_tag

        return run_tag
    if name in ("write_tags", "undo_journal"):
        from genrekit.tagging import safe

        return getattr(safe, name)
    if name == "open_tags":
        from genrekit.tagging.containers import open_tags

        return open_tags
    if name == "run_library":
        from genrekit.tagging.local import run_library

        return run_library
    if name == "tag_file":
        from genrekit.tagging.core import tag_file

        return tag_file
    if name in ("Rules", "GenreMap"):
        from genrekit.tagging import decide

        return getattr(decide, name)
    raise AttributeError(name)
