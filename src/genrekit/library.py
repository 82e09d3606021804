"""The names of the library tagging API from before :mod:`genrekit.tagging` held it (kept: the
README and scripts use them). The code lives in :mod:`genrekit.tagging.local` (the run),
:mod:`genrekit.tagging.scan` (the inputs), :mod:`genrekit.tagging.core` (one file, the summary) and
:mod:`genrekit.tagging.rows` (the row schema).
"""

from genrekit.tagging.core import DEFAULT_FILE_TIMEOUT, DEFAULT_MAX_DURATION, LibrarySummary
from genrekit.tagging.local import run_library
from genrekit.tagging.rows import CSV_FIELDS
from genrekit.tagging.scan import LibraryItem, collect_inputs, scan_inputs

__all__ = [
    "CSV_FIELDS",
    "DEFAULT_FILE_TIMEOUT",
    "DEFAULT_MAX_DURATION",
    "LibraryItem",
    "LibrarySummary",
    "collect_inputs",
    "run_library",
    "scan_inputs",
]
