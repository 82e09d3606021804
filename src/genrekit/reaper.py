"""Ending the processes a run started, even when the run itself is killed (``kill -9``).

A local Ray cluster is a tree of processes under the driver (GCS, raylet, its agents, the
workers); some of them ignore SIGTERM, and none is told when a driver dies by SIGKILL, so they
would stay behind. :class:`Reaper` starts a small watcher process in a session of its own that
holds the read end of a pipe from the driver: the driver tells it the processes to end, and when
the pipe closes without "done" (the driver died, however) it kills them with SIGKILL. Linux only
(it reads ``/proc``); elsewhere it does nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# the watcher: lines of "pid:start-time ...", then "done" (leave them) or end of file (kill them)
_WATCHER = r"""
import os, signal, sys
known = {}
for line in sys.stdin:
    if line.strip() == "done":
        sys.exit(0)
    known.update(item.split(":") for item in line.split())
def start(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None
for pid, started in known.items():
    if start(pid) == started:  # the same process, not a later one that got its number
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
"""


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (field 22 of ``/proc/<pid>/stat``), or ``None``."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """The processes under ``pid`` (children, theirs...), read from ``/proc``; empty elsewhere."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Reaper:
    """A watcher that kills the processes it is told of if this process dies before :meth:`close`.

    Use as a context manager; call :meth:`watch_children` once the processes to end have started.
    """

    def __init__(self) -> None:
        self._watcher: subprocess.Popen | None = None
        if sys.platform.startswith("linux"):
            self._watcher = subprocess.Popen(
                [sys.executable, "-c", _WATCHER], stdin=subprocess.PIPE, text=True, start_new_session=True
            )

    def watch_children(self) -> None:
        """Tell the watcher every process now under this one (the watcher itself excepted)."""
        if self._watcher is None:
            return
        pids = [p for p in descendants(os.getpid()) if p != self._watcher.pid]
        items = [f"{p}:{t}" for p in pids if (t := _start_time(p)) is not None]
        if items:
            self._watcher.stdin.write(" ".join(items) + "\n")
            self._watcher.stdin.flush()

    def close(self) -> None:
        """The run ended on its own: the watcher leaves the processes (already ended) alone."""
        if self._watcher is not None:
            try:
                self._watcher.stdin.write("done\n")
                self._watcher.stdin.close()
            except OSError:
                pass
            self._watcher.wait(30)
            self._watcher = None

    def __enter__(self) -> Reaper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
