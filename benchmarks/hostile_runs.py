"""Parts of ``benchmarks/hostile.py``: kill -9 of library runs, the fairness run, Schemathesis."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
from hostile import cli, multipart, request
from hostile_corpus import SR, wav

FORMATS = ("csv", "json", "jsonl")


def library(root: Path, n: int = 8, seconds: float = 4.0) -> list[str]:
    """A folder of ``n`` short songs; their paths."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for i in range(n):
        t = np.arange(int(seconds * SR)) / SR
        y = 0.3 * np.sin(2 * np.pi * (110 + 40 * i) * t) + rng.normal(scale=0.05, size=t.size)
        sf.write(root / f"song{i:02d}.wav", y.astype(np.float32), SR)
    return sorted(str(p) for p in root.glob("*.wav"))


def rows_of(path: Path, fmt: str) -> list[str]:
    """The ``path`` of every row of an output."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    if fmt == "csv":
        return [r["path"] for r in csv.DictReader(io.StringIO(text))]
    if fmt == "json":
        return [r["path"] for r in json.loads(text)] if text.strip() else []
    return [json.loads(line)["path"] for line in text.splitlines() if line.strip()]


def kill_runs(scratch: Path, *, per_format: int, injected: int, seed: int = 19) -> dict:
    """Library runs killed at random moments (and between the JSON fold and the journal's removal),
    then run again to the end: rows lost and duplicated."""
    rng = random.Random(seed)
    songs = library(scratch / "library")
    plan = [(fmt, "random") for fmt in FORMATS for _ in range(per_format)] + [("json", "after fold")] * injected
    # kill moments drawn over the length of a whole run (model load included), measured first
    t0 = time.monotonic()
    cli(["predict", str(scratch / "library"), "-o", str(scratch / "whole.csv"), "--no-progress"], scratch=scratch)
    whole_s = time.monotonic() - t0
    runs = []
    for k, (fmt, point) in enumerate(plan):
        out = scratch / f"kill{k}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        target = out / f"tags.{fmt}"
        argv = ["predict", str(scratch / "library"), "-o", str(target), "--no-progress"]
        if point == "after fold":
            first = cli(argv, scratch=scratch, env={"GK_KILL_AFTER_FOLD": "1"})
            killed_at = "after the fold"
        else:
            killed_at = round(rng.uniform(0.3, 0.95) * whole_s, 2)
            first = cli(argv, scratch=scratch, kill_after_s=killed_at)
        again = cli(argv, scratch=scratch)
        rows = Counter(rows_of(target, fmt))
        runs.append(
            {
                "format": fmt,
                "killed_at_s": killed_at,
                "first_rc": first["rc"],
                "rerun_rc": again["rc"],
                "lost": sum(1 for s in songs if rows[s] == 0),
                "duplicated": sum(c - 1 for c in rows.values() if c > 1),
                "leftovers": sorted(p.name for p in out.iterdir() if p.name != target.name),
                "rerun_error": again["stderr"].decode("utf-8", "replace")[-300:] if again["rc"] != 0 else "",
            }
        )
    return {"files": len(songs), "whole_run_s": round(whole_s, 2), "runs": runs}


# ----------------------------------------------------------------------------- fairness


def _song(seconds: float) -> bytes:
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + np.random.default_rng(3).normal(scale=0.05, size=t.size)
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def fairness(port: int, *, seconds: float, other_uploads: int) -> dict:
    """An attacker at full tilt for ``seconds`` while another client uploads songs one by one."""
    attacker, other = "10.66.0.1", "10.0.0.7"
    bombs = {
        "too-long-header": wav(rate=1000, bits=8, data=b"\x80" * 901_000),
        "1-hz": wav(rate=1, data=b"\1\0" * 1000),
        "long-song": _song(600.0),
        "song": _song(30.0),
    }
    stop = time.monotonic() + seconds
    counts: Counter = Counter()

    async def flood(kind: str) -> None:
        raw = multipart(f"{kind}.wav", bombs[kind], port=port, client=attacker)
        while time.monotonic() < stop:
            try:
                status, _, _ = await request(port, raw, timeout_s=60)
                counts[f"{kind} {status}"] += 1
            except (OSError, asyncio.TimeoutError, ValueError) as exc:
                counts[f"{kind} {type(exc).__name__}"] += 1

    async def trickle() -> None:  # a slow upload: 1 kB/s, until the server drops it
        raw = multipart("slow.wav", bombs["song"], port=port, client=attacker)
        while time.monotonic() < stop:
            try:
                status, _, _ = await request(port, raw, timeout_s=60, pace_bps=1000)
                counts[f"slow {status}"] += 1
            except (OSError, asyncio.TimeoutError, ValueError) as exc:
                counts[f"slow {type(exc).__name__}"] += 1
                await asyncio.sleep(0.5)

    async def well_behaved() -> list[dict]:
        """Songs one after the other; answered 503, it waits the Retry-After seconds and tries again
        (for up to 30 s), as a well-behaved client does."""
        raw, results = multipart("mine.wav", _song(20.0), port=port, client=other), []
        await asyncio.sleep(2.0)  # the attack is under way
        for _ in range(other_uploads):
            t0, tries, status, answer = time.perf_counter(), 0, None, b""
            while time.perf_counter() - t0 < 30:
                tries += 1
                try:
                    status, headers, answer = await request(port, raw, timeout_s=60)
                except (OSError, asyncio.TimeoutError, ValueError) as exc:
                    status, headers = type(exc).__name__, {}
                if status != 503:
                    break
                await asyncio.sleep(float(headers.get("retry-after", 1)))
            results.append(
                {
                    "status": status,
                    "tries": tries,
                    "ms": (time.perf_counter() - t0) * 1000,
                    "detail": answer[:200].decode("utf-8", "replace") if status != 200 else "",
                }
            )
            await asyncio.sleep(0.3)
        return results

    attack = [flood("too-long-header") for _ in range(4)] + [flood("1-hz") for _ in range(4)]
    attack += [flood("long-song") for _ in range(2)] + [flood("song") for _ in range(24)]
    attack += [trickle() for _ in range(64)]
    tasks = [asyncio.ensure_future(a) for a in attack]
    mine = await well_behaved()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ok = [r["ms"] for r in mine if r["status"] == 200]
    return {
        "other_client": mine,
        "other_success": len(ok) / len(mine),
        "other_first_try_success": sum(r["status"] == 200 and r["tries"] == 1 for r in mine) / len(mine),
        "other_p95_ms": float(np.percentile(ok, 95)) if ok else None,
        "attacker_outcomes": dict(sorted(counts.items())),
    }


# ----------------------------------------------------------------------------- Schemathesis


def schemathesis(port: int, *, max_examples: int, timeout_s: float) -> dict:
    """``schemathesis run --checks all`` against the server: its summary and the 5xx it saw."""
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if exe is None:
        return {"skipped": "schemathesis is not installed (pip install schemathesis)"}
    # every check, every case (not only up to the first failure), within a time budget; a refusal of
    # a schema-valid upload (a 422 for a .png the audio model cannot read) is a failure, not a server error
    cmd = [
        exe,
        "run",
        f"http://127.0.0.1:{port}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--continue-on-failure",
        "--max-time",
        str(int(timeout_s * 0.8)),
        "--workers",
        "2",
        "--header",
        "X-Forwarded-For: 10.9.9.9",
    ]
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="gk-schemathesis-") as cwd:  # its cache folder, not in the repo
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=cwd, check=False)
        out, rc = run.stdout + run.stderr, run.returncode
    except subprocess.TimeoutExpired as exc:
        out, rc = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or ""), "timeout"
    server_errors = sum(out.count(s) for s in ("Server error", "[500]", "[502]", "[503] Service Unavailable: <"))
    generated = re.search(r"(\d+) generated", out)
    return {
        "rc": rc,
        "seconds": round(time.monotonic() - t0, 1),
        "server_errors": server_errors,
        "cases": int(generated.group(1)) if generated else None,
        "tail": out[-3000:],
    }
