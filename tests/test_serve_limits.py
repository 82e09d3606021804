"""The server's limits, as hostile or unlucky clients meet them.

Body size (whole body, chunked too), form fields, Host, cross-site Origin, the bounded queue
(503), slow uploads (408), slow headers and idle connections (closed), and the live socket
(idle close, session cap, Origin). Timeouts are tested on real uvicorn servers on loopback,
with short limits; durations only bound the waits, nothing asserts how fast anything is.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from contextlib import contextmanager, suppress

import httpx
import pytest
from test_serve_api import BASE, LABELS, WS, StubPredictor, assert_error, config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from genrekit.serve import create_app
from genrekit.serve.server import serving

websockets_sync = pytest.importorskip("websockets.sync.client")
from websockets.exceptions import ConnectionClosed

WAIT_S = 30  # generous bound of every wait below


def stub_client(stub: StubPredictor | None = None, **overrides) -> TestClient:
    return TestClient(create_app(config(warmup=False, **overrides), predictor=stub or StubPredictor()), base_url=BASE)


@contextmanager
def real_server(stub: StubPredictor | None = None, **overrides):
    """A uvicorn server on a free loopback port: yields its URL and its app."""
    settings = config(warmup=False, host="127.0.0.1", port=0, **overrides)
    app = create_app(settings, predictor=stub or StubPredictor())
    with serving(app, settings) as url:
        yield url, app


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def raw_connection(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=WAIT_S)
    return s


def read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by WAIT_S)."""
    data = b""
    s.settimeout(WAIT_S)
    while chunk := s.recv(65536):
        data += chunk
    return data


def multipart(fields: list[tuple[str, str]], boundary: str = "gkb") -> bytes:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nabc\r\n')
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


MULTIPART = {"content-type": "multipart/form-data; boundary=gkb"}


# ------------------------------------------------------------------ body and form limits


def test_too_large_declared_is_refused_before_reading():
    with stub_client() as c:
        r = c.post("/api/predict", files={"file": ("big.wav", b"\0" * int(1.2e6))})
        assert_error(r, 413, "file too large", "1 MB")


def test_too_large_chunked_body_is_cut_off_while_streaming():
    """A chunked upload (no Content-Length) is counted as it streams and cut off past the limit."""
    sent = {"chunks": 0}

    def body():
        yield b'--gkb\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(40):  # 4 MB in all
            sent["chunks"] += 1
            yield b"\0" * 100_000
        yield b"\r\n--gkb--\r\n"

    with stub_client() as c:
        assert_error(c.post("/api/predict", content=body(), headers=MULTIPART), 413, "file too large")


def test_many_small_fields_count_toward_the_limits():
    with stub_client() as c:
        r = c.post("/api/predict", content=multipart([(f"f{i}", "x") for i in range(20)]), headers=MULTIPART)
        assert_error(r, 413, "too many form fields")
        r = c.post("/api/predict", content=multipart([("top_k", "3" * 20_000)]), headers=MULTIPART)
        assert_error(r, 413, "too many form fields")
        many = multipart([(f"f{i}", "x") for i in range(300_000)])  # 13 MB of tiny fields
        r = c.post("/api/predict", content=many, headers=MULTIPART)
        assert r.status_code == 413
        assert c.post("/api/predict", content=multipart([("top_k", "2")]), headers=MULTIPART).status_code == 200


def test_one_file_at_a_time():
    with stub_client() as c:
        r = c.post("/api/predict", files=[("file", ("a.wav", b"a")), ("file", ("b.wav", b"b"))])
        assert_error(r, 422, "one file at a time")


def test_missing_file_field_and_not_multipart():
    with stub_client() as c:
        assert_error(c.post("/api/predict", files={"audio": ("a.wav", b"abc")}), 422, "missing file", "'file'")
        assert_error(c.post("/api/predict", data={"file": "abc"}), 400, "not a file upload")
        assert_error(c.post("/api/predict", json={"file": "x"}), 400, "not a file upload", "multipart/form-data")
        assert_error(c.post("/api/predict"), 400, "not a file upload")
        r = c.post("/api/predict", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=zz"})
        assert r.status_code in (400, 422) and set(r.json()) == {"error", "detail"}


# ------------------------------------------------------------------ Host and Origin


def test_unknown_host_is_refused():
    with stub_client() as c:
        body = assert_error(c.get("/healthz", headers={"host": "evil.example"}), 400, "host not allowed")
        assert "--allowed-host" in body["detail"]
        for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
            assert c.get("/healthz", headers={"host": host}).status_code == 200, host
    with stub_client(allowed_hosts=("music.lan",)) as c:
        assert c.get("/healthz", headers={"host": "music.lan:8000"}).status_code == 200
        assert c.get("/healthz", headers={"host": "localhost"}).status_code == 400


def test_cross_site_posts_are_refused():
    with stub_client() as c:
        evil = {"origin": "http://evil.example"}
        body = assert_error(
            c.post("/api/predict", files={"file": ("a.wav", b"x")}, headers=evil),
            403,
            "cross-site request refused",
            "evil.example",
        )
        assert "--trusted-origin" in body["detail"]
        for headers in (
            {"referer": "http://evil.example/page"},
            {"origin": "null"},
            {"origin": "http://localhost:9999"},
        ):
            r = c.post("/api/predict", files={"file": ("a.wav", b"x")}, headers=headers)
            assert r.status_code == 403, headers
        for headers in ({"origin": BASE}, {"referer": BASE + "/"}, {}):  # the page itself, or a program
            assert c.post("/api/predict", files={"file": ("a.wav", b"x")}, headers=headers).status_code == 200
        assert c.get("/api/models", headers=evil).status_code == 200  # reading is harmless
    with stub_client(trusted_origins=("https://music.example",)) as c:
        r = c.post("/api/predict", files={"file": ("a.wav", b"x")}, headers={"origin": "https://music.example"})
        assert r.status_code == 200


def test_live_socket_from_another_site_is_refused():
    with stub_client() as c:
        with pytest.raises(Exception), c.websocket_connect(WS, headers={"origin": "http://evil.example"}) as ws:
            ws.receive_json()
        with c.websocket_connect(WS, headers={"origin": BASE}) as ws:
            ws.send_text('{"sample_rate": 16000}')
            assert ws.receive_json()["ready"] is True


# ------------------------------------------------------------------ queue


def test_full_queue_answers_503_at_once_with_retry_after():
    stub = StubPredictor(gate=threading.Event())
    with real_server(stub, workers=1, max_queue=1) as (url, app):
        results = []

        def post():
            results.append(httpx.post(url + "/api/predict", files={"file": ("a.wav", b"x")}, timeout=WAIT_S))

        held = [threading.Thread(target=post) for _ in range(2)]  # one running, one waiting
        for t in held:
            t.start()
        wait_for(lambda: stub.calls and app.state.serve.pool.admitted == 2, "two admitted requests")
        r = httpx.post(url + "/api/predict", files={"file": ("a.wav", b"x")}, timeout=WAIT_S)
        assert_error(r, 503, "server busy")
        assert int(r.headers["retry-after"]) >= 1
        assert httpx.get(url + "/healthz", timeout=WAIT_S).status_code == 200  # the rest still answers
        stub.gate.set()
        for t in held:
            t.join(WAIT_S)
        assert [r.status_code for r in results] == [200, 200]
        assert httpx.post(url + "/api/predict", files={"file": ("a.wav", b"x")}, timeout=WAIT_S).status_code == 200


def test_busy_answer_with_expect_100_continue_comes_before_the_body():
    stub = StubPredictor(gate=threading.Event())
    with real_server(stub, workers=1, max_queue=0) as (url, _):
        holder = threading.Thread(
            target=lambda: httpx.post(url + "/api/predict", files={"file": ("a", b"x")}, timeout=WAIT_S)
        )
        holder.start()
        wait_for(lambda: stub.calls, "the first request to run")
        with raw_connection(url) as s:
            s.sendall(
                b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                b"Content-Type: multipart/form-data; boundary=gkb\r\nContent-Length: 500000\r\n\r\n"
            )
            answer = read_until_closed(s)  # no body sent: the answer comes anyway, then the close
        assert answer.startswith(b"HTTP/1.1 503") and b"100 Continue" not in answer
        stub.gate.set()
        holder.join(WAIT_S)


def test_slow_uploads_hold_no_place_in_the_queue():
    """Uploads still arriving are counted apart: they cannot keep the workers idle, up to max_uploads."""
    stub = StubPredictor()
    with real_server(stub, workers=1, max_queue=0, max_uploads=3) as (url, app):
        head = (
            b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=gkb\r\n"
            b"Content-Length: 100000\r\n\r\n" + multipart([])[:60]
        )
        slow = [raw_connection(url) for _ in range(2)]
        for s in slow:
            s.sendall(head)
        wait_for(lambda: app.state.serve.pool.uploading == 2, "two uploads in progress")
        ok = httpx.post(url + "/api/predict", files={"file": ("a.wav", b"x")}, timeout=WAIT_S)
        assert ok.status_code == 200  # the queue (one place) was free for it
        third = raw_connection(url)
        third.sendall(head)
        wait_for(lambda: app.state.serve.pool.uploading == 3, "three uploads in progress")
        r = httpx.post(url + "/api/predict", files={"file": ("a.wav", b"x")}, timeout=WAIT_S)
        assert_error(r, 503, "server busy", "3 arriving")
        for s in [*slow, third]:
            s.close()


# ------------------------------------------------------------------ slow and idle clients


@pytest.mark.slow
def test_slow_upload_gets_408():
    with real_server(body_timeout_s=1.0, min_upload_bytes_per_s=1000.0) as (url, _):
        body = multipart([("top_k", "3")])
        for trickle in (False, True):
            with raw_connection(url) as s:
                s.sendall(
                    b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; "
                    b"boundary=gkb\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10]
                )
                if trickle:  # a byte now and then: never stalled long, but far too slow
                    for byte in body[10:40]:
                        time.sleep(0.1)
                        try:
                            s.sendall(bytes([byte]))
                        except OSError:
                            break
                answer = read_until_closed(s)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"upload too slow" in answer


@pytest.mark.slow
def test_slow_headers_and_idle_connections_are_closed():
    with real_server(header_timeout_s=1.0, keep_alive_s=1.0) as (url, _):
        slow = [raw_connection(url) for _ in range(20)]
        for s in slow:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        silent = [raw_connection(url) for _ in range(5)]
        kept_alive = raw_connection(url)
        kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        for _ in range(5):  # a header line now and then never completes the request
            time.sleep(0.3)
            for s in slow:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
        assert all(read_until_closed(s) == b"" for s in slow + silent)
        assert read_until_closed(kept_alive).startswith(b"HTTP/1.1 200")  # answered, then closed when idle
        assert httpx.get(url + "/healthz", timeout=WAIT_S).status_code == 200
        for s in [*slow, *silent, kept_alive]:
            s.close()


def _ws_url(url: str) -> str:
    return "ws" + url.removeprefix("http") + "/ws/live"


@pytest.mark.slow
def test_silent_live_client_is_closed():
    with real_server(live_idle_timeout_s=1.0) as (url, _):
        for hello in (False, True):
            with websockets_sync.connect(_ws_url(url), open_timeout=WAIT_S) as ws:
                if hello:
                    ws.send('{"sample_rate": 16000}')
                    assert json.loads(ws.recv(timeout=WAIT_S))["ready"] is True
                msg = json.loads(ws.recv(timeout=WAIT_S))
                assert msg["error"] == "live session idle"
                with pytest.raises(Exception):
                    ws.recv(timeout=WAIT_S)


def test_live_sessions_are_capped_with_50_clients():
    stub = StubPredictor()
    with real_server(stub, live_max_sessions=8) as (url, _):
        sockets, answers = [], []
        try:
            for _ in range(50):
                ws = websockets_sync.connect(_ws_url(url), open_timeout=WAIT_S)
                sockets.append(ws)
                with suppress(ConnectionClosed):  # a refused client may be closed already
                    ws.send('{"sample_rate": 16000}')
                answers.append(json.loads(ws.recv(timeout=WAIT_S)))
            assert sum(a.get("ready") is True for a in answers) == 8
            assert sum(a.get("error") == "too many live sessions" for a in answers) == 42
            for ws, a in zip(sockets, answers):
                if a.get("ready"):  # the admitted ones work: a second of audio, one prediction
                    ws.send(b"\0" * 4 * 16000)
                    assert set(json.loads(ws.recv(timeout=WAIT_S))["probabilities"]) == set(LABELS)
                    break
        finally:
            for ws in sockets:
                ws.close()
        deadline = time.monotonic() + WAIT_S  # the closed sessions free their places
        while time.monotonic() < deadline:
            with websockets_sync.connect(_ws_url(url), open_timeout=WAIT_S) as ws:
                ws.send('{"sample_rate": 16000}')
                if json.loads(ws.recv(timeout=WAIT_S)).get("ready"):
                    break
            time.sleep(0.1)
        else:
            pytest.fail("no live session admitted after the others closed")


def test_live_message_too_large_and_bad_start():
    with stub_client(live_max_message_bytes=4096) as c:
        with c.websocket_connect(WS) as ws:
            ws.send_text('{"sample_rate": 16000}')
            ws.receive_json()
            ws.send_bytes(b"\0" * 8192)
            assert ws.receive_json()["error"] == "audio chunk too large"
        for hello in ('{"rate": 48000}', "not json", '{"sample_rate": 100}'):
            with c.websocket_connect(WS) as ws:
                ws.send_text(hello)
                msg = ws.receive_json()
                assert msg["error"] == "bad start message" and "sample_rate" in msg["detail"]


def test_admission_stops_when_the_expected_wait_is_too_long():
    """Beyond the count, uploads are refused when the work admitted (estimated from the songs'
    durations) would keep a new one waiting too long."""
    from genrekit.serve.errors import ApiError
    from genrekit.serve.jobs import JobPool

    pool = JobPool(workers=2, max_queue=100, max_wait_s=1.0, max_uploads=10)
    try:
        pool.seconds_per_audio_s = 0.005  # as if the recent songs took 0.5 s per 100 s of audio
        with pool.admission("a", 100), pool.admission("a", 100), pool.admission("a", 100), pool.admission("a", 100):
            assert pool.expected_wait_s(client="a") == 1.0
            with pool.admission("a", 1):  # a fifth still gets in; it will wait a second
                with pytest.raises(ApiError) as refused, pool.admission("a", 100):
                    pass
                assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
            assert pool.admitted == 4
        assert pool.admitted == 0
    finally:
        pool.close()
