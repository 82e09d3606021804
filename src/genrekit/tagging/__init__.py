"""Tags in the files: ``genrekit tag`` predicts the genre of music files and writes it into their
tags safely (journalled, undoable), per file or per album, with the musicnn styles beside it.

- :mod:`~genrekit.tagging.containers`: the tags of every supported container, through mutagen;
- :mod:`~genrekit.tagging.safe`: writing a copy and renaming it over, the journal, undo;
- :mod:`~genrekit.tagging.decide`: the genre names and the rules (mode, minimum confidence);
- :mod:`~genrekit.tagging.state`: past predictions, so that a rerun predicts only what changed;
- :mod:`~genrekit.tagging.engine`: the run; :mod:`~genrekit.tagging.command`: its command line;
- :mod:`~genrekit.tagging.styles`: the 50 MSD tags of the musicnn backbone.
"""
from __future__ import annotations

__all__ = ["run_tag", "write_tags", "undo_journal", "open_tags", "Rules", "GenreMap"]


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
    if name in ("Rules", "GenreMap"):
        from genrekit.tagging import decide

        return getattr(decide, name)
    raise AttributeError(name)
