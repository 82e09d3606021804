"""Model jobs on a bounded pool of threads, behind a bounded admission queue.

At most ``workers + max_queue`` uploads are admitted at once (uploading, waiting or running), and
fewer when the work already admitted would keep a new upload waiting longer than ``max_wait_s``
(long songs, a busy machine); beyond that the server answers 503 at once with ``Retry-After``,
before reading the upload, instead of letting the queue grow and every answer come late.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from genrekit.serve.errors import ApiError

T = TypeVar("T")


def _timed(fn: Callable[..., T], /, *args: Any) -> tuple[T, float]:
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


class JobPool:
    """``workers`` threads for model jobs and the count of admitted requests.

    Admission is counted on the event loop's thread only, so it needs no lock.

    Parameters
    ----------
    workers : jobs run at the same time
    max_queue : requests admitted beyond the running ones
    max_wait_s : longest expected wait of a newly admitted request
    """

    def __init__(self, *, workers: int, max_queue: int, max_wait_s: float):
        self.workers, self.capacity, self.max_wait_s = workers, workers + max_queue, max_wait_s
        self.admitted = 0
        self.mean_job_s = 0.0  # a running mean of the recent jobs' durations (0 before the first)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genrekit-model")

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Hold one admission slot, or raise a 503 :class:`ApiError` when none is free."""
        if self.admitted >= self.capacity or self.expected_wait_s() > self.max_wait_s:
            wait = max(1, min(60, math.ceil(self.expected_wait_s() - self.max_wait_s)))
            raise ApiError(
                503, "server busy",
                f"{self.admitted} songs are being analysed or waiting; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )  # fmt: skip
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    def expected_wait_s(self) -> float:
        """How long a request admitted now would wait for the ones admitted before it."""
        return self.admitted * self.mean_job_s / self.workers

    async def run(self, fn: Callable[..., T], /, *args: Any, upload: bool = True) -> T:
        """Run ``fn(*args)`` on a pool thread, after the jobs queued before it.

        The duration of ``upload`` jobs (not of the small live ones) sets the expected wait.
        """
        result, seconds = await asyncio.get_running_loop().run_in_executor(self._executor, _timed, fn, *args)
        if upload:
            self.mean_job_s += 0.2 * (seconds - self.mean_job_s)
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
