"""Model jobs on a bounded pool of threads, behind a bounded queue.

A song is queued once its upload has arrived: at most ``workers + max_queue`` songs wait or run
at once, and fewer when those would keep a new one waiting longer than ``max_wait_s`` (long songs,
a busy machine). Uploads still arriving are counted apart (at most ``max_uploads``): a slow upload
holds no place in the queue, so that slow clients cannot keep the workers idle. When either is
full the server answers 503 with ``Retry-After`` at once, before reading the upload.
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
    """``workers`` threads for model jobs, and the counts of uploads and queued songs.

    The counts change on the event loop's thread only, so they need no lock.

    Parameters
    ----------
    workers : jobs run at the same time
    max_queue : songs queued beyond the running ones
    max_wait_s : longest expected wait of a newly queued song
    max_uploads : uploads arriving at the same time
    """

    def __init__(self, *, workers: int, max_queue: int, max_wait_s: float, max_uploads: int):
        self.workers, self.capacity = workers, workers + max_queue
        self.max_wait_s, self.max_uploads = max_wait_s, max_uploads
        self.admitted = 0  # songs queued or running
        self.uploading = 0
        self.mean_job_s = 0.0  # a running mean of the recent jobs' durations (0 before the first)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genrekit-model")

    def expected_wait_s(self) -> float:
        """How long a song queued now would wait for the ones queued before it."""
        return self.admitted * self.mean_job_s / self.workers

    def _refuse_when_busy(self, *, uploads: bool) -> None:
        full = self.admitted >= self.capacity or self.expected_wait_s() > self.max_wait_s
        if full or (uploads and self.uploading >= self.max_uploads):
            wait = max(1, min(60, math.ceil(self.expected_wait_s() - self.max_wait_s)))
            raise ApiError(
                503, "server busy",
                f"{self.admitted} songs are being analysed or waiting and {self.uploading} arriving; "
                f"try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )  # fmt: skip

    @contextmanager
    def upload(self) -> Iterator[None]:
        """Hold an upload place while the body arrives; 503 when the uploads or the queue are full."""
        self._refuse_when_busy(uploads=True)
        self.uploading += 1
        try:
            yield
        finally:
            self.uploading -= 1

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Hold a place in the queue until the song is analysed; 503 when the queue is full."""
        self._refuse_when_busy(uploads=False)
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

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
