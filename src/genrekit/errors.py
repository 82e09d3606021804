"""The error type of genrekit: a light module, so that anything (the CLI first) can import it cheaply."""

from __future__ import annotations


class GenrekitError(Exception):
    """Base class of errors a user can fix; the CLI prints the message without a traceback."""
