"""The REST API: ``POST /api/predict``, ``GET /api/models``, ``GET /healthz``.

An upload is parsed by Starlette's form parser within the limits of :class:`ServeConfig`
(the whole body is counted by :class:`genrekit.serve.guards.BodyLimit`), written to a temp file
that keeps the upload's suffix, and predicted by ``Predictor.predict_file``: the streaming path
of ``genrekit predict``, so that long files and Kaggle ``.png`` images behave as on the command
line. The temp file is removed whatever happens.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from contextlib import suppress
from typing import IO, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from genrekit import __version__
from genrekit.audio import AudioError
from genrekit.errors import GenrekitError
from genrekit.serve.config import ServeConfig
from genrekit.serve.errors import ApiError
from genrekit.serve.present import prediction_body
from genrekit.serve.state import ServeState, serve_state

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
    503: {"description": "too many uploads in progress; retry after the Retry-After header's seconds"},
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
    config = serve.config
    with serve.pool.upload():  # 503 at once, before reading, when the server is busy
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
        with serve.pool.admission():
            pred, t_job, predict_s = await serve.pool.run(_analyse, upload.file, name, config, serve.predictor)
    finally:
        await form.close()
    if pred.duration_s > config.max_duration_s + 0.5:
        raise ApiError(
            422, "audio too long",
            f"the audio lasts more than {config.max_duration_s:g} s, the most this server accepts",
        )  # fmt: skip
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
    return JSONResponse(body)


async def _read_form(request: Request, config: ServeConfig) -> FormData:
    try:
        return await request.form(max_files=1, max_fields=config.max_form_fields, max_part_size=config.max_field_bytes)
    except HTTPException as exc:  # Starlette's form parser says what is wrong in words only
        detail = str(exc.detail)
        if detail.startswith(("Too many fields", "Field exceeded", "Part exceeded")):
            raise ApiError(
                413, "too many form fields",
                f"send the file and top_k only (at most {config.max_form_fields} small fields): {detail}",
            ) from None  # fmt: skip
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


def _analyse(upload: IO[bytes], name: str, config: ServeConfig, predictor: Any) -> tuple[Any, float, float]:
    """Copy the upload to a temp file and predict it (on a pool thread).

    Returns the prediction, the time the job started and its duration in seconds.
    """
    t0 = time.perf_counter()
    fd, path = tempfile.mkstemp(prefix=UPLOAD_PREFIX, suffix=_suffix(name), dir=config.tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            upload.seek(0)
            shutil.copyfileobj(upload, out, 1 << 20)
        # one second more than the limit: enough to tell a file that is too long
        pred = predictor.predict_file(path, max_seconds=config.max_duration_s + 1.0)
    except AudioError as exc:
        raise ApiError(422, "not a readable audio file", f"'{name}' could not be decoded: {exc.reason}") from None
    except GenrekitError as exc:
        raise ApiError(422, "cannot analyse this audio", str(exc).replace(path, name)) from None
    finally:
        with suppress(OSError):
            os.unlink(path)
    return pred, t0, time.perf_counter() - t0
