"""Predictions as the API answers them, and the headline the page shows in big type.

Probabilities go out unrounded (they sum to 1); the page rounds what it displays.
"""
from __future__ import annotations

import json
from typing import Any

# genres within this many points of probability of the top one are shown with it: a song in three
# equal parts reads "blues / jazz / rock", not "blues"
MIX_MARGIN = 0.15
MIX_MAX = 3


def headline(top: list[tuple[str, float]]) -> dict:
    """The genre to show in big type, or the mix of genres when the top ones are close.

    Parameters
    ----------
    top : (genre, probability) pairs, most probable first

    Returns
    -------
    dict
        ``genres`` (one, or up to three when mixed), ``mixed``, and ``label`` ("jazz" or
        "blues / jazz")
    """
    if not top:
        return {"genres": [], "mixed": False, "label": ""}
    best = top[0][1]
    genres = [g for g, p in top[:MIX_MAX] if p >= best - MIX_MARGIN]
    return {"genres": genres, "mixed": len(genres) > 1, "label": " / ".join(genres)}


def prediction_body(prediction: Any, *, top_k: int) -> dict:
    """The genres of one song or one stretch of microphone audio, as JSON.

    Parameters
    ----------
    prediction : a :class:`genrekit.predictor.Prediction`
    top_k : how many genres ``top`` lists
    """
    probabilities = {str(g): float(p) for g, p in prediction.probabilities.items()}
    top = sorted(probabilities.items(), key=lambda gp: -gp[1])  # every genre, whatever top_k was
    no_music = getattr(prediction, "no_music", None)
    return {
        "duration_s": round(float(prediction.duration_s), 3),
        "top": [{"genre": g, "probability": p} for g, p in top[:top_k]],
        "headline": {"genres": [], "mixed": False, "label": "no music detected"} if no_music else headline(top),
        "music_detected": no_music is None,
        "no_music": no_music,
        "confident": bool(getattr(prediction, "confident", True)),
        "probabilities": probabilities,
        "timeline": [
            {
                "start_s": round(float(s.start_s), 3),
                "end_s": round(float(s.end_s), 3),
                "label": str(s.label),
                "probabilities": {str(g): float(p) for g, p in s.probabilities.items()},
            }
            for s in prediction.timeline
        ],
    }


def jsonable(value: Any) -> Any:
    """``value`` made safe for JSON (paths, numpy scalars, tuples...)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
