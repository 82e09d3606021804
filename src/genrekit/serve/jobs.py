"""Model jobs on a bounded pool of threads, behind a bounded queue that is fair between clients.

A song is queued once its upload has arrived and its header has been read: its cost is estimated
from the duration the header declares (seconds of audio × the compute seconds per audio second
that recent successful jobs took), before it takes a place. At most ``workers + max_queue`` songs
wait or run at once, and fewer when the work already queued would keep a new one waiting longer
than ``max_wait_s``: that wait is counted from the work left (estimated cost less the time each
running job has already run), so a job that failed fast costs nothing, and a new song is never
refused while a worker is idle. Uploads still arriving are counted apart (at most
``max_uploads``): a slow upload holds no place in the queue. One client (an address) holds at most
``client_uploads`` uploads and ``client_jobs`` queued or running songs, so that one client cannot
take every place. Jobs run in chunks (:meth:`JobPool.turn`): a long song yields its worker to
songs queued after it between chunks, so it delays them by one chunk at most, not by its length.
When a limit is reached the server answers 503 with ``Retry-After`` at once.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from genrekit.serve.errors import ApiError

T = TypeVar("T")

_END = object()  # the end of a job's blocks

# seconds of audio in one chunk of a job (stream_audio's blocks): the least a song waits per job ahead of it
CHUNK_S = 30.0


@dataclass(eq=False)  # each job is itself, whatever its fields
class Job:
    """A queued or running song: its client, its estimated cost, and when it started running."""

    client: str
    audio_s: float
    cost_s: float
    started: float | None = None  # when it took its first turn
    waited_s: float = 0.0  # time since, spent waiting for its turn again
    busy_s: float = 0.0  # time spent holding turns at the model, once it ended

    def done_s(self, now: float) -> float:
        """Seconds of its work done by ``now``."""
        if self.busy_s or self.started is None:
            return self.busy_s
        return max(0.0, now - self.started - self.waited_s)


class Turns:
    """``workers`` turns at the model, handed out in rotation between clients.

    A job holds a turn while it works, and between two chunks of its work hands it over to a
    client waiting for one, then waits for its own turn again. The clients waiting for a turn
    are served in turn, each one's chunks first come first served, so that a client
    with many or long songs delays another by one chunk per turn, not by all its work.
    """

    def __init__(self, workers: int):
        self._free, self._lock = workers, threading.Lock()
        self._waiting: dict[str, deque[threading.Event]] = {}  # client -> its waiting chunks, in rotation order

    def _pass_on(self) -> None:
        """Give a freed turn to the next client waiting (under the lock)."""
        if self._waiting:
            first = next(iter(self._waiting))
            queue = self._waiting.pop(first)
            queue.popleft().set()
            if queue:  # back at the end of the rotation
                self._waiting[first] = queue
        else:
            self._free += 1

    def handover(self, client: str = "") -> float:
        """Between two chunks: let a waiting client work, and wait for a turn again.

        Returns the seconds waited (none when no one was waiting).
        """
        with self._lock:
            if not self._waiting:
                return 0.0
            self._pass_on()
            self._free -= 1  # _pass_on gave the turn away, never to the pool
            event = threading.Event()
            self._waiting.setdefault(client, deque()).append(event)
        t0 = time.monotonic()
        event.wait()
        return time.monotonic() - t0

    @contextmanager
    def turn(self, client: str = "") -> Iterator[None]:
        with self._lock:
            event = None
            if self._free and not self._waiting:
                self._free -= 1
            else:
                event = threading.Event()
                self._waiting.setdefault(client, deque()).append(event)
        if event is not None:
            event.wait()  # the turn is handed over by the job that gives it back
        try:
            yield
        finally:
            with self._lock:
                self._pass_on()


class JobPool:
    """Threads for model jobs, the counts of uploads and queued songs, and the turns at the model.

    The counts change on the event loop's thread only, so they need no lock.

    Parameters
    ----------
    workers : jobs (chunks of them) run at the same time
    max_queue : songs queued beyond the running ones
    max_wait_s : longest expected wait of a newly queued song
    max_uploads : uploads arriving at the same time
    client_uploads : uploads one client may send at the same time
    client_jobs : songs of one client queued or running at the same time
    live_sessions : live microphone sessions, each with a job at a time
    """

    def __init__(
        self,
        *,
        workers: int,
        max_queue: int,
        max_wait_s: float,
        max_uploads: int,
        client_uploads: int | None = None,
        client_jobs: int | None = None,
        live_sessions: int = 0,
    ):
        self.workers, self.capacity = workers, workers + max_queue
        self.max_wait_s, self.max_uploads = max_wait_s, max_uploads
        self.client_uploads = client_uploads or max_uploads
        self.client_jobs = client_jobs or self.capacity
        self.uploading = 0
        self.jobs: set[Job] = set()
        self.seconds_per_audio_s = 0.0  # compute per audio second of recent successful jobs (0 before the first)
        self._uploads: Counter[str] = Counter()
        self._client_jobs: Counter[str] = Counter()
        self.turns = Turns(workers)
        # a thread per admitted song and live session: the turns, not the threads, bound the model's work
        self._executor = ThreadPoolExecutor(
            max_workers=self.capacity + live_sessions, thread_name_prefix="genrekit-model"
        )

    @property
    def admitted(self) -> int:
        """Songs queued or running."""
        return len(self.jobs)

    def expected_wait_s(self, cost_s: float = math.inf, client: str | None = None) -> float:
        """How long a song of ``cost_s`` compute seconds from ``client`` queued now would wait.

        Clients take turns chunk by chunk, so each other client delays a new song by at most the
        new song's own cost (and by what it has left): a long song, or a flood of them, costs
        another client's songs their share only. The client's own songs go first.
        """
        if self.admitted < self.workers:
            return 0.0
        cost_s, now = max(cost_s, CHUNK_S * self.seconds_per_audio_s), time.monotonic()
        left: Counter[str] = Counter()
        for j in self.jobs:
            left[j.client] += max(0.0, j.cost_s - j.done_s(now))
        return sum(v if c == client else min(v, cost_s) for c, v in left.items()) / self.workers

    def _busy(self, reason: str, wait: float) -> ApiError:
        wait = max(1, min(60, math.ceil(wait)))
        return ApiError(503, "server busy", f"{reason}; try again in {wait} s", headers={"Retry-After": str(wait)})

    def _refuse_when_busy(self, *, cost_s: float = 0.0, client: str | None = None) -> None:
        wait = self.expected_wait_s(cost_s, client)
        if self.admitted >= self.capacity or wait > self.max_wait_s:
            raise self._busy(
                f"{self.admitted} songs are being analysed or waiting and {self.uploading} arriving",
                wait - self.max_wait_s,
            )

    @contextmanager
    def upload(self, client: str = "") -> Iterator[None]:
        """Hold an upload place while the body arrives; 503 when the uploads (all, or the client's)
        or the queue are full."""
        self._refuse_when_busy(client=client)
        if self.uploading >= self.max_uploads:
            raise self._busy(f"{self.admitted} songs are being analysed or waiting and {self.uploading} arriving", 1)
        if self._uploads[client] >= self.client_uploads:
            raise self._busy(f"you are sending {self._uploads[client]} files at once, the most this server takes", 1)
        self.uploading += 1
        self._uploads[client] += 1
        try:
            yield
        finally:
            self.uploading -= 1
            self._uploads[client] -= 1
            if not self._uploads[client]:
                del self._uploads[client]

    @contextmanager
    def admission(self, client: str = "", audio_s: float = 0.0) -> Iterator[Job]:
        """Hold a place in the queue until the song (``audio_s`` seconds of audio) is analysed;
        503 when the queue, or the client's share of it, is full."""
        if self._client_jobs[client] >= self.client_jobs:
            raise self._busy(f"{self._client_jobs[client]} of your songs are being analysed or waiting", 1)
        job = Job(client, audio_s, audio_s * self.seconds_per_audio_s)
        self._refuse_when_busy(cost_s=job.cost_s, client=client)
        self.jobs.add(job)
        self._client_jobs[client] += 1
        try:
            yield job
        finally:
            self.jobs.discard(job)
            self._client_jobs[client] -= 1
            if not self._client_jobs[client]:
                del self._client_jobs[client]

    def paced(self, blocks: Iterator[T], job: Job | None = None) -> Iterator[T]:
        """``blocks`` of a job run by :meth:`run`: each one decoded and analysed (between two
        ``next`` calls) in the job's turn, which is handed over to a client waiting for one before
        every block but the first. A one-block song never waits twice, nor holds its state while
        others work."""
        client = job.client if job is not None else ""
        blocks = iter(blocks)
        block = next(blocks, _END)
        while block is not _END:
            yield block
            block = next(blocks, _END)
            if block is not _END:
                waited = self.turns.handover(client)
                if job is not None:
                    job.waited_s += waited

    async def run(self, fn: Callable[..., T], /, *args: Any, job: Job | None = None, client: str = "") -> T:
        """Run ``fn(*args)`` on a pool thread, holding a turn at the model (a job that reads its
        blocks through :meth:`paced` hands it over between chunks). A ``job`` that succeeds updates the compute per
        audio second, from the time it held turns (not the time it waited for them)."""

        def call() -> T:
            with self.turns.turn(job.client if job is not None else client):
                if job is None:
                    return fn(*args)
                job.started = t0 = time.monotonic()
                try:
                    return fn(*args)
                finally:
                    job.busy_s = max(1e-9, time.monotonic() - t0 - job.waited_s)

        result = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        if job is not None and job.audio_s > 0:
            rate = job.busy_s / job.audio_s
            self.seconds_per_audio_s += 0.2 * (rate - self.seconds_per_audio_s) if self.seconds_per_audio_s else rate
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
