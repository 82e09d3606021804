"""Changing a file's tags safely, with a journal of every change, and undoing a journal.

A file is never left half-written: its tags are written into a copy beside it (a hidden
``.<name>.genrekit-tmp``), the copy is read back and fsynced, the change goes into the journal
(fsynced), and only then is the copy renamed over the file (an atomic step), keeping its
permission bits and, where allowed, its owner. A ``kill -9`` at any moment leaves either the old
file or the new one, plus at most a stale copy that the next write of that file replaces. A hard
link to the file keeps the old content, as with any editor that saves by renaming.

The journal is JSON Lines: a header, then one ``{"path", "field", "old", "new"}`` line per changed
field (values are lists of strings, ``null`` when absent). ``undo_journal`` puts the old values
back (the oldest one of each field, when a journal changed a field twice).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from genrekit.tagging.containers import TagError, open_tags

JOURNAL_VERSION = 1
TEMP_SUFFIX = ".genrekit-tmp"

Changes = dict[str, list[str] | None]


def temp_path(path: Path) -> Path:
    """Where the copy of ``path`` is written before it replaces it."""
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


class Journal:
    """An append-only journal file; each :meth:`record` is on disk when it returns.

    Parameters
    ----------
    path : the journal (created, or appended to)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists() or self.path.stat().st_size == 0
            if not new:
                _cut_unfinished_line(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise TagError(f"cannot write the journal '{self.path}' ({exc.strerror}); give another --journal") from None
        self.created = new
        if new:
            self._write([{"journal": "genrekit tag", "version": JOURNAL_VERSION, "started": _now()}])
        self.changes = 0

    def record(self, path: Path, diffs: dict[str, tuple[list[str] | None, list[str] | None]]) -> None:
        """Write one line per changed field of ``path`` and fsync."""
        when = _now()
        self._write(
            [{"path": str(path), "field": f, "old": old, "new": new, "time": when} for f, (old, new) in diffs.items()]
        )
        self.changes += len(diffs)

    def _write(self, lines: list[dict]) -> None:
        self._file.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cut_unfinished_line(path: Path) -> None:
    """Drop a last line a killed run left unfinished: it records a change that was never made (the
    rename comes after the line is on disk)."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _check_writable(path: Path) -> os.stat_result:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise TagError(f"cannot read '{path}' ({exc.strerror})") from None
    # the owner's write bit counts even for root: a read-only file says "leave me as I am"
    if not st.st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):
        raise TagError(f"'{path}' is read-only; make it writable (chmod u+w) to tag it")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise TagError(f"the folder of '{path}' is read-only: genrekit writes a copy beside the file, then renames it")
    return st


def write_tags(path: str | os.PathLike, changes: Changes, *, journal: Journal | None) -> dict[str, tuple]:
    """Set the logical fields ``changes`` of ``path`` safely (see the module doc).

    Returns
    -------
    dict
        ``{field: (old, new)}`` for each field whose value changed (nothing is written when empty)

    Raises
    ------
    TagError
        the file is read-only, its tags are broken, its container is not supported, or writing failed
    """
    path = Path(path)
    st = _check_writable(path)
    current = open_tags(path)
    diffs = {}
    for f, new in changes.items():
        old = current.get(f) or None
        new = list(new) if new else None
        if old != new:
            diffs[f] = (old, new)
    if not diffs:
        return {}
    tmp = temp_path(path)
    try:
        shutil.copyfile(path, tmp)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except OSError:  # not allowed to give it away: it stays ours, as the file's copy would
            pass
        copy = open_tags(tmp)
        for f, (_, new) in diffs.items():
            copy.set(f, new)
        copy.save()
        check = open_tags(tmp)
        wrong = [f for f, (_, new) in diffs.items() if (check.get(f) or None) != new]
        if wrong:
            raise TagError(
                f"the tags written into '{path}' did not read back ({', '.join(wrong)}); nothing was changed"
            )
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if journal is not None:
            journal.record(path, diffs)
        os.replace(tmp, path)
    except OSError as exc:
        raise TagError(f"cannot write the tags of '{path}' ({exc.strerror or exc}); nothing was changed") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return diffs


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder
        pass
    finally:
        os.close(fd)


def read_journal(path: str | os.PathLike) -> Iterator[dict]:
    """The change lines of a journal, in order (a last line cut by a killed run is left out).

    Raises
    ------
    TagError
        the file cannot be read or is not a genrekit journal
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TagError(f"cannot read the journal '{path}' ({exc.strerror})") from None
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if header.get("journal") != "genrekit tag":
        raise TagError(f"'{path}' is not a genrekit tag journal (it should start with its header line)")
    for i, line in enumerate(lines[1:], start=2):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):
                return  # the last line of a killed run
            raise TagError(f"line {i} of the journal '{path}' is not JSON; the journal was edited or damaged") from None
        yield entry


@dataclass
class UndoResult:
    """What :func:`undo_journal` did, per file: the fields restored, or the error."""

    restored: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fields: int = 0  # fields the journal changed


def undo_journal(path: str | os.PathLike, *, journal: Journal | None) -> UndoResult:
    """Put back the values a journal replaced; its own changes go into ``journal``.

    A field already at its old value counts as restored, so undoing twice is harmless.
    """
    originals: dict[str, Changes] = {}
    for entry in read_journal(path):
        originals.setdefault(entry["path"], {}).setdefault(entry["field"], entry["old"])
    result = UndoResult(fields=sum(len(v) for v in originals.values()))
    for file, changes in originals.items():
        try:
            write_tags(file, changes, journal=journal)
            result.restored[file] = list(changes)
        except TagError as exc:
            result.errors[file] = str(exc)
    return result
