"""``genrekit serve``: a web page that plays a song while showing its genre, and a REST API.

>>> from genrekit.serve import ServeConfig, create_app
>>> app = create_app(ServeConfig(max_upload_mb=20))   # any ASGI server can run it

:func:`main` runs it with uvicorn, as ``genrekit serve`` does.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import replace
from typing import Any

from genrekit.serve.config import ServeConfig, add_arguments, settings_from_args

__all__ = ["ServeConfig", "add_arguments", "create_app", "main", "settings_from_args"]


def __getattr__(name: str) -> Any:
    # FastAPI is imported on first use only: the command line imports this package for its options
    if name == "create_app":
        from genrekit.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'genrekit.serve' has no attribute '{name}'")


def main(config: ServeConfig | None = None, /, *, log_level: str = "info", **settings: Any) -> None:
    """Load the model and serve the app with uvicorn until interrupted.

    This is the server's entry point: the only place that changes process-wide settings
    (the thread counts of torch and of numpy's BLAS).

    Parameters
    ----------
    config : the server's settings (default: :class:`ServeConfig`'s defaults)
    log_level : uvicorn's log level
    **settings : :class:`ServeConfig` fields overriding ``config``'s (``host``, ``port``,
        ``model``, ``workers``, ``max_queue``, ``max_upload_mb``...); ``None`` keeps the default

    Raises
    ------
    GenrekitError
        the settings are invalid or the model cannot be loaded
    """
    import uvicorn

    from genrekit.predictor import Predictor
    from genrekit.serve.app import create_app
    from genrekit.serve.config import WILDCARD_HOSTS
    from genrekit.serve.server import uvicorn_config

    config = replace(config or ServeConfig(), **{k: v for k, v in settings.items() if v is not None})
    # the workers run one job each in parallel: each gets its share of the cores, not all of them;
    # numpy's BLAS threads too (left at one per core, they spin and double the CPU of a prediction)
    threads = max(1, (os.cpu_count() or 1) // config.workers)
    with suppress(ImportError):  # torch only runs models without an ONNX export
        import torch

        torch.set_num_threads(threads)
    with suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    predictor = Predictor.load(
        config.model, threads=threads
    )  # here, so that a bad model is a clear error, not a traceback
    app = create_app(config, predictor=predictor)
    host = config.host
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else (f"[{host}]" if ":" in host else host)
    print(f"genrekit: open http://{shown}:{config.port}/ in a browser (API docs at /docs); Ctrl+C stops", flush=True)
    if host in WILDCARD_HOSTS:
        print("genrekit: other machines must use a name or address given with --allowed-host", flush=True)
    uvicorn.Server(uvicorn_config(app, config, log_level=log_level)).run()
