"""Predicting many files with one :class:`~genrekit.predictor.Predictor`, a few threads at a time.

Threads share the one model; worker processes use the cores better (:mod:`genrekit.workers`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from genrekit.errors import GenrekitError
from genrekit.escalation import DEFAULT_ESCALATION, Escalation

if TYPE_CHECKING:
    from genrekit.prediction import Prediction
    from genrekit.predictor import Predictor

__all__ = ["predict_in_threads"]


def predict_in_threads(
    predictor: Predictor,
    paths: Iterable[str | os.PathLike],
    *,
    workers: int = 2,
    max_seconds: float | None = None,
    max_duration: float | None = None,
    timeout_s: float | None = None,
    patches: int | None = None,
    escalation: Escalation | None = DEFAULT_ESCALATION,
) -> Iterator[tuple[str, Prediction | GenrekitError]]:
    """Each path with its prediction or its error, in the order of ``paths``, ``workers`` threads at a time
    (as :meth:`genrekit.predictor.Predictor.predict_files`, which this is)."""

    def one(p: str | os.PathLike) -> tuple[str, Prediction | GenrekitError]:
        try:
            return str(p), predictor.predict_file(
                p,
                max_seconds=max_seconds,
                max_duration=max_duration,
                timeout_s=timeout_s,
                patches=patches,
                escalation=escalation,
            )
        except GenrekitError as exc:
            return str(p), exc

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield from pool.map(one, paths)
