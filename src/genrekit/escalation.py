"""How a sample of spread windows grows until its top genre is settled (:mod:`genrekit.sampling`):
a plain dataclass in a light module, so that worker processes receive it before numpy loads."""

from __future__ import annotations

from dataclasses import dataclass

from genrekit.errors import GenrekitError


@dataclass(frozen=True)
class Escalation:
    """How a sample of spread windows grows until its top genre is settled (see the module doc).

    ``growth``: each stage analyses this many times the windows of the one before (odd: the
    windows nest); ``z``: how many standard errors the top genre's mean lead must be
    (:func:`genrekit.sampling.settled`). z is not fitted: of the two values set beforehand, 2 and
    3, both gave the top genre of the full analysis on every joined GTZAN song measured, and 2
    analyses fewer windows (``benchmarks/tagging_speed.py`` reports both; the outside clips are
    a check, never chosen on).
    """

    growth: int = 3
    z: float = 2.0

    def __post_init__(self):
        if self.growth < 2 or self.z < 0:
            raise GenrekitError(
                f"an escalation grows at least twofold with z >= 0, not growth {self.growth}, z {self.z}"
            )


DEFAULT_ESCALATION = Escalation()  # the library's default (frozen: one instance serves every call)
