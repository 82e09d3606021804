"""The REST API: ``POST /api/predict``, ``GET /api/models``, ``GET /healthz``.

An upload is parsed by Starlette's form parser within the limits of :class:`ServeConfig`
(the whole body is counted by :class:`genrekit.serve.guards.BodyLimit`), written to a temp file
that keeps the upload's suffix, and predicted by ``Predictor.predict_file``: the streaming path
of ``genrekit predict``, so that long files and Kaggle ``.png`` images behave as on the command
line. The temp file is removed whatever happens.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from genrekit import __version__
from genrekit.audio import AudioError, probe_audio
from genrekit.errors import GenrekitError
from genrekit.serve.config import ServeConfig
from genrekit.serve.errors import ApiError
from genrekit.serve.present import prediction_body
from genrekit.serve.state import ServeState, client_of, serve_state
from genrekit.tagging.styles import style_rows

UPLOAD_PREFIX = "genrekit-upload-"
DEFAULT_TOP_K = 3

router = APIRouter()

_PREDICT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "an audio file (or a GTZAN .png)"},
                    "top_k": {"type": "integer", "minimum": 1, "default": DEFAULT_TOP_K},
                },
            }
        }
    },
}
_PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "not a multipart/form-data upload, malformed, or a Host this server does not answer to"},
    403: {"description": "posted by a page of another site"},
    408: {"description": "the upload stalled or was too slow"},
    413: {"description": "file, body or form fields beyond the limits"},
    422: {"description": "missing, empty, corrupt, non-audio or too long file"},
    503: {
        "description": "too many uploads or songs in progress (in all, or from this client); "
        "retry after the Retry-After header's seconds"
    },
}


@router.get("/healthz", tags=["service"])
async def healthz(serve: ServeState = Depends(serve_state)) -> dict:
    """Liveness probe: the model is loaded and the server answers."""
    info = serve.info
    return {"status": "ok", "model": info.get("name") or info.get("model"), "version": __version__}


@router.get("/api/models", tags=["model"])
async def models(serve: ServeState = Depends(serve_state)) -> dict:
    """The loaded model: its description, labels and the limits this server enforces."""
    c = serve.config
    names = ("max_upload_mb", "max_duration_s", "live_window_s", "live_interval_s", "workers")
    limits = {k: getattr(c, k) for k in names}
    return {"model": serve.info, "labels": serve.labels, "limits": {**limits, "max_queue": c.queue_size}}


@router.post("/api/predict", tags=["model"], openapi_extra={"requestBody": _PREDICT_BODY}, responses=_PREDICT_ERRORS)
async def predict(request: Request, serve: ServeState = Depends(serve_state)) -> JSONResponse:
    """Predict the genre of an uploaded audio file, overall and segment by segment.

    The content is checked by decoding it, whatever the file name says.
    """
    t_start = time.perf_counter()
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        detail = "send the audio as multipart/form-data with the file in the field 'file'"
        raise ApiError(400, "not a file upload", detail)
    config, pool = serve.config, serve.pool
    client = client_of(request, config)
    with pool.upload(client):  # 503 at once, before reading, when the server or this client is busy
        form = await _read_form(request, config)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "missing file", "send the audio in the multipart/form-data field 'file'")
        name = os.path.basename((upload.filename or "upload").replace("\\", "/"))[:200] or "upload"
        top_k = _top_k(form.get("top_k") or request.query_params.get("top_k"), len(serve.labels))
        size = upload.size or 0
        if size == 0:
            raise ApiError(422, "empty file", f"'{name}' contains no data")
        if size > config.max_upload_bytes:
            raise ApiError(413, "file too large", f"this server accepts files up to {config.max_upload_mb:g} MB")
        t_uploaded = time.perf_counter()
        path = await anyio.to_thread.run_sync(_save, upload.file, name, config)
    finally:
        await form.close()
    try:
        # the header read before the song takes a place: too long is refused, and its cost known
        audio_s = await anyio.to_thread.run_sync(_probe, path, name, config)
        with pool.admission(client, audio_s) as job:
            pace = functools.partial(pool.paced, job=job)
            pred, t_job, predict_s = await pool.run(_analyse, path, name, config, serve.predictor, pace, job=job)
    finally:
        with suppress(OSError):
            os.unlink(path)
    if pred.duration_s > config.max_duration_s + 0.5:
        raise _too_long(config)
    body = prediction_body(pred, top_k=top_k, name=name)
    body.update(
        file={"name": name, "bytes": size},
        timing={
            "upload_ms": round((t_uploaded - t_start) * 1000, 1),
            "queue_ms": round((t_job - t_uploaded) * 1000, 1),
            "predict_ms": round(predict_s * 1000, 1),
            "total_ms": round((time.perf_counter() - t_start) * 1000, 1),
        },
    )
    try:
        return JSONResponse(body)  # strict JSON: a NaN or an infinity is refused, never sent
    except ValueError:
        raise ApiError(
            422, "cannot analyse this audio", f"the analysis of '{name}' gave values that are not numbers"
        ) from None


def _too_long(config: ServeConfig) -> ApiError:
    return ApiError(
        422, "audio too long", f"the audio lasts more than {config.max_duration_s:g} s, the most this server accepts"
    )


async def _read_form(request: Request, config: ServeConfig) -> FormData:
    try:
        return await request.form(max_files=1, max_fields=config.max_form_fields, max_part_size=config.max_field_bytes)
    except HTTPException as exc:  # Starlette's form parser says what is wrong in words only
        detail = str(exc.detail)
        if detail.startswith(("Too many fields", "Field exceeded", "Part exceeded")):
            raise ApiError(
                413,
                "too many form fields",
                f"send the file and top_k only (at most {config.max_form_fields} small fields): {detail}",
            ) from None
        if detail.startswith("Too many files"):
            raise ApiError(422, "one file at a time", "send one file in the field 'file'") from None
        raise ApiError(400, "malformed upload", f"the multipart/form-data body could not be parsed: {detail}") from None
    except ClientDisconnect:
        raise ApiError(400, "upload interrupted", "the connection closed before the file was received") from None


def _top_k(raw: Any, n_labels: int) -> int:
    if raw is None or raw == "":
        return min(DEFAULT_TOP_K, n_labels)
    try:
        k = int(raw)
    except (TypeError, ValueError):
        detail = f"top_k must be a whole number from 1 to {n_labels}, not '{raw}'"
        raise ApiError(422, "invalid top_k", detail) from None
    if not 1 <= k <= n_labels:
        raise ApiError(422, "invalid top_k", f"top_k must be from 1 to {n_labels}, not {k}")
    return k


def _suffix(name: str) -> str:
    """The upload's extension if it is a plain one (``.mp3``, ``.png``...), else none."""
    suffix = os.path.splitext(name)[1].lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _save(upload: IO[bytes], name: str, config: ServeConfig) -> str:
    """Copy the upload to a temp file that keeps its suffix (on a thread); returns its path."""
    fd, path = tempfile.mkstemp(prefix=UPLOAD_PREFIX, suffix=_suffix(name), dir=config.tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            upload.seek(0)
            shutil.copyfileobj(upload, out, 1 << 20)
    except BaseException:
        with suppress(OSError):
            os.unlink(path)
        raise
    return path


@contextmanager
def _decoding_errors(name: str, path: str) -> Iterator[None]:
    """AudioError and GenrekitError as the 422 answers that name the upload, not the temp file."""
    try:
        yield
    except AudioError as exc:
        raise ApiError(422, "not a readable audio file", f"'{name}' could not be decoded: {exc.reason}") from None
    except GenrekitError as exc:
        raise ApiError(422, "cannot analyse this audio", str(exc).replace(path, name)) from None


def _probe(path: str, name: str, config: ServeConfig) -> float:
    """Seconds of audio the upload's header declares, on a thread: 422 when too long.

    The limit when the header does not say; 0 when the file cannot be read at all (its job fails
    at once, and says why).
    """
    if _suffix(name) == ".png":  # a Kaggle spectrogram image: a 30-s clip
        return 30.0
    try:
        declared = probe_audio(path).declared_s
    except GenrekitError:
        return 0.0
    if declared is not None and declared > config.max_duration_s + 0.5:
        raise _too_long(config)
    return config.max_duration_s if declared is None else declared


def _analyse(path: str, name: str, config: ServeConfig, predictor: Any, pace: Any) -> tuple[Any, float, float]:
    """Predict the saved upload (on a pool thread, taking turns at the model through ``pace``).

    Returns the prediction, the time the job started and its duration in seconds.
    """
    t0 = time.perf_counter()
    with _decoding_errors(name, path):
        # one second more than the limit: enough to tell a file that is too long
        pred = predictor.predict_file(
            path,
            max_seconds=config.max_duration_s + 1.0,
            pace=pace,
            styles=style_rows(getattr(predictor, "feature_config", None)) is not None,
        )
    return pred, t0, time.perf_counter() - t0
