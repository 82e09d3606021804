"""``/docs``: Swagger UI, served from the installed ``swagger-ui-bundle`` package (no CDN).

That package ships Swagger UI 4, which cannot read the OpenAPI 3.1 document FastAPI writes
("Unable to render this definition"); the docs page therefore reads the same API described in
OpenAPI 3.0 (``/docs/openapi.json``), while ``/openapi.json`` stays FastAPI's own 3.1 document.
"""

from __future__ import annotations

import copy
from typing import Any

import swagger_ui_bundle
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

OPENAPI_30_URL = "/docs/openapi.json"

router = APIRouter(include_in_schema=False)


# the page and its start script, apart: the Content-Security-Policy allows no inline script
_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="/docs-assets/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg">
<title>genrekit API</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body>
</html>
"""
_DOCS_START = f"""window.ui = SwaggerUIBundle({{
  url: "{OPENAPI_30_URL}",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}});
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(_DOCS_PAGE)


@router.get("/docs/start.js")
async def docs_start() -> Response:
    return Response(_DOCS_START, media_type="text/javascript")


@router.get(OPENAPI_30_URL)
async def openapi_30_document(request: Request) -> JSONResponse:
    return JSONResponse(openapi_30(request.app.openapi()))


def mount_docs(app: FastAPI) -> None:
    """Add ``/docs``, its OpenAPI 3.0 document and its assets to ``app``."""
    app.include_router(router)
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")


def openapi_30(document: dict) -> dict:
    """An OpenAPI 3.1 document rewritten in OpenAPI 3.0 terms (what FastAPI's schemas use of it).

    - ``anyOf``/``oneOf`` with ``{"type": "null"}``, and type lists with ``"null"``: ``nullable``
    - ``examples`` lists in schemas: ``example``; ``const``: a one-value ``enum``
    - numeric ``exclusiveMinimum``/``exclusiveMaximum``: the 3.0 boolean forms
    - ``contentMediaType`` of binary strings: ``format: binary``
    """
    doc = copy.deepcopy(document)
    doc["openapi"] = "3.0.3"
    for key in ("jsonSchemaDialect", "webhooks"):
        doc.pop(key, None)
    _walk(doc)
    return doc


def _walk(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item)
    elif isinstance(node, dict):
        _schema_30(node)
        for value in node.values():
            _walk(value)


def _schema_30(s: dict) -> None:
    for key in ("anyOf", "oneOf"):
        options = s.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            s["nullable"] = True
            del s[key]
            if len(rest) == 1 and "$ref" not in rest[0]:
                s.update(rest[0])
            else:  # 3.0 ignores the siblings of a $ref: wrap it
                s["allOf" if len(rest) == 1 else key] = rest
    if isinstance(s.get("type"), list):
        types = [t for t in s["type"] if t != "null"]
        s["nullable"] = s.get("nullable", False) or len(types) < len(s["type"])
        s["type"] = types[0] if len(types) == 1 else "string"
    if isinstance(s.get("examples"), list) and "type" in s:
        examples = s.pop("examples")
        if examples:
            s["example"] = examples[0]
    if "const" in s:
        s["enum"] = [s.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(s.get(bound), (int, float)) and not isinstance(s.get(bound), bool):
            s[plain], s[bound] = s[bound], True
    if "contentMediaType" in s and s.get("type") == "string":
        s.pop("contentMediaType")
        s.pop("contentEncoding", None)
        s["format"] = "binary"
