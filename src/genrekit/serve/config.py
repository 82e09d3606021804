"""The settings of ``genrekit serve``: every limit of the server, with its default, in one place.

This module is light (no FastAPI, no torch) so that the command line can import it cheaply.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields

WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def _cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server.

    Parameters
    ----------
    model : checkpoint path, or ``None`` for the bundled model
    host, port : where :func:`genrekit.serve.main` listens
    workers : model jobs (decode + predict) run at the same time, one thread each
    max_queue : songs queued beyond the running jobs; more get 503 at once
        (``None``: 32 per worker, enough to keep the workers busy between clients' retries)
    max_wait_s : uploads also get 503 when the songs queued would keep a new one waiting longer
    max_uploads : uploads arriving at the same time (they hold no place in the queue); more get 503
    max_client_uploads : uploads one client (address) may send at the same time; more get 503
    max_client_jobs : songs of one client queued or being analysed at the same time; more get 503
    client_header : behind a reverse proxy, the header naming the client's address (its last
        entry), e.g. ``X-Forwarded-For`` (``None``: the connection's address; set it only when
        the proxy always sets this header, since clients could send it themselves)
    max_upload_mb : largest accepted file (MB = 10**6 bytes); a larger file or body gets 413
    max_duration_s : longest accepted audio in seconds; longer gets 422
    max_form_fields : form fields accepted besides the file; more get 413
    max_field_bytes : largest accepted form field other than the file
    body_timeout_s : seconds allowed for an upload to begin, and for any pause in it
    min_upload_bytes_per_s : the least average speed of an upload after its first
        ``upload_grace_s`` seconds; a slower upload gets 408 and frees its place
    upload_grace_s : seconds an upload may take before its speed is held to the minimum
    header_timeout_s : seconds a connection may take to send a request's headers
    keep_alive_s : seconds an idle keep-alive connection stays open
    allowed_hosts : names in the Host header this server answers to (``"*"``: any); the bound
        host is added
    trusted_origins : origins (``scheme://host[:port]``) allowed to post and open the live socket
        besides the page's own
    live_window_s : seconds of microphone audio each live prediction looks at
    live_interval_s : seconds of received audio between two live predictions
    live_max_sessions : live microphone sessions at the same time
    live_idle_timeout_s : a live session with no message for this long is closed
    live_max_message_bytes : largest accepted live message
    tmp_dir : folder for uploads in progress (``None``: the system temp folder)
    warmup : run the model once at start so that the first request is not slow
    """

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = field(default_factory=_cores)
    max_queue: int | None = None
    max_wait_s: float = 0.8
    max_uploads: int = 64
    max_client_uploads: int = 8
    max_client_jobs: int = 16
    client_header: str | None = None
    max_upload_mb: float = 50.0
    max_duration_s: float = 900.0
    max_form_fields: int = 8
    max_field_bytes: int = 16_384
    body_timeout_s: float = 20.0
    min_upload_bytes_per_s: float = 50_000.0
    upload_grace_s: float = 5.0
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    trusted_origins: tuple[str, ...] = ()
    live_window_s: float = 3.0
    live_interval_s: float = 1.0
    live_max_sessions: int = 16
    live_idle_timeout_s: float = 10.0
    live_max_message_bytes: int = 1 << 20
    tmp_dir: str | None = None
    warmup: bool = True

    def __post_init__(self) -> None:
        for name in ("allowed_hosts", "trusted_origins"):  # lists from the command line
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.model is not None:
            object.__setattr__(self, "model", str(self.model))
        positive = [f.name for f in fields(self) if f.type in ("int", "float") and f.name != "port"]
        bad = [n for n in positive if not getattr(self, n) > 0]
        if bad or self.queue_size < 0:
            from genrekit.errors import GenrekitError

            raise GenrekitError(f"serve settings must be positive: {', '.join(bad or ['max_queue'])}")

    @property
    def queue_size(self) -> int:
        """``max_queue``, or its default for this many workers."""
        return 32 * self.workers if self.max_queue is None else self.max_queue

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: the file, its form fields and the multipart framing."""
        return self.max_upload_bytes + self.max_form_fields * self.max_field_bytes + 64 * 1024

    @property
    def hosts(self) -> tuple[str, ...]:
        """The allowed Host names, the bound host included."""
        bound = () if self.host in WILDCARD_HOSTS else (self.host.strip("[]").lower(),)
        return tuple(dict.fromkeys([h.strip("[]").lower() for h in self.allowed_hosts] + list(bound)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``genrekit serve`` options; unset options keep :class:`ServeConfig`'s defaults."""
    d = ServeConfig()
    add = parser.add_argument
    add("--host", help=f"address to listen on (default {d.host}: this machine only)")
    add("--port", type=int, help=f"port (default {d.port})")
    add("--model", help="checkpoint to serve (default: the bundled model)")
    add("--workers", type=int, help="model jobs run at the same time (default: the number of CPU cores)")
    add("--max-queue", type=int, help="songs queued beyond the running jobs; more get 503 (default: 32 per worker)")
    add("--max-upload-mb", type=float, help=f"largest accepted file in MB (default {d.max_upload_mb:g})")
    add("--max-duration-s", type=float, help=f"longest accepted audio in seconds (default {d.max_duration_s:g})")
    add(
        "--max-client-uploads",
        type=int,
        help=f"uploads one client address may send at once; more get 503 (default {d.max_client_uploads})",
    )
    add(
        "--max-client-jobs",
        type=int,
        help=f"songs of one client address queued or analysed at once; more get 503 (default {d.max_client_jobs})",
    )
    add(
        "--client-header",
        metavar="HEADER",
        help="behind a reverse proxy: the header naming the client's address, e.g. X-Forwarded-For "
        "(default: the connection's address)",
    )
    add(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        metavar="NAME",
        help="also answer to this Host name or address (repeatable; '*' for any)",
    )
    add(
        "--trusted-origin",
        dest="trusted_origins",
        action="append",
        metavar="ORIGIN",
        help="also accept uploads from pages at this origin, e.g. https://example.org (repeatable)",
    )
    add("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def settings_from_args(args: argparse.Namespace) -> dict:
    """The :func:`genrekit.serve.main` keyword arguments of parsed ``genrekit serve`` options."""
    d = ServeConfig()
    names = [
        "host",
        "port",
        "model",
        "workers",
        "max_queue",
        "max_upload_mb",
        "max_duration_s",
        "max_client_uploads",
        "max_client_jobs",
        "client_header",
    ]
    settings = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    for name in ("allowed_hosts", "trusted_origins"):
        if getattr(args, name, None):
            settings[name] = (*getattr(d, name), *getattr(args, name))
    return {**settings, "log_level": getattr(args, "log_level", "info")}
