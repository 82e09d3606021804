"""The standing hostile benchmark: bad inputs, kills, an unfair client and a fuzzer, on loopback only.

1. **Inputs**: a generated corpus of bad inputs (:mod:`hostile_corpus`: empty, truncated in every
   format, random bytes, header bombs, PNG bombs, NaN and huge samples, a pipe, link loops, odd
   names...), each run through ``genrekit predict FILE --format json`` (its peak memory: the
   child's own VmHWM, read at its exit) and uploaded to ``genrekit serve`` (the server's RSS,
   sampled during the upload). Each outcome is a clear error (one ``error:`` line, or a 4xx with
   ``{"error", "detail"}``), a result (strict JSON), or unclear (a traceback, a 5xx, a crash, a
   timeout, JSON with NaN).
2. **Kills**: library runs (``genrekit predict FOLDER -o tags.{csv,json,jsonl}``) killed with
   SIGKILL at a random moment, then run again to the end: rows lost or duplicated; and runs killed
   between the JSON fold's ``os.replace`` and the journal's removal (an injected kill).
3. **Fairness**: an attacker (one client address) sends uploads whose header is too long, 1 Hz
   bombs, slow uploads and a flood at once, while a well-behaved client uploads one song after
   another, trying again after Retry-After when answered 503: the share of its uploads answered
   200, their p95 (first try to answer) and the share answered at the first try.
4. **Schemathesis** ``--checks all`` against the server's OpenAPI document: server errors.

The client addresses of (3) are told apart by ``X-Forwarded-For`` (the server runs with
``client_header``): every connection is to 127.0.0.1. Writes results/hostile.{json,md} and the
summary keys named in the issue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _results import md_table, update_summary, write_results
from hostile_corpus import make_corpus, upload_name
from web_load import _read_response, free_port, start_server, wait_ready

SRC = Path(__file__).resolve().parents[1] / "src"
TARGET_RSS_MB = 600
CLI_TIMEOUT_S = 120
# genrekit's own command line, reporting its peak memory (VmHWM, reset by exec) when it exits; with
# GK_KILL_AFTER_FOLD it kills itself with SIGKILL when it removes a JSON journal (after the fold)
_CLI = r"""
import atexit, os, sys
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            open(os.environ['GK_HWM_FILE'], 'w').write(line.split()[1])
atexit.register(hwm)
if os.environ.get('GK_KILL_AFTER_FOLD'):
    import pathlib, signal
    real = pathlib.Path.unlink
    def unlink(self, *a, **k):
        if self.name.endswith('.journal'):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, *a, **k)
    pathlib.Path.unlink = unlink
from genrekit.cli import main
sys.argv = ['genrekit', *sys.argv[1:]]
main()
"""


def cli(
    args: list[str],
    *,
    scratch: Path,
    timeout_s: float = CLI_TIMEOUT_S,
    env: dict | None = None,
    kill_after_s: float | None = None,
) -> dict:
    """Run ``genrekit ARGS``: exit code, output, peak RSS in MB (``None`` when killed)."""
    hwm = scratch / f"hwm-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
    run_env = {**os.environ, "PYTHONPATH": str(SRC), "GK_HWM_FILE": str(hwm), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CLI, *args], env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = proc.communicate(timeout=kill_after_s or timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        return {"rc": "killed" if kill_after_s else "timeout", "stdout": out, "stderr": err, "rss_mb": None}
    rss = int(hwm.read_text()) / 1024 if hwm.exists() else None
    hwm.unlink(missing_ok=True)
    return {"rc": proc.returncode, "stdout": out, "stderr": err, "rss_mb": rss}


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"bare {constant} in JSON")

    return json.loads(text, parse_constant=refuse)


def classify_cli(r: dict) -> str:
    err = r["stderr"].decode("utf-8", "replace")
    if r["rc"] in ("timeout", "killed") or "Traceback" in err or r["rc"] not in (0, 1, 2):
        return "unclear"
    if r["stdout"].strip():
        try:
            rows = strict_json(r["stdout"].decode("utf-8", "replace"))
        except ValueError:
            return "unclear"
        if "please report this bug" in json.dumps(rows):  # an unexpected exception, caught as a row
            return "unclear"
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    return "result" if r["rc"] == 0 else ("clear error" if lines or "failed" in err else "unclear")


# ----------------------------------------------------------------------------- the server


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def multipart(name: str, data: bytes, *, port: int, client: str, boundary: str = "gkhostile") -> bytes:
    safe = name.replace('"', "%22").replace("\r", "").replace("\n", "%0A")
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode("utf-8", "surrogateescape")
    body += data + f"\r\n--{boundary}--\r\n".encode()
    head = (
        f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"X-Forwarded-For: {client}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def request(port: int, raw: bytes, *, timeout_s: float = 120.0, pace_bps: float | None = None):
    """Send ``raw`` (at ``pace_bps`` bytes per second when given); (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:

        async def exchange():
            if pace_bps is None:
                writer.write(raw)
            else:
                for i in range(0, len(raw), 256):
                    writer.write(raw[i : i + 256])
                    await writer.drain()
                    await asyncio.sleep(256 / pace_bps)
            return await _read_response(reader)

        return await asyncio.wait_for(exchange(), timeout_s)
    finally:
        writer.close()


def classify_http(status: int, body: bytes) -> str:
    if status >= 500:
        return "unclear"
    try:
        answer = strict_json(body.decode("utf-8", "replace"))
    except ValueError:
        return "unclear"
    if status == 200:
        return "result"
    return "clear error" if isinstance(answer, dict) and answer.get("error") and answer.get("detail") else "unclear"


class Sampler:
    """The server's peak RSS while a block runs (sampled every 10 ms)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.01)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def server_inputs(port: int, pid: int, corpus: dict[str, Path]) -> dict:
    out = {}
    for kind, path in corpus.items():
        try:
            data = path.read_bytes() if path.is_file() else b""  # a pipe, a loop, a folder: sent empty
        except OSError:
            data = b""
        with Sampler(pid) as s:
            try:
                status, _, body = asyncio.run(
                    request(port, multipart(upload_name(kind, path), data, port=port, client="10.0.0.1"))
                )
            except (OSError, asyncio.TimeoutError, ValueError) as exc:
                status, body = 0, repr(exc).encode()
        verdict = classify_http(status, body) if status else "unclear"
        out[kind] = {
            "status": status,
            "verdict": verdict,
            "rss_mb": round(s.peak, 1),
            "bytes": len(data),
            "answer": body[:300].decode("utf-8", "replace"),
        }
    return out


# ----------------------------------------------------------------------------- the run


def cpu_model() -> dict:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    return {"cpu_model": model, "vector_extensions": sorted(f for f in flags if f.startswith(("sse", "avx", "fma")))}


def main() -> None:
    from hostile_runs import fairness, kill_runs, schemathesis

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills-per-format", type=int, default=8)
    ap.add_argument("--injected-kills", type=int, default=2)
    ap.add_argument("--fair-seconds", type=float, default=60.0, help="how long the attacker attacks")
    ap.add_argument("--fair-uploads", type=int, default=40, help="uploads of the well-behaved client")
    ap.add_argument("--schemathesis-examples", type=int, default=200)
    ap.add_argument("--schemathesis-s", type=float, default=150.0, help="Schemathesis's time budget")
    ap.add_argument("--parts", default="inputs,kills,fair,schema")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    t_start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="gk-hostile-"))
    results: dict = {"cpu": cpu_model()}
    try:
        corpus = make_corpus(scratch / "corpus")
        port = free_port()
        server = start_server(port, scratch, {"client_header": "X-Forwarded-For"})
        try:
            asyncio.run(wait_ready(port, server))
            if "inputs" in parts:
                from concurrent.futures import ThreadPoolExecutor

                def one(item):
                    kind, path = item
                    r = cli(["predict", str(path), "--format", "json", "--no-progress"], scratch=scratch)
                    return kind, {
                        "rc": r["rc"],
                        "verdict": classify_cli(r),
                        "rss_mb": r["rss_mb"],
                        "stderr": r["stderr"].decode("utf-8", "replace")[-400:],
                    }

                with ThreadPoolExecutor(2) as pool:
                    results["cli"] = dict(pool.map(one, corpus.items()))
                results["server"] = server_inputs(port, server.pid, corpus)
                results["server_hwm_after_inputs_mb"] = rss_mb(server.pid, "VmHWM")
            if "fair" in parts:
                results["fair"] = asyncio.run(fairness(port, seconds=a.fair_seconds, other_uploads=a.fair_uploads))
            if "schema" in parts:
                results["schemathesis"] = schemathesis(
                    port, max_examples=a.schemathesis_examples, timeout_s=a.schemathesis_s
                )
            results["server_hwm_mb"] = rss_mb(server.pid, "VmHWM")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        if "kills" in parts:
            results["kills"] = kill_runs(scratch, per_format=a.kills_per_format, injected=a.injected_kills)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["seconds"] = round(time.monotonic() - t_start, 1)
    report(results, parts)


def report(r: dict, parts: set[str]) -> None:
    summary, lines = (
        {},
        [
            f"# Hostile benchmark ({r['seconds']:.0f} s)",
            "",
            f"CPU: {r['cpu']['cpu_model']} ({', '.join(r['cpu']['vector_extensions'])}).",
            "",
        ],
    )
    if "cli" in r:
        kinds = sorted(r["cli"])
        unclear = [k for k in kinds if r["cli"][k]["verdict"] == "unclear" or r["server"][k]["verdict"] == "unclear"]
        small = [k for k in kinds if r["server"][k]["bytes"] <= 1_000_000]
        peak_cli = max((r["cli"][k]["rss_mb"] or 0) for k in small)
        peak_server = max([r["server"][k]["rss_mb"] for k in small] + [r.get("server_hwm_after_inputs_mb", 0)])
        summary.update(
            hostile_inputs_tried=len(kinds),
            hostile_unclear_errors=len(unclear),
            hostile_peak_rss_mb=round(max(peak_cli, peak_server), 1),
        )
        lines += [
            f"## Inputs: {len(kinds)} kinds, {len(unclear)} unclear (target 0); peak RSS of the CLI "
            f"{peak_cli:.0f} MB, of the server {peak_server:.0f} MB (target <= {TARGET_RSS_MB})",
            "",
            "Each kind through `genrekit predict FILE --format json` and `POST /api/predict`: the outcome, "
            "the CLI's own peak RSS (VmHWM) and the server's RSS during the upload.",
            "",
        ]
        rows = [
            [
                k.replace("\n", "\\n")[:40],
                r["cli"][k]["rc"],
                r["cli"][k]["verdict"],
                f"{r['cli'][k]['rss_mb'] or 0:.0f}",
                r["server"][k]["status"],
                r["server"][k]["verdict"],
                f"{r['server'][k]['rss_mb']:.0f}",
            ]
            for k in kinds
        ]
        lines += [md_table(["input", "CLI exit", "CLI", "CLI MB", "HTTP", "server", "server MB"], rows), ""]
        if unclear:
            lines += (
                ["Unclear:", ""]
                + [f"- `{k}`: {r['cli'][k]['stderr'][-200:]!r} / {r['server'][k]['answer'][:200]!r}" for k in unclear]
                + [""]
            )
    if "kills" in r:
        runs = [x for x in r["kills"]["runs"] if x["first_rc"] in ("killed", -9)]  # those that ended before: not kills
        lost, dup = sum(x["lost"] for x in runs), sum(x["duplicated"] for x in runs)
        summary.update(kill_runs=len(runs), kill_rows_lost=lost, kill_rows_duplicated=dup)
        lines += [
            f"## Kills: {len(runs)} runs of {r['kills']['files']} files killed with SIGKILL (at a moment drawn "
            f"over a whole run's {r['kills']['whole_run_s']} s, or injected after the JSON fold), then rerun: "
            f"{lost} rows lost, {dup} duplicated (target 0, 0)",
            "",
        ]
        lines += [
            md_table(
                ["format", "killed at", "first exit", "rerun exit", "lost", "duplicated", "left beside"],
                [
                    [
                        x["format"],
                        x["killed_at_s"],
                        x["first_rc"],
                        x["rerun_rc"],
                        x["lost"],
                        x["duplicated"],
                        ", ".join(x["leftovers"]) or "-",
                    ]
                    for x in r["kills"]["runs"]
                ],
            ),
            "",
        ]
    if "fair" in r:
        f = r["fair"]
        summary.update(
            fair_other_client_success=round(f["other_success"], 3),
            fair_other_client_p95_ms=None if f["other_p95_ms"] is None else round(f["other_p95_ms"]),
        )
        lines += [
            f"## Fairness: the other client's uploads answered 200: {f['other_success']:.3f} "
            f"(target >= 0.95), p95 {f['other_p95_ms'] or float('nan'):.0f} ms from its first try to its "
            f"answer; at the first try: {f['other_first_try_success']:.3f}",
            "",
            "The well-behaved client uploads a 20-s song, then the next; answered 503 it waits the "
            "Retry-After seconds and tries again (for up to 30 s). The attacker, from one address and on the "
            "same 2 cores: 4 loops of uploads whose header says 901 s, 4 of 1-Hz WAVs, 2 of 10-minute songs, "
            "24 of 30-s songs, and 64 uploads trickling at 1 kB/s.",
            "",
            "The attacker (one address) meanwhile: "
            + ", ".join(f"{k} x{v}" for k, v in f["attacker_outcomes"].items()),
            "",
        ]
    if "schemathesis" in r:
        s = r["schemathesis"]
        summary["hostile_schemathesis_server_errors"] = s.get("server_errors")
        lines += [
            f"## Schemathesis --checks all: {s.get('server_errors', s.get('skipped'))} server errors "
            f"in {s.get('cases')} cases (target 0; exit {s.get('rc')}, {s.get('seconds')} s)",
            "",
            "```",
            s.get("tail", "")[-1500:],
            "```",
            "",
        ]
    write_results("hostile", {**r, "summary": summary}, "\n".join(lines))
    update_summary(summary)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
