"""Tagging many files on every core: worker processes, each with one model on one thread.

On a CPU the backbone runs near the core's limit, and a session with two threads wastes about a
quarter of its time spinning (issue 20): one process per core, each running onnxruntime on one
intra-op thread with BLAS and OpenMP held to one thread, tags more per second. Each worker loads
the model once (:meth:`genrekit.Predictor.load`); the limits apply inside the workers only, never
to the calling process. A worker that dies (a decoder's segfault, the OOM killer) costs only the
file it held: that file gets an error, a new worker takes its place and the batch goes on.

This module imports nothing heavy, so that a worker sets its thread limits before numpy loads.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING

from genrekit.errors import GenrekitError
from genrekit.escalation import DEFAULT_ESCALATION, Escalation
from genrekit.precision import DEFAULT_PRECISION

if TYPE_CHECKING:
    from genrekit.predictor import Prediction, Predictor

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class FileOptions:
    """What :meth:`genrekit.Predictor.predict_file` is given for each file (see there)."""

    max_seconds: float | None = None
    max_duration: float | None = None
    timeout_s: float | None = None
    patches: int | None = None
    escalation: Escalation | None = DEFAULT_ESCALATION


# a job of this many files or fewer is tagged in the calling process: starting the pool (a Python
# and the model in each worker, 1-2 s) would take longer than the files themselves
SMALL_JOB = 2


def pool_size(processes: int | None, *, files: int) -> int:
    """The worker processes to tag ``files`` files with: ``processes`` (``None``: one per core), no
    more than the files; 1 (tag in the calling process) for a job of :data:`SMALL_JOB` files or fewer.

    Raises
    ------
    GenrekitError
        ``processes`` is below 1
    """
    if processes is not None and processes < 1:
        raise GenrekitError(f"processes must be at least 1, not {processes}")
    if files <= SMALL_JOB:
        return 1
    return max(1, min(processes if processes is not None else default_workers(), files))


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _sendable(result):
    """``result`` if it pickles, else an error saying so (a worker must always answer)."""
    try:
        pickle.dumps(result)
        return result
    except Exception as exc:  # noqa: BLE001 - whatever failed to pickle
        return GenrekitError(f"the result could not be sent back from the worker ({exc.__class__.__name__}: {exc})")


def load_in_worker(
    model: str | os.PathLike | None = None, *, runtime: str = "auto", precision: str = DEFAULT_PRECISION
) -> Predictor:
    """In a worker process (this pool's, a Ray actor's): hold BLAS and OpenMP to one thread and load
    the model with one onnxruntime thread (``runtime``, ``precision``: as :meth:`genrekit.Predictor.load`).

    This changes settings of the whole calling process: call it only in a process that exists to
    tag (never in a user's program), once, before anything else.

    Raises
    ------
    GenrekitError
        the model cannot be loaded
    """
    for name in _THREAD_VARIABLES:  # effective when numpy and onnxruntime have not loaded yet
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    from genrekit.predictor import Predictor

    predictor = Predictor.load(model, runtime=runtime, threads=1, precision=precision)
    threadpool_limits(limits=1)  # the BLAS and OpenMP pools loaded by now (numpy's, torch's)
    return predictor


def _serve(conn: Connection, model: str | None, runtime: str, precision: str, options: dict) -> None:
    """A worker: load the model once, then answer ``(index, path)`` with ``(index, result)``."""
    try:
        predictor = load_in_worker(model, runtime=runtime, precision=precision)
    except GenrekitError as exc:
        conn.send(("failed", exc))
        return
    conn.send(("ready", None))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        index, path = task
        result: Prediction | GenrekitError
        try:
            result = predictor.predict_file(path, **options)
        except GenrekitError as exc:
            result = exc
        except Exception as exc:  # noqa: BLE001 - one bad file must not end the batch
            result = GenrekitError(f"'{path}': tagging failed unexpectedly ({exc.__class__.__name__}: {exc})")
        conn.send((index, _sendable(result)))


class _Worker:
    def __init__(self, context, model: str | None, runtime: str, precision: str, options: dict):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, model, runtime, precision, options), daemon=True)
        self.process.start()
        child.close()
        self.task: tuple[int, str] | None = None
        kind, error = self._first_message()
        if kind != "ready":
            self.stop()
            raise error

    def _first_message(self):
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.process.join()
            return "failed", GenrekitError(
                f"a tagging worker died while loading the model (exit code {self.process.exitcode}); a script "
                "that tags in worker processes must start them under: if __name__ == '__main__'"
            )

    def give(self, index: int, path: str) -> None:
        self.task = (index, path)
        self.conn.send(self.task)

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def predict_files(
    paths: Iterable[str | os.PathLike],
    *,
    model: str | os.PathLike | None = None,
    runtime: str = "auto",
    precision: str = DEFAULT_PRECISION,
    workers: int | None = None,
    max_seconds: float | None = None,
    max_duration: float | None = None,
    timeout_s: float | None = None,
    patches: int | None = None,
    escalation: Escalation | None = DEFAULT_ESCALATION,
) -> Iterator[tuple[str, Prediction | GenrekitError]]:
    """Tag many files in worker processes; yields ``(path, result or error)`` in the order given.

    Parameters
    ----------
    paths : the files (read lazily: at most two per worker are ahead of the one last yielded)
    model : a checkpoint file or a bundled model's name (``None``: the bundled model)
    runtime, precision : as :meth:`genrekit.Predictor.load`
    workers : worker processes (default :func:`default_workers`: one per core)
    max_seconds, max_duration, timeout_s, patches, escalation : for each file, as
        :meth:`genrekit.Predictor.predict_file`

    Raises
    ------
    GenrekitError
        the model cannot be loaded (raised before any file is tagged)
    """
    n = workers if workers is not None else default_workers()
    if n < 1:
        raise GenrekitError(f"workers must be at least 1, not {n}")
    options = vars(FileOptions(max_seconds, max_duration, timeout_s, patches, escalation))
    model = None if model is None else str(model)
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    pool = [_Worker(context, model, runtime, precision, options) for _ in range(n)]
    todo = ((i, str(p)) for i, p in enumerate(paths))
    done: dict[int, tuple[str, Prediction | GenrekitError]] = {}
    names: dict[int, str] = {}
    next_out, ahead = 0, 2 * n
    try:
        exhausted = False
        while True:
            for w in pool:
                if w.task is None and not exhausted and len(names) - next_out < ahead:
                    task = next(todo, None)
                    if task is None:
                        exhausted = True
                    else:
                        names[task[0]] = task[1]
                        w.give(*task)
            busy = [w for w in pool if w.task is not None]
            if not busy:
                break
            for ready in wait([w.conn for w in busy]):
                w = next(w for w in busy if w.conn is ready)
                result: Prediction | GenrekitError
                try:
                    index, result = w.conn.recv()
                except (EOFError, OSError):
                    assert w.task is not None, "a worker that was waited for has a task"
                    index, path = w.task
                    w.process.join()
                    result = GenrekitError(
                        f"'{path}': the worker tagging it died (exit code {w.process.exitcode}); "
                        "the file may crash its decoder: re-encode it"
                    )
                    w.conn.close()
                    pool[pool.index(w)] = w = _Worker(context, model, runtime, precision, options)
                done[index] = (names[index], result)
                w.task = None
            while next_out in done:
                yield done.pop(next_out)
                del names[next_out]
                next_out += 1
    finally:
        for w in pool:
            w.stop()
