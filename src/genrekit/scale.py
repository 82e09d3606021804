"""The names of the Ray engine from before :mod:`genrekit.tagging` held it (kept: scripts and
docs/scale.md use them). The code lives in :mod:`genrekit.tagging.ray_engine`."""

from genrekit.tagging.ray_engine import CSV_NAME, done_paths, export_csv, run_ray
from genrekit.tagging.rows import row_key
from genrekit.tagging.scan import list_items, manifest_items

__all__ = ["CSV_NAME", "done_paths", "export_csv", "list_items", "manifest_items", "row_key", "run_ray"]
