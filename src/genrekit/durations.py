"""Durations as people write them: seconds, m:ss or h:mm:ss (a light module, for the command line too)."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """``seconds`` as m:ss, or h:mm:ss from an hour on (whole seconds, rounded down)."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def parse_duration(text: str) -> float | None:
    """Seconds of ``'90'``, ``'1.5'``, ``'1:30'`` or ``'2:00:00'``; ``'none'`` is no limit (``None``).

    Raises
    ------
    ValueError
        ``text`` is none of these, or is not positive
    """
    if text.strip().lower() == "none":
        return None
    parts = text.strip().split(":")
    try:
        if len(parts) > 3 or not all(p.strip() for p in parts):
            raise ValueError
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + float(p)
    except ValueError:
        raise ValueError(f"'{text}' is not a duration: give seconds (90), m:ss (1:30), h:mm:ss (2:00:00) or none")
    if not seconds > 0:
        raise ValueError(f"'{text}' is not a positive duration; give 'none' for no limit")
    return seconds
