"""Load test of ``genrekit serve``: many concurrent uploads of a 30-s song to ``POST /api/predict``.

Starts the server with :func:`genrekit.serve.main` in a subprocess on a free loopback port, sends
``--requests`` uploads (default 200) with at most ``--concurrency`` in flight at once (default: all
of them) from one httpx AsyncClient, and records errors, latency percentiles, throughput, the
server's own decode/predict times, its peak memory, and whether any upload was left on disk.

Uses the bundled model when it exists, else a gknet checkpoint with random weights (same
architecture, so the same cost); the results say which.

Writes results/web_load.{json,md} and summary keys web_concurrent_requests, web_errors,
web_p50_ms, web_p95_ms.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from _results import md_table, update_summary, write_results

SR = 22050
SONG_S = 30.0


def song() -> bytes:
    """A 30-s 16-bit mono WAV at 22.05 kHz: plucked bass, a chord, noisy drums."""
    t = np.arange(int(SONG_S * SR)) / SR
    rng = np.random.default_rng(0)
    pluck = np.sin(2 * np.pi * 110 * t) * np.exp(-6 * (t % 0.5))
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    drums = rng.normal(size=t.size) * np.exp(-20 * (t % 0.25))
    y = pluck + 0.5 * chord + 0.5 * drums
    buf = io.BytesIO()
    sf.write(buf, (0.4 * y / np.abs(y).max()).astype(np.float32), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def choose_model(workdir: Path) -> tuple[str | None, str]:
    """The bundled model if it loads, else a random-weights gknet checkpoint."""
    from genrekit.audio import GenrekitError
    from genrekit.predictor import Predictor

    try:
        p = Predictor.load()
        return None, f"bundled model {p.name}"
    except GenrekitError:
        pass
    import torch

    from genrekit.checkpoint import Checkpoint
    from genrekit.features import FeatureConfig
    from genrekit.models import build_model

    labels = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
    cfg = FeatureConfig()
    torch.manual_seed(0)
    m = build_model("gknet", n_classes=len(labels), input_shape=(cfg.n_bins, cfg.segment_frames))
    path = workdir / "random-gknet.pt"
    Checkpoint("gknet", {}, labels, cfg, m.state_dict(), {"description": "random weights (benchmark)"}).save(path)
    return str(path), "gknet with random weights (the bundled model was not built yet; same architecture and cost)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str | None, port: int, upload_tmp: Path, workers: int) -> subprocess.Popen:
    code = (
        "from genrekit.serve import main; "
        f"main(host='127.0.0.1', port={port}, model={model!r}, max_upload_mb=50, max_duration_s=900, "
        f"workers={workers}, log_level='warning')"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "TMPDIR": str(upload_tmp), "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit("the server did not answer /healthz in time")


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


async def load(base: str, data: bytes, n: int, concurrency: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results: list[dict] = []

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            try:
                r = await client.post(base + "/api/predict", files={"file": (f"song{i}.wav", data, "audio/wav")})
                ok = r.status_code == 200
                body = r.json() if ok else {}
                results.append(
                    {
                        "ok": ok,
                        "error": None if ok else f"HTTP {r.status_code}",
                        "ms": (time.perf_counter() - t0) * 1000,
                        "top": body.get("top", [{}])[0].get("genre") if ok else None,
                        "timing": body.get("timing", {}),
                    }
                )
            except httpx.HTTPError as exc:
                results.append({"ok": False, "error": type(exc).__name__, "ms": (time.perf_counter() - t0) * 1000})

    t0 = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(900.0)) as client:
        await asyncio.gather(*(one(client, i) for i in range(n)))
    return {"results": results, "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=None, help="requests in flight at once (default: all)")
    ap.add_argument("--workers", type=int, default=1, help="server decode+predict jobs at once")
    ap.add_argument("--no-write", action="store_true", help="print the results only (trial runs)")
    a = ap.parse_args()
    concurrency = a.concurrency or a.requests

    with tempfile.TemporaryDirectory(prefix="genrekit-webload-") as tmp:
        tmp = Path(tmp)
        model, model_desc = choose_model(tmp)
        upload_tmp = tmp / "uploads"
        upload_tmp.mkdir()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(model, port, upload_tmp, a.workers)
        try:
            wait_ready(base, proc)
            data = song()
            # one request alone: the latency a single user sees on an idle server
            single = []
            for i in range(3):
                t0 = time.perf_counter()
                r = httpx.post(base + "/api/predict", files={"file": ("warm.wav", data)}, timeout=120)
                r.raise_for_status()
                single.append((time.perf_counter() - t0) * 1000)
            run = asyncio.run(load(base, data, a.requests, concurrency))
            rss = peak_rss_mb(proc.pid)
            leftovers = sorted(p.name for p in upload_tmp.iterdir())
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()

    res = run["results"]
    ms = np.array([r["ms"] for r in res if r["ok"]])
    errors = Counter(r["error"] for r in res if not r["ok"])
    server_decode = np.array([r["timing"]["decode_ms"] for r in res if r["ok"]])
    server_predict = np.array([r["timing"]["predict_ms"] for r in res if r["ok"]])
    tops = Counter(r["top"] for r in res if r["ok"])

    def pct(x: np.ndarray, q: float) -> float | None:
        return round(float(np.percentile(x, q)), 1) if len(x) else None

    data_out = {
        "model": model_desc,
        "requests": a.requests,
        "concurrency": concurrency,
        "server_workers": a.workers,
        "song": {"seconds": SONG_S, "format": "WAV PCM_16 mono 22.05 kHz", "bytes": len(song())},
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "latency_ms": {"p50": pct(ms, 50), "p95": pct(ms, 95), "max": pct(ms, 100), "mean": round(float(ms.mean()), 1) if len(ms) else None},
        "single_request_ms": [round(x, 1) for x in single],
        "wall_s": round(run["wall_s"], 2),
        "throughput_rps": round(len(ms) / run["wall_s"], 2),
        "audio_seconds_per_second": round(len(ms) * SONG_S / run["wall_s"], 1),
        "server_decode_ms": {"p50": pct(server_decode, 50), "p95": pct(server_decode, 95)},
        "server_predict_ms": {"p50": pct(server_predict, 50), "p95": pct(server_predict, 95)},
        "server_peak_rss_mb": round(rss, 1) if rss else None,
        "uploads_left_on_disk": leftovers,
        "identical_top_genre": len(tops) == 1,
    }
    rows = [
        ["requests (all in flight at once)" if concurrency >= a.requests else f"requests ({concurrency} in flight)", a.requests],
        ["errors", data_out["errors"]],
        ["latency p50 / p95 / max (ms)", f"{data_out['latency_ms']['p50']} / {data_out['latency_ms']['p95']} / {data_out['latency_ms']['max']}"],
        ["one request on an idle server (ms)", " / ".join(f"{x:.0f}" for x in single)],
        ["wall time (s)", data_out["wall_s"]],
        ["throughput (requests/s)", data_out["throughput_rps"]],
        ["audio analysed (s of audio per s)", data_out["audio_seconds_per_second"]],
        ["server decode p50 (ms)", data_out["server_decode_ms"]["p50"]],
        ["server predict p50 (ms)", data_out["server_predict_ms"]["p50"]],
        ["server peak memory (MB)", data_out["server_peak_rss_mb"]],
        ["uploads left on disk", len(leftovers)],
        ["same top genre in every answer", data_out["identical_top_genre"]],
    ]
    from _results import machine

    m = machine()
    md = f"""# Web API under load

`POST /api/predict` with a {SONG_S:.0f}-s WAV ({data_out['song']['bytes'] / 1e6:.2f} MB), {a.requests} requests sent
together from one httpx AsyncClient over loopback to `genrekit serve` (uvicorn, one process,
{a.workers} decode+predict job{'s' if a.workers > 1 else ''} at a time; the others wait in the queue).

Model: {model_desc}.

{md_table(["measure", "value"], rows)}

Latency includes the upload and the time spent queued: with every request sent at once the
p50/p95 mostly measure the queue (about the number of requests ahead x the time of one), not one request;
the single-request row is what one user sees on an idle server.

Machine: {m['cpu_count']} CPUs (shared with other jobs), torch {m['torch']}, Python {m['python']}, {m['date']}.
"""
    print(md)
    if a.no_write:
        return
    write_results("web_load", data_out, md)
    update_summary(
        {
            "web_concurrent_requests": a.requests,
            "web_errors": data_out["errors"],
            "web_p50_ms": data_out["latency_ms"]["p50"],
            "web_p95_ms": data_out["latency_ms"]["p95"],
        }
    )


if __name__ == "__main__":
    main()
