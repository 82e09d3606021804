"""What a running app holds (``app.state.serve``), and the dependency that hands it to routes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends
from starlette.requests import HTTPConnection

from genrekit.serve.config import ServeConfig
from genrekit.serve.jobs import JobPool
from genrekit.serve.present import jsonable

if TYPE_CHECKING:
    import numpy as np

    from genrekit.features import FeatureConfig
    from genrekit.prediction import Prediction


class ServedPredictor(Protocol):
    """What the server needs of a predictor: :class:`genrekit.predictor.Predictor` is one (the tests serve stubs)."""

    @property
    def labels(self) -> list[str]: ...

    @property
    def info(self) -> dict[str, Any]: ...

    @property
    def sample_rate(self) -> int:
        """The rate the model reads audio at (the page's microphone audio is sent at it)."""
        ...

    @property
    def feature_config(self) -> FeatureConfig:
        """The model's features (the server asks for styles when they carry the musicnn tags)."""
        ...

    def predict_file(
        self,
        path: str | os.PathLike,
        *,
        max_seconds: float | None = None,
        pace: Callable[[Iterator[np.ndarray]], Iterator[np.ndarray]] | None = None,
        styles: bool = False,
    ) -> Prediction: ...

    def predict_signal(self, y: np.ndarray, sr: int) -> Prediction: ...


@dataclass
class ServeState:
    """The model and the server's shared counters, built by the app's lifespan.

    Parameters
    ----------
    config : the server's settings
    predictor : the model served (a loaded :class:`genrekit.predictor.Predictor`)
    pool : the threads model jobs run on
    """

    config: ServeConfig
    predictor: ServedPredictor
    pool: JobPool
    live_sessions: int = 0

    @property
    def labels(self) -> list[str]:
        return list(self.predictor.labels)

    @property
    def info(self) -> dict:
        """The model's description, without where it sits on the server."""
        info = jsonable(dict(self.predictor.info or {}))
        info.pop("path", None)
        return info

    @property
    def sample_rate(self) -> int:
        return int(self.predictor.sample_rate)


def client_of(conn: HTTPConnection, config: ServeConfig) -> str:
    """The address a request comes from, whose share of the server the per-client limits bound:
    the connection's, or behind a proxy the last entry of ``config.client_header``."""
    if config.client_header:
        value = conn.headers.get(config.client_header, "").split(",")[-1].strip()
        if value:
            return value[:64]
    return conn.client.host if conn.client else ""


def serve_state(conn: HTTPConnection) -> ServeState:
    """FastAPI dependency: the running app's :class:`ServeState`."""
    state: ServeState = conn.app.state.serve
    return state


# what a route takes to reach the server's state: ``serve: Served``
Served = Annotated[ServeState, Depends(serve_state)]
