"""``genrekit serve``: a web page that plays a song while showing its genre, and a REST API.

>>> from genrekit.serve import create_app
>>> app = create_app()            # bundled model; any ASGI server can run it
"""
from __future__ import annotations

from genrekit.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app", "main"]


def main(
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str | None = None,
    max_upload_mb: float = 50,
    max_duration_s: float = 900,
    *,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Load the model and serve the app with uvicorn until interrupted.

    Parameters
    ----------
    host, port : where to listen (default: this machine only)
    model : checkpoint path, or ``None`` for the bundled model
    max_upload_mb : largest accepted upload in MB
    max_duration_s : longest accepted audio in seconds
    workers : decode + predict jobs run at the same time (the rest queue)
    log_level : uvicorn's log level

    Raises
    ------
    GenrekitError
        the model cannot be loaded
    """
    import uvicorn

    app = create_app(model, max_upload_mb=max_upload_mb, max_duration_s=max_duration_s, workers=workers)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    print(f"genrekit: open http://{shown}:{port}/ in a browser (API docs at /docs); Ctrl+C stops", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
