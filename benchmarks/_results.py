"""Shared helpers for benchmark scripts: write JSON + markdown, update summary.json."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SUMMARY = RESULTS / "summary.json"
SHARED_DATA = Path(os.environ.get("GENREKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan"))


def machine() -> dict:
    """Describe the machine a figure was measured on (torch's figures only where it is installed)."""
    out = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    try:
        import torch
    except ImportError:
        return out
    return {**out, "torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def update_summary(values: dict) -> None:
    """Merge ``values`` into the flat ``summary.json`` shared by all benchmarks."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = json.loads(SUMMARY.read_text()) if SUMMARY.exists() else {}
    summary.update(values)
    SUMMARY.write_text(json.dumps(dict(sorted(summary.items())), indent=2) + "\n")


def write_results(name: str, data: dict, markdown: str) -> None:
    """Write ``results/<name>.json`` and ``results/<name>.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine(), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")


def md_table(header: list[str], rows: list[list]) -> str:
    """Render a markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu() -> dict:
    """The CPU model and its vector extensions (from /proc/cpuinfo)."""
    model, flags = "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    vector = sorted(f for f in flags if f.startswith(("sse", "ssse", "avx", "fma", "amx")) or f in ("f16c",))
    return {"cpu_model": model, "vector_extensions": vector}
