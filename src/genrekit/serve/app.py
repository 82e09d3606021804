"""The genrekit web app: a page that plays a song while showing its genre, and a small REST API.

Endpoints
---------
``GET /``
    the page (``static/index.html``); its scripts and style under ``/static``, Plotly.js from the
    installed ``plotly`` package at ``/static/plotly.min.js`` (nothing comes from the internet).
``POST /api/predict``, ``GET /api/models``, ``GET /healthz``
    the REST API (:mod:`genrekit.serve.api`); errors are JSON ``{"error": ..., "detail": ...}``.
``WebSocket /ws/live``
    the live microphone (:mod:`genrekit.serve.live`).
``GET /docs``
    Swagger UI (:mod:`genrekit.serve.docs`); ``/openapi.json`` is the OpenAPI 3.1 document.

The model is loaded by the app's lifespan (when a server starts it) into ``app.state.serve``;
requests pass through :mod:`genrekit.serve.guards` first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from genrekit import __version__
from genrekit.serve import api, docs, live
from genrekit.serve.config import ServeConfig
from genrekit.serve.errors import ApiError, install_handlers
from genrekit.serve.guards import BodyLimit, HostGuard, OriginGuard, SecurityHeaders
from genrekit.serve.jobs import JobPool
from genrekit.serve.state import ServeState, sample_rate

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(config: ServeConfig | None = None, *, predictor: Any = None) -> FastAPI:
    """Build the web app; its model is loaded when a server starts it.

    Parameters
    ----------
    config : the server's settings (default: :class:`ServeConfig`'s defaults)
    predictor : a loaded :class:`genrekit.predictor.Predictor` to serve instead of loading
        ``config.model``

    Raises
    ------
    GenrekitError
        at start-up, when the model cannot be loaded
    """
    config = config or ServeConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = predictor if predictor is not None else _load(config)
        if config.warmup:  # the first forward pass is slow (allocations, kernel choice): pay it now
            sr = sample_rate(model)
            model.predict_signal(np.zeros(sr, np.float32), sr)
        pool = JobPool(
            workers=config.workers,
            max_queue=config.queue_size,
            max_wait_s=config.max_wait_s,
            max_uploads=config.max_uploads,
            client_uploads=config.max_client_uploads,
            client_jobs=config.max_client_jobs,
            live_sessions=config.live_max_sessions,
        )
        app.state.serve = ServeState(config=config, predictor=model, pool=pool)
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="genrekit",
        version=__version__,
        description="Music genre classification: upload a song, get its genres over time.",
        docs_url=None,  # served by genrekit.serve.docs, offline
        redoc_url=None,  # ReDoc would load its script from a CDN
        lifespan=lifespan,
    )
    install_handlers(app)
    # the last added runs first: the security headers, Host, then Origin, then the body limits
    app.add_middleware(
        BodyLimit,
        max_bytes=config.max_body_bytes,
        file_mb=config.max_upload_mb,
        timeout_s=config.body_timeout_s,
        min_bytes_per_s=config.min_upload_bytes_per_s,
        grace_s=config.upload_grace_s,
    )
    app.add_middleware(OriginGuard, trusted=config.trusted_origins)
    app.add_middleware(HostGuard, hosts=config.hosts)
    app.add_middleware(SecurityHeaders)
    app.include_router(api.router)
    app.include_router(live.router)
    docs.mount_docs(app)
    _mount_page(app)
    return app


def _load(config: ServeConfig) -> Any:
    from genrekit.predictor import Predictor

    return Predictor.load(config.model)


def _mount_page(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_bundle() -> FileResponse:
        path = _plotly_js()
        if path is None:
            raise ApiError(404, "plotly.js not found", "install the 'plotly' Python package on the server")
        return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _plotly_js() -> Path | None:
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None
