"""Start-up of the ``genrekit`` command: wall time of ``genrekit --help`` in a fresh process against
``python -c pass`` with the same interpreter (median of 5 runs each, after one untimed warm-up), and
which heavy modules ``import genrekit.cli`` loads (none expected: each command imports its own)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _results import md_table, update_summary, write_results

HEAVY = ("torch", "librosa", "sklearn", "matplotlib")


def genrekit_command() -> str:
    """The ``genrekit`` entry point installed next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "genrekit"  # not resolved: a venv's python is a symlink
    found = str(beside) if beside.is_file() else shutil.which("genrekit")
    if found is None:
        raise SystemExit("the genrekit command is not installed (run 'make setup')")
    return found


def median_ms(cmd: list[str], runs: int) -> tuple[float, list[float]]:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)), times


def heavy_imports() -> list[str]:
    """The modules of HEAVY that ``import genrekit.cli`` loads, in a fresh process."""
    code = f"import sys, json, genrekit.cli; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    cli = genrekit_command()
    load_1m = round(os.getloadavg()[0], 2)
    help_ms, help_runs = median_ms([cli, "--help"], a.runs)
    python_ms, python_runs = median_ms([sys.executable, "-c", "pass"], a.runs)
    loaded = heavy_imports()
    res = {
        "command": [cli, "--help"],
        "interpreter": sys.executable,
        "runs": a.runs,
        "load_average_1m_at_start": load_1m,  # the CPU is shared: context for the timings
        "cli_help_ms": help_ms,
        "cli_help_runs_ms": help_runs,
        "python_start_ms": python_ms,
        "python_start_runs_ms": python_runs,
        "import_check": {
            "module": "genrekit.cli",
            "heavy_modules_checked": list(HEAVY),
            "heavy_modules_loaded": loaded,
            "passed": not loaded,
        },
    }
    md = (
        f"# CLI start-up (median of {a.runs} runs, wall time, after one warm-up)\n\n"
        + md_table(
            ["measure", "ms"],
            [
                ["`genrekit --help`, fresh process", f"{help_ms:.0f}"],
                ["`python -c pass`, same interpreter", f"{python_ms:.0f}"],
                ["genrekit's own share (difference)", f"{help_ms - python_ms:.0f}"],
            ],
        )
        + (
            f"\n\n`import genrekit.cli` loads {', '.join(loaded)}: the CLI is not light."
            if loaded
            else f"\n\n`import genrekit.cli` loads none of {', '.join(HEAVY)}."
        )
    )
    write_results("cli_start", res, md)
    update_summary({"cli_help_ms": round(help_ms, 1), "python_start_ms": round(python_ms, 1)})
    print(md)


if __name__ == "__main__":
    main()
