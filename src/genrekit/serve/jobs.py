"""Model jobs on a bounded pool of threads, behind a bounded admission queue.

At most ``workers + max_queue`` uploads are admitted at once (uploading, waiting or running);
beyond that the server answers 503 at once with ``Retry-After``, before reading the upload,
instead of letting the queue grow and every answer come late.
"""
from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from genrekit.serve.errors import ApiError

T = TypeVar("T")


def _timed(fn: Callable[..., T], /, *args, **kwargs) -> tuple[T, float]:
    t0 = time.perf_counter()
    return fn(*args, **kwargs), time.perf_counter() - t0


class JobPool:
    """``workers`` threads for model jobs and the count of admitted requests.

    Admission is counted on the event loop's thread only, so it needs no lock.

    Parameters
    ----------
    workers : jobs run at the same time
    max_queue : requests admitted beyond the running ones
    """

    def __init__(self, *, workers: int, max_queue: int):
        self.workers, self.capacity = workers, workers + max_queue
        self.admitted = 0
        self.mean_job_s = 0.0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genrekit-model")

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Hold one admission slot, or raise a 503 :class:`ApiError` when none is free."""
        if self.admitted >= self.capacity:
            wait = max(1, min(60, math.ceil(self.admitted * self.mean_job_s / self.workers)))
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

    async def run(self, fn: Callable[..., T], /, *args, **kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on a pool thread (after the jobs queued before it)."""
        job = functools.partial(_timed, fn, *args, **kwargs)
        result, seconds = await asyncio.get_running_loop().run_in_executor(self._executor, job)
        self.mean_job_s += 0.2 * (seconds - self.mean_job_s)  # a running mean, for Retry-After
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
