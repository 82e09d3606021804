"""What the command line shows on stderr while it works: a progress bar over seconds of audio, and
decoders kept quiet.

A bar counts seconds of audio (read from the files' headers in the background), so one long file
moves it too. C decoders (libmpg123 inside libsndfile) write their chatter straight to file
descriptor 2, between the results; :func:`decoder_messages_kept_off` sends it to a temporary file for
the run and says at the end how many lines were kept off (``--decoder-log`` keeps them).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genrekit.durations import clock


class AudioProgress:
    """A bar over the seconds of audio of ``paths`` on stderr; ``enabled=None``: when stderr is a terminal.

    Call :meth:`decoded` as audio is decoded (from any thread), :meth:`file_done` when a file ends,
    and :meth:`write` for anything printed to the terminal meanwhile, so that it never mixes with the bar.
    """

    def __init__(self, paths: list, *, enabled: bool | None = None, desc: str = "predict"):
        self.enabled = _is_terminal(sys.stderr) if enabled is None else enabled
        self.n_files, self.files, self.seconds = len(paths), 0, 0.0
        self.lock = threading.Lock()
        self.bar = None
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self.bar = tqdm(
            total=0.0,
            desc=desc,
            file=sys.stderr,
            leave=False,
            dynamic_ncols=True,
            bar_format="{desc}{postfix} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
        )
        self._postfix()
        threading.Thread(target=self._read_durations, args=(list(paths),), daemon=True).start()

    def _read_durations(self, paths: list) -> None:
        from genrekit.audio import duration_seconds

        for p in paths:
            seconds = duration_seconds(p) or 0.0
            with self.lock:
                self.bar.total += seconds

    def _postfix(self) -> None:
        total = clock(self.bar.total) if self.bar.total else "?"
        self.bar.set_postfix_str(
            f"{clock(self.seconds)} of {total} of audio, {self.files}/{self.n_files} files", refresh=False
        )

    def decoded(self, seconds: float) -> None:
        """``seconds`` more audio were decoded."""
        if self.bar is None:
            return
        with self.lock:
            self.seconds += seconds
            self._postfix()
            self.bar.update(seconds)

    def file_done(self, remaining_s: float = 0.0) -> None:
        """A file ended; ``remaining_s`` of it were counted in the total but never decoded."""
        self.files += 1
        if self.bar is not None:
            self.decoded(max(0.0, remaining_s))

    def write(self, write, *args) -> None:
        """Call ``write(*args)`` with the bar cleared, then draw it again."""
        if self.bar is None:
            write(*args)
            return
        with self.lock, self._tqdm.external_write_mode(file=sys.stdout):
            write(*args)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _fd(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


@contextmanager
def decoder_messages_kept_off(log: Path | None = None) -> Iterator[None]:
    """For the run: what C libraries write to file descriptor 2 goes to a temporary file (or ``log``),
    while Python's ``sys.stderr`` keeps the terminal; at the end one line says how much was kept off.

    Only the command line uses this: it changes the process's descriptor 2 while it runs.
    """
    keep = open(log, "w+b") if log is not None else tempfile.TemporaryFile()
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    own = _fd(sys.stderr) == 2  # else sys.stderr is already elsewhere (a test's capture): leave it
    if own:
        sys.stderr = open(
            saved,
            "w",
            buffering=1,
            closefd=False,
            encoding=python_stderr.encoding or "utf-8",
            errors="backslashreplace",
        )
    os.dup2(keep.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        if own:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.close(saved)
        keep.seek(0)
        lines = sum(1 for _ in keep)
        keep.close()
        if lines:
            where = f"in '{log}'" if log is not None else "--decoder-log FILE keeps them"
            print(f"note: {lines} line(s) of decoder messages were kept off the terminal ({where})", file=sys.stderr)
