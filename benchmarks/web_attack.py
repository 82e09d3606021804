"""Hostile clients against ``genrekit serve``, on loopback, bounded in count and time.

Starts the server with :func:`genrekit.serve.main` (bundled model, default settings) in a
subprocess on a free loopback port and measures its memory (RSS from /proc) when idle after a few
ordinary uploads; then, one after the other:

1. many-fields posts: multipart bodies of 300,000 tiny form fields (21 MB), with Content-Length and
   chunked, and the same as a urlencoded form; and one 10-MB form field;
2. slowloris: 300 connections that send their request headers one line every 5 s and never end
   them (bounded to 60 s), and 50 uploads whose body trickles a few bytes a second; meanwhile
   ordinary requests must still be answered;
3. the server's memory after the attack, and one more ordinary upload.

Writes results/web_attack.{json,md} and summary keys web_rss_mb_idle, web_rss_mb_after_attack,
web_slowloris_dropped, web_slowloris_dropped_after_s.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from pathlib import Path

from _results import machine, md_table, update_summary, write_results
from web_load import _read_response, free_port, peak_rss_mb, post, song, start_server, upload_request, wait_ready

BOUNDARY = "genrekitattack"
TARGET_RSS_RATIO = 1.2
TRIED = [
    "with uploads in progress counted in the queue (34 places), the 50 trickling uploads held every place "
    "until their 408 at 20 s and ordinary uploads got 503 meanwhile: uploads in progress are now counted "
    "apart (max_uploads, 64), and a song takes a place in the queue once it has arrived",
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def many_fields(n: int) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n' for i in range(n)]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


async def send_raw(port: int, head: bytes, chunks: list[bytes], timeout_s: float = 60.0) -> tuple[int | str, float]:
    """Send a request (head, then body chunks) and return its status and seconds to answer."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        status, _, _ = await asyncio.wait_for(_read_response(reader), timeout_s)
        return status, time.perf_counter() - t0
    except (OSError, asyncio.TimeoutError, ValueError) as exc:
        return type(exc).__name__, time.perf_counter() - t0
    finally:
        writer.close()


async def field_attacks(port: int, repeats: int) -> list[dict]:
    body = many_fields(300_000)
    host = f"Host: 127.0.0.1:{port}\r\n"
    mp = f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
    sized = f"POST /api/predict HTTP/1.1\r\n{host}{mp}Content-Length: {len(body)}\r\n\r\n".encode()
    chunked = f"POST /api/predict HTTP/1.1\r\n{host}{mp}Transfer-Encoding: chunked\r\n\r\n".encode()
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    chunked_body = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]
    form = "&".join(f"f{i}=x" for i in range(300_000)).encode()
    urlenc = (
        f"POST /api/predict HTTP/1.1\r\n{host}Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    ).encode()
    big = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n'.encode()
        + b"3" * 10_000_000
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    big_head = f"POST /api/predict HTTP/1.1\r\n{host}{mp}Content-Length: {len(big)}\r\n\r\n".encode()
    attacks = {
        "300,000 fields, Content-Length": (sized, pieces),
        "300,000 fields, chunked": (chunked, chunked_body),
        "300,000 fields, urlencoded": (urlenc, [form]),
        "one 10-MB form field": (big_head, [big]),
    }
    out = []
    for name, (head, chunks) in attacks.items():
        answers = [await send_raw(port, head, chunks) for _ in range(repeats)]
        out.append(
            {
                "attack": name,
                "bytes": sum(map(len, chunks)),
                "repeats": repeats,
                "statuses": sorted({str(s) for s, _ in answers}),
                "max_s_to_answer": round(max(t for _, t in answers), 2),
            }
        )
    return out


async def slow_clients(port: int, n_headers: int, n_bodies: int, limit_s: float, ordinary: tuple[bytes, bytes]) -> dict:
    """Slow-header and slow-body connections; when the server drops each; ordinary requests meanwhile."""
    t0 = time.monotonic()
    dropped: dict[str, list[float | None]] = {"headers": [], "body": []}
    answers: dict[str, list[bytes]] = {"headers": [], "body": []}

    async def slow(kind: str, head: bytes, line: bytes, every_s: float) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            dropped[kind].append(0.0)
            return
        opened = time.monotonic()
        writer.write(head)

        async def trickle() -> None:
            while True:
                await asyncio.sleep(every_s)
                writer.write(line)

        sender = asyncio.create_task(trickle())
        try:  # whatever the server sends (a 408, nothing), the connection's end is what counts
            answer = await asyncio.wait_for(reader.read(), max(0.1, limit_s - (opened - t0)))
            dropped[kind].append(time.monotonic() - opened)
            answers[kind].append(answer.split(b"\r\n", 1)[0])
        except (asyncio.TimeoutError, OSError):
            dropped[kind].append(None)  # still open at the end of the test
        finally:
            sender.cancel()
            writer.close()

    header_head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
    body_head = (
        f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; "
        f"boundary={BOUNDARY}\r\nContent-Length: 1000000\r\n\r\n--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="slow.wav"\r\n\r\n'
    ).encode()
    tasks = [slow("headers", header_head, b"X-Slow: 1\r\n", 5.0) for _ in range(n_headers)]
    tasks += [slow("body", body_head, b"x" * 16, 1.0) for _ in range(n_bodies)]
    meanwhile = []

    async def ordinary_requests() -> None:
        await asyncio.sleep(2.0)  # once every slow connection is open
        for _ in range(5):
            t = time.perf_counter()
            status, _, _ = await post(port, *ordinary, timeout_s=60)
            meanwhile.append({"status": status, "ms": round((time.perf_counter() - t) * 1000)})
            await asyncio.sleep(2.0)

    await asyncio.gather(*tasks, ordinary_requests())
    seen = {k: sorted({a.decode("latin-1") or "(closed without an answer)" for a in v}) for k, v in answers.items()}
    return {"dropped": dropped, "answers": seen, "ordinary_requests_meanwhile": meanwhile}


def summarise(times: list[float | None], answers: list[str]) -> dict:
    closed = [t for t in times if t is not None]
    span = {"min": round(min(closed), 1), "max": round(max(closed), 1)} if closed else None
    return {
        "connections": len(times),
        "dropped": len(closed),
        "still_open": len(times) - len(closed),
        "answers": answers,
        "dropped_after_s": span,
    }


def span(times: dict | None) -> str:
    return "-" if times is None else f"{times['min']} to {times['max']}"


async def run(a: argparse.Namespace) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="genrekit-attack-") as tmp:
        port = free_port()
        proc = start_server(port, Path(tmp), {})
        try:
            await wait_ready(port, proc)
            rss_start = rss_mb(proc.pid)
            ordinary = upload_request(port, song())
            for _ in range(5):
                assert (await post(port, *ordinary))[0] == 200
            await asyncio.sleep(1.0)
            rss_idle = rss_mb(proc.pid)
            fields = await field_attacks(port, a.repeats)
            rss_after_fields = rss_mb(proc.pid)
            slow = await slow_clients(port, a.slowloris, a.slow_bodies, a.limit, ordinary)
            await asyncio.sleep(2.0)
            rss_after = rss_mb(proc.pid)
            final_status = (await post(port, *ordinary))[0]
            return {
                "rss_mb": {
                    "start": rss_start,
                    "idle": rss_idle,
                    "after_fields": rss_after_fields,
                    "after_attack": rss_after,
                    "peak": peak_rss_mb(proc.pid),
                },
                "fields": fields,
                "slow": slow,
                "ordinary_after": final_status,
            }
        finally:
            proc.terminate()
            proc.wait(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slowloris", type=int, default=300, help="slow-header connections")
    ap.add_argument("--slow-bodies", type=int, default=50, help="slow-body uploads")
    ap.add_argument("--limit", type=float, default=60.0, help="seconds the slow clients keep trying")
    ap.add_argument("--repeats", type=int, default=3, help="posts of each many-fields body")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    from genrekit.serve import ServeConfig

    cfg = ServeConfig()
    r = asyncio.run(run(a))
    rss = {k: round(v, 1) for k, v in r["rss_mb"].items()}
    headers = summarise(r["slow"]["dropped"]["headers"], r["slow"]["answers"]["headers"])
    bodies = summarise(r["slow"]["dropped"]["body"], r["slow"]["answers"]["body"])
    meanwhile = r["slow"]["ordinary_requests_meanwhile"]
    out = {
        "server": {
            "header_timeout_s": cfg.header_timeout_s,
            "body_timeout_s": cfg.body_timeout_s,
            "min_upload_bytes_per_s": cfg.min_upload_bytes_per_s,
            "max_form_fields": cfg.max_form_fields,
            "max_field_bytes": cfg.max_field_bytes,
            "max_upload_mb": cfg.max_upload_mb,
        },
        "rss_mb": rss,
        "rss_ratio_after_attack": round(rss["after_attack"] / rss["idle"], 3),
        "field_attacks": r["fields"],
        "slowloris_headers": headers,
        "slow_bodies": bodies,
        "ordinary_requests_during_slow_clients": meanwhile,
        "ordinary_request_after_attack": r["ordinary_after"],
        "tried": TRIED,
    }
    rows = [
        [f["attack"], f"{f['repeats']} x {f['bytes'] / 1e6:.1f} MB", ", ".join(f["statuses"]), f["max_s_to_answer"]]
        for f in r["fields"]
    ]
    slow_rows = [
        [
            f"{headers['connections']} slowloris connections (a header line every 5 s)",
            headers["dropped"],
            headers["still_open"],
            span(headers["dropped_after_s"]),
            "; ".join(headers["answers"]),
        ],
        [
            f"{bodies['connections']} uploads trickling 16 bytes/s",
            bodies["dropped"],
            bodies["still_open"],
            span(bodies["dropped_after_s"]),
            "; ".join(bodies["answers"]),
        ],
    ]
    answered = ", ".join(f"{x['status']} in {x['ms']} ms" for x in meanwhile)
    m = machine()
    md = f"""# Web server under hostile clients

`genrekit serve` (bundled model, default settings: headers within {cfg.header_timeout_s:g} s, upload body
allowed {cfg.body_timeout_s:g} s + 1 s per {cfg.min_upload_bytes_per_s / 1000:g} kB, at most {cfg.max_form_fields}
form fields of {cfg.max_field_bytes // 1024} KB) on loopback, attacked one way after another.

## Memory

| server memory (RSS, MB) | value |
|---|---|
| just started | {rss["start"]} |
| idle, after 5 ordinary uploads | {rss["idle"]} |
| after the many-fields posts | {rss["after_fields"]} |
| after every attack | {rss["after_attack"]} ({out["rss_ratio_after_attack"]} x idle; target ≤ {TARGET_RSS_RATIO}) |
| peak | {rss["peak"]} |

## Many fields

{md_table(["post", "sent", "answers", "slowest answer (s)"], rows)}

## Slow clients (bounded to {a.limit:g} s)

{md_table(["clients", "dropped by the server", "still open at the end", "dropped after (s)", "answer"], slow_rows)}

Ordinary uploads while the slow clients held their connections: {answered}.
An ordinary upload after everything: {r["ordinary_after"]}.

What was tried: {" ".join(TRIED)}.

Before this work, 300,000 small fields took the server from 770 to 1,103 MB, never given back, and
300 slowloris connections were held indefinitely.

Machine: {m["cpu_count"]} CPUs shared with other jobs, torch {m["torch"]}, Python {m["python"]}, {m["date"]}.
"""
    print(md)
    if a.no_write:
        return
    write_results("web_attack", out, md)
    update_summary(
        {
            "web_rss_mb_idle": rss["idle"],
            "web_rss_mb_after_attack": rss["after_attack"],
            "web_slowloris_dropped": headers["dropped"],
            "web_slowloris_dropped_after_s": (headers["dropped_after_s"] or {}).get("max"),
        }
    )


if __name__ == "__main__":
    main()
