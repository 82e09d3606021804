"""Wall time of the quick test run, ``pytest -m "not slow" -q`` (what ``make test-quick`` runs), in a
fresh process from the repository root; with the CPU time it used (user + system, its child processes
included), the load average before and after (the CPU may be shared: context for the wall time) and
its slowest tests. The target is under 60 s on the 2-core CI machine."""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from _results import cpu, md_table, update_summary, write_results

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 60.0
DURATION = re.compile(r"^\s*([\d.]+)s (call|setup|teardown)\s+(\S+)")
COUNTS = re.compile(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)")


def run_quick_tests(slowest: int) -> dict:
    """One quick run: its wall and CPU seconds, exit status, counts and slowest tests."""
    cmd = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider", f"--durations={slowest}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    load_after = os.getloadavg()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = done.stdout.splitlines()
    summary = next((line for line in reversed(lines) if COUNTS.search(line)), "")
    return {
        "command": cmd[1:],
        "wall_s": round(wall, 2),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
        "exit_status": done.returncode,
        "counts": {kind: int(n) for n, kind in COUNTS.findall(summary)},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "slowest": [{"seconds": float(m[1]), "phase": m[2], "test": m[3]} for m in map(DURATION.match, lines) if m],
        "tail": lines[-3:] if done.returncode else [],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--slowest", type=int, default=15, help="how many of the slowest tests to record")
    a = p.parse_args()
    run = run_quick_tests(a.slowest)
    ok = run["exit_status"] == 0
    res = {**cpu(), "target_s": TARGET_S, **run}
    counts = ", ".join(f"{n} {kind}" for kind, n in run["counts"].items())
    load = run["load_average_before"]
    md = (
        '# Quick tests: `pytest -m "not slow" -q`\n\n'
        + md_table(
            ["measure", "value"],
            [
                ["wall time", f"{run['wall_s']:.1f} s (target < {TARGET_S:.0f} s on the 2-core CI machine)"],
                ["CPU time (user + system, children included)", f"{run['cpu_s']:.1f} s"],
                ["tests", counts or "?"],
                ["exit status", run["exit_status"]],
                ["load average before (1, 5, 15 min)", ", ".join(f"{x:.2f}" for x in load)],
                ["CPU", f"{res['cpu_model']} ({os.cpu_count()} cores)"],
            ],
        )
        + "\n\n## Slowest quick tests\n\n"
        + md_table(["s", "phase", "test"], [[f"{d['seconds']:.2f}", d["phase"], d["test"]] for d in run["slowest"]])
    )
    if not ok:
        md += "\n\nThe run failed, so its time is no figure of the quick suite: " + " / ".join(run["tail"])
    write_results("quick_tests", res, md)
    if ok:
        update_summary({"quick_tests_s": run["wall_s"]})
    print(md)
    if not ok:
        raise SystemExit(f"the quick tests failed (exit status {run['exit_status']}); summary.json left as it was")


if __name__ == "__main__":
    main()
