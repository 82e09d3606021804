"""The backbone's precision: ``fp32``, the ONNX export; ``int8``, a quantised copy its card may name
(``scripts/quantize_backbone.py``; ``benchmarks/results/int8.md`` measures its agreement with fp32).
A light module, so that worker processes receive the setting before numpy loads."""

from __future__ import annotations

from genrekit.errors import GenrekitError

PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"


def check_precision(precision: str) -> None:
    """Raise :class:`GenrekitError` unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise GenrekitError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
