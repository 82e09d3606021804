"""The genrekit web app: a page that plays a song while showing its genre, and a small REST API.

Endpoints
---------
``GET /``
    the page (``static/index.html``); its assets under ``/static``, Plotly.js from the installed
    ``plotly`` package at ``/static/plotly.min.js`` (nothing is fetched from the internet).
``POST /api/predict``
    multipart field ``file`` (any audio format genrekit decodes), optional ``top_k`` (form field or
    query parameter). Returns the top genres, all probabilities, the per-segment timeline, the
    model and the timing. Errors are JSON ``{"error": ..., "detail": ...}``: 413 when the upload is
    larger than ``max_upload_mb`` (checked while it streams to disk), 422 for empty, corrupt,
    non-audio or too long files, 400 for a request that is not multipart at all.
``GET /api/models``
    the loaded model's description, labels and the server's limits.
``GET /healthz``
    liveness probe.
``WebSocket /ws/live``
    the browser sends ``{"sample_rate": 48000}`` and then binary float32 little-endian mono PCM;
    about once per second of audio received the server answers
    ``{"probabilities": {...}, "top": [{"genre": g, "probability": p}, ...], "t": seconds}`` for the last 3 s.

The model is loaded once, in :func:`create_app`; everything the app needs hangs off ``app.state``.
"""
from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import anyio
import swagger_ui_bundle
import numpy as np
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from genrekit import __version__
from genrekit.audio import SAMPLE_RATE, AudioError, GenrekitError, duration_seconds, load_audio


STATIC_DIR = Path(__file__).resolve().parent / "static"
UPLOAD_PREFIX = "genrekit-upload-"
_CHUNK_LIMIT_FIELD = 1024  # bytes kept of a non-file form field (top_k)


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one app instance.

    Parameters
    ----------
    model : checkpoint path, or ``None`` for the bundled default model
    max_upload_mb : largest accepted upload (MB = 10**6 bytes); larger ones get 413
    max_duration_s : longest accepted audio in seconds; longer ones get 422
    tmp_dir : where uploads are spooled (``None``: the system temp folder)
    live_window_s : seconds of microphone audio each live prediction looks at
    live_interval_s : seconds of received audio between two live predictions
    workers : model runs (decode + predict) allowed at the same time; the rest queue
    """

    model: str | None = None
    max_upload_mb: float = 50.0
    max_duration_s: float = 900.0
    tmp_dir: str | None = None
    live_window_s: float = 3.0
    live_interval_s: float = 1.0
    workers: int = 1

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)


class ApiError(Exception):
    """An error answered as ``{"error": message, "detail": detail}`` with ``status``."""

    def __init__(self, status: int, error: str, detail: str):
        super().__init__(f"{error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


def _error_response(status: int, error: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _plotly_js() -> Path | None:
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def _fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.3g} MB"


# --------------------------------------------------------------------------- upload streaming


class _UploadReceiver:
    """Parse a multipart body as it streams in: the ``file`` part goes straight to a temp file,
    small fields (``top_k``) are kept; stops as soon as the file passes the size limit."""

    def __init__(self, boundary: bytes, sink, limit: int):
        import python_multipart.multipart as mp

        self.sink = sink
        self.limit = limit
        self.file_bytes = 0
        self.too_large = False
        self.filename: str | None = None
        self.file_parts = 0
        self.fields: dict[str, str] = {}
        self._headers: list[tuple[bytes, bytes]] = []
        self._hname = b""
        self._hvalue = b""
        self._mode: str | None = None  # "file", "field" or "skip"
        self._field_name = ""
        self._field_data = bytearray()
        self._parse_options_header = mp.parse_options_header
        self.parser = mp.MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
            },
        )

    def _part_begin(self) -> None:
        self._headers, self._mode, self._field_name, self._field_data = [], None, "", bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._hname.lower(), self._hvalue))
        self._hname, self._hvalue = b"", b""

    def _headers_finished(self) -> None:
        disposition = next((v for k, v in self._headers if k == b"content-disposition"), b"")
        _, options = self._parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == "file" and self.file_parts == 0:
            self.file_parts += 1
            self._mode = "file"
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace") or "upload"
        elif name and name != "file":
            self._mode, self._field_name = "field", name
        else:
            self._mode = "skip"  # a second file part is ignored

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._mode == "file":
            n = end - start
            if self.too_large:
                return
            if self.file_bytes + n > self.limit:
                self.too_large = True
                return
            self.sink.write(data[start:end])
            self.file_bytes += n
        elif self._mode == "field" and len(self._field_data) < _CHUNK_LIMIT_FIELD:
            self._field_data += data[start:end]

    def _part_end(self) -> None:
        if self._mode == "field":
            self.fields[self._field_name] = bytes(self._field_data[:_CHUNK_LIMIT_FIELD]).decode("utf-8", "replace")
        self._mode = None

    def write(self, chunk: bytes) -> None:
        self.parser.write(chunk)

    def finalize(self) -> None:
        self.parser.finalize()


async def _receive_upload(request: Request, config: ServeConfig, tmp_path: Path) -> _UploadReceiver:
    """Stream the request body into ``tmp_path``; raise :class:`ApiError` on a bad request."""
    import python_multipart.multipart as mp
    from python_multipart.exceptions import FormParserError

    ctype, params = mp.parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(
            400,
            "not a file upload",
            "send the audio as multipart/form-data with the file in the field 'file'",
        )
    limit = config.max_upload_bytes
    declared = request.headers.get("content-length")
    # multipart framing adds a few hundred bytes; anything declared far beyond the limit is
    # refused before a single byte is read
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise ApiError(
            413,
            "file too large",
            f"the upload is {_fmt_mb(int(declared))}; this server accepts files up to {_fmt_mb(limit)}",
        )
    with open(tmp_path, "wb") as sink:
        receiver = _UploadReceiver(params[b"boundary"], sink, limit)
        try:
            async for chunk in request.stream():
                receiver.write(chunk)
                if receiver.too_large:
                    break
            else:
                receiver.finalize()
        except FormParserError:
            raise ApiError(400, "malformed upload", "the multipart/form-data body could not be parsed") from None
        except ClientDisconnect:
            raise ApiError(400, "upload interrupted", "the connection closed before the file was received") from None
    if receiver.too_large:
        raise ApiError(
            413,
            "file too large",
            f"the upload is larger than {_fmt_mb(limit)}, the most this server accepts",
        )
    if receiver.file_parts == 0:
        raise ApiError(422, "missing file", "send the audio in the multipart/form-data field 'file'")
    return receiver


def _parse_top_k(raw: str | None, n_labels: int) -> int:
    if raw is None or raw == "":
        return min(3, n_labels)
    try:
        k = int(raw)
    except ValueError:
        raise ApiError(422, "invalid top_k", f"top_k must be a whole number from 1 to {n_labels}, not '{raw}'") from None
    if not 1 <= k <= n_labels:
        raise ApiError(422, "invalid top_k", f"top_k must be from 1 to {n_labels}, not {k}")
    return k


# --------------------------------------------------------------------------- the app


def _model_sample_rate(predictor) -> int:
    sr = getattr(getattr(predictor, "config", None), "sample_rate", None)
    return sr if isinstance(sr, int) and sr > 0 else SAMPLE_RATE


def _jsonable(value: Any) -> Any:
    """Make model info safe for JSON (paths, numpy scalars, tuples...)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def create_app(
    model: str | os.PathLike | None = None,
    *,
    max_upload_mb: float = 50,
    max_duration_s: float = 900,
    tmp_dir: str | os.PathLike | None = None,
    live_window_s: float = 3.0,
    live_interval_s: float = 1.0,
    workers: int = 1,
    warmup: bool = True,
) -> FastAPI:
    """Build the web app around one model, loaded now.

    Parameters
    ----------
    model : checkpoint path, or ``None`` for the bundled default model
    max_upload_mb : largest accepted upload in MB (10**6 bytes)
    max_duration_s : longest accepted audio in seconds
    tmp_dir : folder for uploads in progress (``None``: the system temp folder)
    live_window_s, live_interval_s : microphone window and prediction interval in seconds
    workers : how many decode + predict jobs may run at the same time
    warmup : run the model once on silence so that the first request is not slow

    Raises
    ------
    GenrekitError
        the model cannot be loaded
    """
    from genrekit.predictor import Predictor

    if max_upload_mb <= 0 or max_duration_s <= 0:
        raise GenrekitError("max_upload_mb and max_duration_s must be positive")
    config = ServeConfig(
        model=None if model is None else str(model),
        max_upload_mb=float(max_upload_mb),
        max_duration_s=float(max_duration_s),
        tmp_dir=None if tmp_dir is None else str(tmp_dir),
        live_window_s=float(live_window_s),
        live_interval_s=float(live_interval_s),
        workers=max(1, int(workers)),
    )
    predictor = Predictor.load(model=config.model)
    labels = list(predictor.labels)
    model_sr = _model_sample_rate(predictor)
    info = _jsonable(dict(getattr(predictor, "info", {}) or {}))
    info.pop("path", None)  # where the model sits on the server is nobody else's business
    if warmup:  # the first forward pass is slow (allocations, kernel choice): pay it now, not on a user
        predictor.predict_signal(np.zeros(model_sr, np.float32), model_sr, top_k=1, name="warmup")

    app = FastAPI(
        docs_url=None,  # served below from the installed swagger-ui-bundle: no CDN needed
        title="genrekit",
        version=__version__,
        description="Music genre classification: upload a song, get its genres over time.",
    )
    app.state.config = config
    app.state.predictor = predictor
    limiters: dict[int, anyio.CapacityLimiter] = {}

    def limiter() -> anyio.CapacityLimiter:
        # one limiter per event loop (a TestClient and a server never share one)
        loop = id(asyncio.get_running_loop())
        if loop not in limiters:
            limiters.clear()
            limiters[loop] = anyio.CapacityLimiter(config.workers)
        return limiters[loop]

    async def run_model(fn, *args):
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter())

    # ------------------------------------------------------------------ errors as JSON
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return _error_response(exc.status, exc.error, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException):
        try:
            phrase = HTTPStatus(exc.status_code).phrase.lower()
        except ValueError:
            phrase = "error"
        return _error_response(exc.status_code, phrase, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, exc: Exception):
        # logged with its traceback by the server; the user gets JSON, not a bare "Internal Server Error"
        return _error_response(500, "internal error", f"the server failed: {exc.__class__.__name__}: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError):
        parts = ["/".join(str(p) for p in e.get("loc", ())) + ": " + e.get("msg", "") for e in exc.errors()]
        return _error_response(422, "invalid request", "; ".join(parts))

    # ------------------------------------------------------------------ page and assets
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    plotly_js = _plotly_js()

    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_bundle():
        if plotly_js is None:
            raise ApiError(404, "plotly.js not found", "install the 'plotly' Python package on the server")
        return FileResponse(plotly_js, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="genrekit API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg" if (STATIC_DIR / "favicon.svg").exists() else "",
        )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)

    # ------------------------------------------------------------------ API
    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict:
        """Liveness probe: the model is loaded and the server answers."""
        return {"status": "ok", "model": info.get("name") or info.get("model"), "version": __version__}

    @app.get("/api/models", tags=["model"])
    async def models() -> dict:
        """The loaded model: its description, labels and the limits this server enforces."""
        return {
            "model": info,
            "labels": labels,
            "limits": {
                "max_upload_mb": config.max_upload_mb,
                "max_duration_s": config.max_duration_s,
                "live_window_s": config.live_window_s,
                "live_interval_s": config.live_interval_s,
            },
        }

    def analyse(path: Path, top_k: int) -> dict:
        """Decode and predict (runs in a worker thread)."""
        header_s = duration_seconds(path)
        if header_s is not None and header_s > config.max_duration_s + 0.5:
            raise ApiError(
                422,
                "audio too long",
                f"the audio lasts {header_s:.0f} s; this server accepts up to {config.max_duration_s:.0f} s",
            )
        t0 = time.perf_counter()
        y = load_audio(path, sr=model_sr, max_seconds=config.max_duration_s + 1.0)
        decode_s = time.perf_counter() - t0
        duration = len(y) / model_sr
        if duration > config.max_duration_s + 0.5:
            raise ApiError(
                422,
                "audio too long",
                f"the audio lasts more than {config.max_duration_s:.0f} s, the most this server accepts",
            )
        t1 = time.perf_counter()
        pred = predictor.predict_signal(y, model_sr, top_k=top_k, name=path.name)
        predict_s = time.perf_counter() - t1
        return {"prediction": pred, "decode_s": decode_s, "predict_s": predict_s, "duration_s": duration}

    @app.post(
        "/api/predict",
        tags=["model"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary", "description": "any audio file"},
                                "top_k": {"type": "integer", "minimum": 1, "default": 3},
                            },
                        }
                    }
                },
            }
        },
        responses={
            400: {"description": "not a multipart/form-data upload"},
            413: {"description": "file larger than the upload limit"},
            422: {"description": "missing, empty, corrupt, non-audio or too long file"},
        },
    )
    async def predict(request: Request) -> JSONResponse:
        """Predict the genre of an uploaded audio file, overall and segment by segment.

        The content is checked by decoding it, whatever the file name says.
        """
        t_start = time.perf_counter()
        fd, name = tempfile.mkstemp(prefix=UPLOAD_PREFIX, suffix=".bin", dir=config.tmp_dir)
        os.close(fd)
        tmp_path = Path(name)
        try:
            upload = await _receive_upload(request, config, tmp_path)
            upload_s = time.perf_counter() - t_start
            top_k = _parse_top_k(upload.fields.get("top_k", request.query_params.get("top_k")), len(labels))
            if upload.file_bytes == 0:
                raise ApiError(422, "empty file", f"'{upload.filename}' contains no data")
            try:
                result = await run_model(analyse, tmp_path, top_k)
            except AudioError as exc:
                raise ApiError(
                    422, "not a readable audio file", f"'{upload.filename}' could not be decoded: {exc.reason}"
                ) from None
            except GenrekitError as exc:
                raise ApiError(422, "cannot analyse this audio", str(exc)) from None
        finally:
            with suppress(OSError):
                tmp_path.unlink()
        pred = result["prediction"]
        body = _jsonable(pred.to_dict())
        body.pop("path", None)
        body.update(
            {
                "file": {"name": upload.filename, "bytes": upload.file_bytes},
                "duration_s": round(result["duration_s"], 3),
                "labels": labels,
                "model": info,
                "timing": {
                    "upload_ms": round(upload_s * 1000, 1),
                    "decode_ms": round(result["decode_s"] * 1000, 1),
                    "predict_ms": round(result["predict_s"] * 1000, 1),
                    "total_ms": round((time.perf_counter() - t_start) * 1000, 1),
                },
            }
        )
        return JSONResponse(body)

    # ------------------------------------------------------------------ live microphone
    @app.websocket("/ws/live")
    async def live(ws: WebSocket) -> None:
        """Microphone stream in; about every second, the prediction of the last few seconds out.

        At most one prediction runs at a time; when the model is slower than real time, the
        predictions that fall due meanwhile collapse into one on the newest audio. A text message
        ``{"type": "stop"}`` ends the session after the last due prediction has been sent.
        """
        await ws.accept()
        send_lock = asyncio.Lock()

        async def send(payload: dict) -> None:
            async with send_lock:
                await ws.send_json(payload)

        async def fail(error: str, detail: str, code: int = 1003) -> None:
            with suppress(Exception):
                await send({"error": error, "detail": detail})
                await ws.close(code=code)

        state = {"buf": np.zeros(0, dtype=np.float32), "received": 0, "due": False}
        runner: asyncio.Task | None = None
        stopped = False
        try:
            first = await ws.receive()
            if first.get("type") == "websocket.disconnect":
                return
            try:
                sr = int(json.loads(first.get("text") or "")["sample_rate"])
                if not 8000 <= sr <= 192000:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                await fail("bad start message", 'first send a JSON text message like {"sample_rate": 48000}')
                return
            window = int(round(config.live_window_s * sr))
            interval = max(1, int(round(config.live_interval_s * sr)))
            next_at = interval
            await send({"ready": True, "sample_rate": sr, "window_s": config.live_window_s, "labels": labels})

            def run_once(y: np.ndarray):
                return predictor.predict_signal(y, sr, top_k=min(3, len(labels)), name="live")

            async def predictions() -> None:
                while state["due"]:
                    state["due"] = False
                    y, t = state["buf"].copy(), state["received"] / sr
                    try:
                        pred = await run_model(run_once, y)
                    except GenrekitError as exc:
                        await send({"error": "prediction failed", "detail": str(exc)})
                        continue
                    await send(
                        {
                            "probabilities": {k: float(v) for k, v in pred.probabilities.items()},
                            "top": [{"genre": g, "probability": float(p)} for g, p in pred.top],
                            "t": round(t, 3),
                        }
                    )

            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                data = msg.get("bytes")
                if data is None:
                    with suppress(ValueError, TypeError, AttributeError):
                        if json.loads(msg.get("text") or "").get("type") == "stop":
                            stopped = True
                            break
                    continue  # other text messages are ignored
                if len(data) % 4:
                    await fail("bad audio chunk", "binary messages must hold whole float32 samples (4 bytes each)")
                    return
                chunk = np.nan_to_num(np.frombuffer(data, dtype="<f4"), nan=0.0, posinf=0.0, neginf=0.0)
                state["received"] += chunk.size
                state["buf"] = np.concatenate([state["buf"], chunk.astype(np.float32)])[-window:]
                if state["received"] >= next_at:
                    next_at = state["received"] + interval
                    state["due"] = True
                    if runner is None or runner.done():
                        runner = asyncio.create_task(predictions())
            if stopped:
                if runner is not None:
                    await runner
                await ws.close(code=1000)
        except WebSocketDisconnect:
            pass
        finally:
            if runner is not None and not runner.done():
                runner.cancel()

    return app
