"""One run at a time on an output file (``<output>.lock``, taken on the resolved path), and one clear
line for an error met writing it. This module is light (no numpy, no torch).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from genrekit.errors import GenrekitError

__all__ = ["output_error", "output_lock"]


def output_error(exc: OSError, path: Path) -> GenrekitError:
    """One clear line for an OSError met writing ``path``, saying what to do."""
    hints = {
        "ENOSPC": "free some space and run again: the rows written so far are kept",
        "EDQUOT": "free some space and run again: the rows written so far are kept",
        "EACCES": "check the permissions of the file and its folder, or give another --output",
        "EPERM": "check the permissions of the file and its folder, or give another --output",
        "EROFS": "the file system is read-only: give another --output",
        "ENAMETOOLONG": "give a shorter --output name",
        "ENOENT": "check that its folder exists",
    }
    hint = hints.get(errno.errorcode.get(exc.errno or 0, ""), "check the path, or give another --output")
    return GenrekitError(f"cannot write '{path}' ({exc.strerror or exc}); {hint}")


@contextmanager
def output_lock(path: Path | None) -> Iterator[Path | None]:
    """Hold ``<path>.lock`` (``path`` resolved) for this run, and remove it when the run ends.

    Yields the resolved path, which the run writes (``None`` for the terminal).

    Raises
    ------
    GenrekitError
        another run holds it, ``path`` is a folder, or its folder does not exist
    """
    if path is None:
        yield None
        return
    path = Path(os.path.realpath(path))
    if path.is_dir():
        raise GenrekitError(f"the output '{path}' is a folder; give a file name")
    if not path.parent.is_dir():
        raise GenrekitError(
            f"the folder of the output, '{path.parent}', does not exist; create it first "
            f"(mkdir -p '{path.parent}') or give another --output"
        )
    try:
        import fcntl
    except ImportError:  # Windows: runs are not guarded
        yield path
        return
    lock_path = path.with_name(path.name + ".lock")
    while True:
        try:
            lock = open(lock_path, "a+")  # noqa: SIM115 (held for the run, closed below)
        except OSError as exc:
            raise output_error(exc, lock_path) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            lock.close()
            raise GenrekitError(
                f"'{path}' is being written by another genrekit run{f' (process {holder})' if holder else ''}; "
                "wait for it to end, or give another --output"
            ) from None
        with suppress(OSError):
            if os.stat(lock_path).st_ino == os.fstat(lock.fileno()).st_ino:
                break
        lock.close()  # the run that held it removed it meanwhile: take the new one
    try:
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield path
    finally:
        with suppress(OSError):
            os.unlink(lock_path)  # removed while held: no other run can be holding it
        lock.close()
