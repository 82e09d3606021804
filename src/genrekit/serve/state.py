"""What a running app holds (``app.state.serve``), and the dependency that hands it to routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from genrekit.serve.config import ServeConfig
from genrekit.serve.jobs import JobPool
from genrekit.serve.present import jsonable


@dataclass
class ServeState:
    """The model and the server's shared counters, built by the app's lifespan.

    Parameters
    ----------
    config : the server's settings
    predictor : a loaded :class:`genrekit.predictor.Predictor`
    pool : the threads model jobs run on
    """

    config: ServeConfig
    predictor: Any
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
        return sample_rate(self.predictor)


def sample_rate(predictor: Any) -> int:
    """The model's sample rate (``.sample_rate``, or ``.config.sample_rate`` on older predictors)."""
    return int(getattr(predictor, "sample_rate", None) or predictor.config.sample_rate)


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
    return conn.app.state.serve
