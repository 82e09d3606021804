"""Errors of the web API, always answered as JSON ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


class ApiError(Exception):
    """An error answered as ``{"error": error, "detail": detail}`` with HTTP ``status``.

    Parameters
    ----------
    status : HTTP status code
    error : short message, lower case (the page shows it as a title)
    detail : what happened and what to do about it
    headers : extra response headers (``Retry-After``...)
    """

    def __init__(self, status: int, error: str, detail: str, *, headers: dict[str, str] | None = None):
        super().__init__(f"{error}: {detail}")
        self.status, self.error, self.detail, self.headers = status, error, detail, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.error, self.detail, headers=self.headers)


def error_response(status: int, error: str, detail: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer of every error."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        try:
            phrase = HTTPStatus(exc.status_code).phrase.lower()
        except ValueError:
            phrase = "error"
        return error_response(exc.status_code, phrase, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = ["/".join(str(p) for p in e.get("loc", ())) + ": " + e.get("msg", "") for e in exc.errors()]
        return error_response(422, "invalid request", "; ".join(parts))

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
        # the server logs the traceback; the user gets JSON, not a bare "Internal Server Error"
        return error_response(500, "internal error", f"the server failed: {exc.__class__.__name__}: {exc}")
