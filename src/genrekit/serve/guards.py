"""ASGI middleware that stops hostile requests before the app spends anything on them.

- :class:`HostGuard`: a Host header the server does not answer to gets 400 (DNS rebinding).
- :class:`OriginGuard`: a browser post or live socket from another site's page gets 403.
- :class:`BodyLimit`: a body larger than the limit gets 413, a body too slow to arrive 408;
  the whole body is counted as it streams, chunked or not.
- :class:`SecurityHeaders`: every answer forbids framing, MIME sniffing, and any script, style
  or connection from elsewhere than the server itself (``Content-Security-Policy``).

A client that asked ``Expect: 100-continue`` and is answered before its body was read is told
that the connection closes, so that it never sends that body. Other clients may still be sending
theirs: uvicorn reads and drops it (closing at once could reset the connection before the client
reads the answer), and :mod:`genrekit.serve.server` closes the connection if no new request follows.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from genrekit.serve.errors import ApiError

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# The page and /docs load their scripts and styles from this server only: no inline script, and
# the only inline styles are the two <style> elements plotly.js (4.1, bundled with plotly 7.1)
# creates as it loads: an empty one it fills through the CSSOM, and its map module's stylesheet
# (their SHA-256; another plotly version is caught by the Chromium test). blob: is the page's
# own audio and the microphone's worklet.
PLOTLY_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # the empty string
    "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",
)
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        f"style-src 'self' {' '.join(PLOTLY_STYLE_HASHES)}",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


async def _refuse(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
    if scope["type"] == "websocket":
        await WebSocketClose(code=1008, reason=f"{error.error}: {error.detail}"[:120])(scope, receive, send)
    else:
        await error.response()(scope, receive, send)


def _host_name(host_header: str) -> str:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")].lower()
    return host_header.rsplit(":", 1)[0].lower() if host_header.count(":") == 1 else host_header.lower()


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` to every HTTP answer (errors included)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HostGuard:
    """Answer only requests whose Host header names one of ``hosts`` (``"*"``: any).

    Parameters
    ----------
    app : the wrapped app
    hosts : allowed host names or addresses, without port
    """

    def __init__(self, app: ASGIApp, *, hosts: tuple[str, ...]):
        self.app, self.hosts = app, frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "*" not in self.hosts:
            name = _host_name(Headers(scope=scope).get("host", ""))
            if name not in self.hosts:
                shown = ", ".join(sorted(self.hosts))
                await _refuse(
                    scope,
                    receive,
                    send,
                    ApiError(
                        400,
                        "host not allowed",
                        f"this server answers to {shown}, not '{name}'; start it with --allowed-host {name or 'NAME'} "
                        "to add it",
                    ),
                )
                return
        await self.app(scope, receive, send)


class OriginGuard:
    """Refuse posts and live sockets that a page of another site sends.

    Browsers name the page's origin in ``Origin`` (or at least ``Referer``); a request naming
    neither comes from a program, not from a page, and passes.

    Parameters
    ----------
    app : the wrapped app
    trusted : origins allowed besides the page's own (``scheme://host[:port]``)
    """

    def __init__(self, app: ASGIApp, *, trusted: tuple[str, ...]):
        self.app = app
        self.trusted = frozenset(o.rstrip("/").lower() for o in trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        checked = scope["type"] == "websocket" or (scope["type"] == "http" and scope["method"] in UNSAFE_METHODS)
        if checked:
            headers = Headers(scope=scope)
            origin = headers.get("origin") or headers.get("referer")
            if origin is not None and not self._trusted(origin, headers.get("host", "")):
                shown = urlsplit(origin)._replace(path="", query="", fragment="").geturl() or origin
                await _refuse(
                    scope,
                    receive,
                    send,
                    ApiError(
                        403,
                        "cross-site request refused",
                        f"this server accepts uploads and live audio from its own page only, not from '{shown[:100]}'; "
                        "start it with --trusted-origin to allow another site",
                    ),
                )
                return
        await self.app(scope, receive, send)

    def _trusted(self, origin: str, host: str) -> bool:
        parts = urlsplit(origin.lower())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, files) and anything odd
        return parts.netloc == host.lower() or f"{parts.scheme}://{parts.netloc}" in self.trusted


class BodyLimit:
    """Count the request body as it arrives: 413 beyond ``max_bytes``, 408 when too slow.

    Any pause may last ``timeout_s``, and the upload as a whole ``grace_s`` plus one second per
    ``min_bytes_per_s`` bytes received: a client that stops, or trickles a few bytes at a time,
    runs out of time, and its upload place is freed for others.

    Parameters
    ----------
    app : the wrapped app
    max_bytes : largest body
    file_mb : the largest file in MB, as the error message names it
    timeout_s : seconds for the body to begin, and the most any pause in it may last
    min_bytes_per_s : the least average speed of the upload once ``grace_s`` have passed
    grace_s : seconds before the average speed counts (``None``: ``timeout_s``)
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        file_mb: float,
        timeout_s: float,
        min_bytes_per_s: float,
        grace_s: float | None = None,
    ):
        self.app, self.max_bytes, self.file_mb = app, max_bytes, file_mb
        self.timeout_s, self.rate = timeout_s, min_bytes_per_s
        self.grace_s = timeout_s if grace_s is None else grace_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        # the client waits for "100 Continue" (sent on the first read) before sending its body
        waiting = headers.get("expect", "").lower() == "100-continue"
        state = {"received": 0, "waiting": waiting, "started": 0.0, "responded": False}

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["responded"] = True
                if state["waiting"]:
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        if declared.isdigit() and int(declared) > self.max_bytes:
            refusal = self._too_large(f"the request is {int(declared) / 1e6:.3g} MB").response()
            await refusal(scope, receive, send_closing)
            return

        async def limited_receive() -> Message:
            now = time.monotonic()
            state["waiting"] = False
            deadline = now + self.timeout_s  # to begin, and for any pause
            if state["started"]:  # since the first bytes: at least the least speed on average
                deadline = min(deadline, state["started"] + self.grace_s + state["received"] / self.rate)
            try:
                with anyio.fail_after(max(0.0, deadline - now)):
                    message = await receive()
            except TimeoutError:
                raise ApiError(
                    408,
                    "upload too slow",
                    f"the upload stalled or ran slower than {self.rate / 1000:.0f} kB/s; "
                    "try again on a better connection",
                    headers={"Connection": "close"},  # the rest of a stalled body is not worth waiting for
                ) from None
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["started"] = state["started"] or (time.monotonic() if state["received"] else 0.0)
                if state["received"] > self.max_bytes:
                    raise self._too_large("the request is larger")
            return message

        try:
            await self.app(scope, limited_receive, send_closing)
        except ApiError as exc:  # raised while the body was read outside any route
            if state["responded"]:
                raise
            await exc.response()(scope, receive, send_closing)

    def _too_large(self, size: str) -> ApiError:
        return ApiError(413, "file too large", f"this server accepts files up to {self.file_mb:g} MB; {size}")
