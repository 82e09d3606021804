"""What the last runs predicted, so that a rerun predicts only the files that changed.

A file is looked at again when its size, its modification time or the model (by SHA-256) differ
from the record; otherwise its prediction is reused and only the rules are applied again (so a
rerun with another ``--mode`` costs no prediction). The state is a JSON Lines file, appended to
and fsynced after each file (a line cut by a kill is ignored), rewritten compactly at the end of
a run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from genrekit.errors import GenrekitError


@dataclass
class Record:
    """One file's prediction, with what identifies the file's content and the model."""

    size: int
    mtime_ns: int
    model_sha256: str
    probabilities: dict[str, float]
    no_music: str | None = None
    styles: dict[str, float] | None = None

    @property
    def label(self) -> str | None:
        return max(self.probabilities, key=self.probabilities.get) if self.no_music is None else None


def file_key(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class State:
    """The records of ``path`` (``None``: remember nothing).

    Raises
    ------
    GenrekitError
        the state file cannot be read or written
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path is not None else None
        self.records: dict[str, Record] = {}
        self._file = None
        if self.path is None:
            return
        try:
            if self.path.exists():
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        d = json.loads(line)
                        key = d.pop("path")
                        self.records[key] = Record(**d)
                    except (json.JSONDecodeError, TypeError, KeyError):
                        continue  # a line cut by a kill, or from another version: predicted again
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise GenrekitError(
                f"cannot use the state file '{self.path}' ({exc.strerror}); give another --state"
            ) from None
        try:
            import fcntl
        except ImportError:  # no flock on this system: one run at a time is the user's care
            return
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the file is closed
        except BlockingIOError:
            self._file.close()
            raise GenrekitError(
                f"another genrekit tag run uses '{self.path}'; wait for it to end, or give another --state"
            ) from None

    def get(self, path: Path, model_sha256: str, *, styles: bool = False) -> Record | None:
        """The record of ``path`` if the file and the model are the ones it was made from."""
        r = self.records.get(str(path))
        try:
            same = r is not None and (r.size, r.mtime_ns) == file_key(path) and r.model_sha256 == model_sha256
        except OSError:
            return None
        return r if same and (r.styles is not None or not styles) else None

    def put(self, path: Path, record: Record) -> None:
        self.records[str(path)] = record
        if self._file is not None:
            self._file.write(json.dumps({"path": str(path), **asdict(record)}) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())

    def refresh(self, path: Path) -> None:
        """Take the file's new size and time after genrekit wrote its tags (its audio is the same)."""
        r = self.records.get(str(path))
        if r is not None:
            r.size, r.mtime_ns = file_key(path)
            self.put(path, r)

    def close(self) -> None:
        """Rewrite the file with one line per path (atomically), and close it."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"path": p, **asdict(r)}) + "\n" for p, r in self.records.items())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
