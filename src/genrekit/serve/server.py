"""Running the app with uvicorn, with the connection timeouts the app itself cannot enforce.

uvicorn starts an app's request only once its headers are complete, and arms no timer before
that: a client that opens a connection and sends its headers a byte at a time ("slowloris"), or
nothing at all, holds the connection for ever. :func:`uvicorn_config` therefore runs uvicorn's
HTTP protocol with a header deadline: a connection is closed when ``header_timeout_s`` pass,
from its opening or from its last response, without a request starting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from genrekit.serve.config import ServeConfig


def header_timeout_protocol(timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, closing connections whose request headers take over ``timeout_s``."""

    class HeaderTimeoutProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_deadline()

        def _arm_header_deadline(self) -> None:
            waiting_for = self.cycle  # the request served last (None on a new connection)

            def expire() -> None:
                # no new request began in time (an upgraded WebSocket has another protocol)
                transport = self.transport
                if self.cycle is waiting_for and transport.get_protocol() is self and not transport.is_closing():
                    transport.close()

            self.loop.call_later(timeout_s, expire)

    return HeaderTimeoutProtocol


def uvicorn_config(app: Any, config: ServeConfig, *, log_level: str = "info") -> uvicorn.Config:
    """The uvicorn settings of ``genrekit serve``: ``config``'s address and timeouts."""
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level,
        http=header_timeout_protocol(config.header_timeout_s),
        timeout_keep_alive=max(1, round(config.keep_alive_s)),
        ws_max_size=config.live_max_message_bytes + 1024,
        # no uvicorn-wide connection cap: it would answer 503 to everyone once slow clients hold
        # the connections; the header deadline and the app's own limits bound them instead
        limit_concurrency=None,
    )


@contextmanager
def serving(
    app: Any, config: ServeConfig, *, log_level: str = "warning", start_timeout_s: float = 60.0
) -> Iterator[str]:
    """Serve ``app`` on a thread while the ``with`` block runs (tests, benchmarks).

    Yields the server's base URL; ``config.port`` 0 picks a free port.
    """
    server = uvicorn.Server(uvicorn_config(app, config, log_level=log_level))
    thread = threading.Thread(target=server.run, name="genrekit-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start (see its log)")
        time.sleep(0.05)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    try:
        yield f"http://{f'[{host}]' if ':' in host else host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
