"""Predictions as the API answers them: the one JSON object of :mod:`genrekit.schema`, with every window.

Probabilities go out unrounded (they sum to 1); the page rounds what it displays.
"""

from __future__ import annotations

import json
from typing import Any

from genrekit.schema import prediction_json


def prediction_body(prediction: Any, *, top_k: int, name: str | None = None) -> dict:
    """The genres of one song or one stretch of microphone audio, as JSON, with ``styles``: the
    musicnn MSD tags from :data:`genrekit.schema.DEFAULT_STYLE_THRESHOLD` on (``null`` when the
    model has none).

    Parameters
    ----------
    prediction : a :class:`genrekit.predictor.Prediction`
    top_k : how many genres ``top`` lists
    name : the name to give as ``path`` (the upload's file name; never a path on the server)
    """
    body = prediction_json(prediction, top_k=top_k, windows=True)
    body["path"] = name if name is not None else body["path"]
    body.setdefault("styles", None)  # a model without the musicnn tags has no styles
    return body


def jsonable(value: Any) -> Any:
    """``value`` made safe for JSON (paths, numpy scalars, tuples...)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
