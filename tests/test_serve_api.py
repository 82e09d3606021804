"""The web app's REST API and live WebSocket, through FastAPI's TestClient (a random-weights model)."""
from __future__ import annotations

import io
import json
import os
import warnings

import numpy as np
import pytest
import soundfile as sf

with warnings.catch_warnings():  # starlette's TestClient warns that it prefers httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from genrekit.audio import GenrekitError
from genrekit.checkpoint import Checkpoint
from genrekit.features import FeatureConfig
from genrekit.models import build_model
from genrekit.serve import create_app

LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
SR = 22050
MAX_MB = 1.0
MAX_S = 20.0


def tone(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(scale=0.05, size=t.size)
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0) + noise).astype(np.float32)


def encode(y: np.ndarray, sr: int = SR, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    cfg = FeatureConfig()
    m = build_model("gknet", n_classes=len(LABELS), input_shape=(cfg.n_bins, cfg.segment_frames))
    path = tmp_path_factory.mktemp("model") / "m.pt"
    Checkpoint("gknet", {}, LABELS, cfg, m.state_dict(), {"note": "test", "description": "random weights"}).save(path)
    return str(path)


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def client(model_path, upload_dir):
    app = create_app(model_path, max_upload_mb=MAX_MB, max_duration_s=MAX_S, tmp_dir=upload_dir)
    with TestClient(app) as c:
        yield c


@pytest.fixture(autouse=True)
def no_leftover_uploads(request, upload_dir):
    """Every test, whatever its outcome, leaves no upload behind in the app's temp folder."""
    yield
    leftovers = sorted(p.name for p in upload_dir.iterdir())
    assert leftovers == [], f"temporary uploads not removed: {leftovers}"


@pytest.fixture(scope="module")
def wav5() -> bytes:
    return encode(tone(5.0))


def assert_error(r, status: int, error: str, detail_part: str = "") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "detail"}, body
    assert body["error"] == error
    assert detail_part.lower() in body["detail"].lower(), body["detail"]
    return body


# ------------------------------------------------------------------ page, assets, info


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["model"] == "m.pt"


def test_models_lists_labels_info_and_limits(client):
    body = client.get("/api/models").json()
    assert body["labels"] == LABELS
    assert body["model"]["name"] == "m.pt"
    assert body["model"]["architecture"] == "gknet"
    assert body["model"]["description"] == "random weights"
    assert "path" not in body["model"]  # no server paths leak
    assert body["limits"]["max_upload_mb"] == MAX_MB
    assert body["limits"]["max_duration_s"] == MAX_S


def test_page_and_static_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("/static/app.js", "/static/style.css", "/static/plotly.min.js"):
        assert f'"{asset}"' in page.text, asset
    for asset in ("/static/app.js", "/static/style.css", "/static/plotly.min.js", "/static/mic-worklet.js"):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 500, asset
    plotly = client.get("/static/plotly.min.js")
    assert "javascript" in plotly.headers["content-type"]
    assert b"plotly.js" in plotly.content[:2000].lower()
    # nothing comes from the internet: no absolute URLs in the page or its assets
    for asset in ("/", "/static/app.js", "/static/style.css", "/static/mic-worklet.js"):
        text = client.get(asset).text
        assert "https://" not in text and 'src="http' not in text and "url(http" not in text, asset


def test_openapi_docs(client):
    page = client.get("/docs")
    assert page.status_code == 200
    # the docs page works offline: its script and style come from this server, not a CDN
    assert "https://" not in page.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/models", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "file" in body["schema"]["properties"]


def test_unknown_route_is_json_404(client):
    assert_error(client.get("/api/nope"), 404, "not found")


# ------------------------------------------------------------------ predict


def test_predict_wav(client, wav5):
    r = client.post("/api/predict", files={"file": ("song.wav", wav5, "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["file"] == {"name": "song.wav", "bytes": len(wav5)}
    assert body["duration_s"] == pytest.approx(5.0, abs=0.01)
    assert len(body["top"]) == 3
    assert [t["genre"] for t in body["top"]][0] == max(body["probabilities"], key=body["probabilities"].get)
    assert set(body["probabilities"]) == set(LABELS)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert body["labels"] == LABELS
    assert body["model"]["name"] == "m.pt"
    timeline = body["timeline"]
    assert len(timeline) >= 2
    assert timeline[0]["start_s"] == 0
    assert timeline[-1]["end_s"] == pytest.approx(5.0, abs=0.05)
    for seg in timeline:
        assert seg["label"] in LABELS and seg["end_s"] > seg["start_s"]
        assert sum(seg["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert {"upload_ms", "decode_ms", "predict_ms", "total_ms"} <= set(body["timing"])
    assert all(v >= 0 for v in body["timing"].values())
    assert "path" not in body  # the server's temp path is not leaked


def test_top_k_as_form_field_and_query(client, wav5):
    r = client.post("/api/predict", files={"file": ("a.wav", wav5)}, data={"top_k": "5"})
    assert len(r.json()["top"]) == 5
    r = client.post("/api/predict?top_k=1", files={"file": ("a.wav", wav5)})
    assert len(r.json()["top"]) == 1


@pytest.mark.parametrize("bad", ["0", "11", "abc"])
def test_invalid_top_k(client, wav5, bad):
    assert_error(client.post("/api/predict", files={"file": ("a.wav", wav5)}, data={"top_k": bad}), 422, "invalid top_k")


def test_content_is_checked_by_decoding_not_by_name(client):
    flac = encode(tone(4.0, sr=16000), sr=16000, fmt="FLAC")
    r = client.post("/api/predict", files={"file": ("notes.txt", flac, "text/plain")})
    assert r.status_code == 200, r.text
    assert r.json()["duration_s"] == pytest.approx(4.0, abs=0.01)
    ogg = encode(tone(3.0), fmt="OGG", subtype="VORBIS")
    assert client.post("/api/predict", files={"file": ("clip", ogg)}).status_code == 200


def test_non_audio(client):
    r = client.post("/api/predict", files={"file": ("song.mp3", b"this is not music\n" * 200, "audio/mpeg")})
    assert_error(r, 422, "not a readable audio file", "'song.mp3' could not be decoded")


def test_corrupt_audio(client):
    flac = encode(tone(5.0), fmt="FLAC")
    corrupt = flac[:200] + np.random.default_rng(1).integers(0, 256, len(flac) - 200, dtype=np.uint8).tobytes()
    assert_error(client.post("/api/predict", files={"file": ("x.flac", corrupt)}), 422, "not a readable audio file", "corrupt")


def test_header_without_samples(client, wav5):
    assert_error(client.post("/api/predict", files={"file": ("x.wav", wav5[:44])}), 422, "not a readable audio file", "no audio")


def test_empty_file(client):
    assert_error(client.post("/api/predict", files={"file": ("x.wav", b"")}), 422, "empty file")


def test_too_long(client):
    long_wav = encode(tone(MAX_S + 5, sr=8000), sr=8000, subtype="PCM_16")
    assert len(long_wav) < MAX_MB * 1e6
    assert_error(client.post("/api/predict", files={"file": ("long.wav", long_wav)}), 422, "audio too long", "20 s")


def test_too_large(client):
    big = os.urandom(int(MAX_MB * 1e6) + 100_000)
    assert_error(client.post("/api/predict", files={"file": ("big.wav", big)}), 413, "file too large", "1 MB")


def test_too_large_is_caught_while_streaming(client):
    """A chunked upload (no Content-Length) is cut off once it passes the limit."""
    boundary = b"gkboundary"
    sent = {"chunks": 0}

    def body():
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(40):  # 4 MB in all
            sent["chunks"] += 1
            yield b"\0" * 100_000
        yield b"\r\n--" + boundary + b"--\r\n"

    r = client.post(
        "/api/predict", content=body(), headers={"content-type": "multipart/form-data; boundary=gkboundary"}
    )
    assert_error(r, 413, "file too large")


def test_missing_file_field(client, wav5):
    r = client.post("/api/predict", files={"audio": ("a.wav", wav5)})
    assert_error(r, 422, "missing file", "'file'")
    assert_error(client.post("/api/predict", data={"top_k": "3"}), 400, "not a file upload")


def test_not_multipart(client):
    assert_error(client.post("/api/predict", json={"file": "x"}), 400, "not a file upload", "multipart/form-data")
    assert_error(client.post("/api/predict"), 400, "not a file upload")


def test_malformed_multipart(client):
    r = client.post(
        "/api/predict", content=b"garbage without boundary", headers={"content-type": "multipart/form-data; boundary=zz"}
    )
    assert r.status_code in (400, 422)
    assert set(r.json()) == {"error", "detail"}


def test_temp_files_go_to_the_system_temp_dir_by_default_and_are_removed(model_path, wav5, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    app = create_app(model_path, max_upload_mb=MAX_MB, warmup=False)
    seen = []
    real_mkstemp = tempfile.mkstemp

    def spy(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        seen.append(name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    with TestClient(app) as c:
        assert c.post("/api/predict", files={"file": ("a.wav", wav5)}).status_code == 200
        assert c.post("/api/predict", files={"file": ("a.wav", b"junk" * 100)}).status_code == 422
        assert c.post("/api/predict", files={"file": ("a.wav", os.urandom(1_200_000))}).status_code == 413
    assert len(seen) == 3 and all(os.path.dirname(n) == str(tmp_path) for n in seen)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("genrekit-upload-")] == []


def test_bad_model_path(tmp_path):
    with pytest.raises(GenrekitError, match="not found"):
        create_app(tmp_path / "missing.pt")


# ------------------------------------------------------------------ live WebSocket


def test_live_websocket_round_trip(client):
    sr = 16000
    y = tone(3.0, sr=sr).astype("<f4")
    with client.websocket_connect("/ws/live") as ws:
        ws.send_text(json.dumps({"sample_rate": sr}))
        ready = ws.receive_json()
        assert ready["ready"] is True and ready["labels"] == LABELS and ready["window_s"] == 3.0
        for start in range(0, len(y), sr // 10):  # 100-ms chunks, as a browser sends them
            ws.send_bytes(y[start : start + sr // 10].tobytes())
        ws.send_text(json.dumps({"type": "stop"}))
        messages = []
        with pytest.raises(Exception):  # the server closes the socket after the last prediction
            while True:
                messages.append(ws.receive_json())
    assert 1 <= len(messages) <= 3
    times = [m["t"] for m in messages]
    assert times == sorted(times) and times[-1] == pytest.approx(3.0)
    for m in messages:
        assert set(m["probabilities"]) == set(LABELS)
        assert sum(m["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert len(m["top"]) == 3 and m["top"][0]["genre"] in LABELS


def test_live_prediction_matches_predict_signal(client):
    """The live answer is the model's prediction of the last 3 s, resampled from the browser's rate."""
    sr = 8000
    y = tone(5.0, sr=sr, seed=3).astype("<f4")
    with client.websocket_connect("/ws/live") as ws:
        ws.send_text(json.dumps({"sample_rate": sr}))
        ws.receive_json()
        ws.send_bytes(y.tobytes())  # one big chunk: one prediction, on the last 3 s
        ws.send_text(json.dumps({"type": "stop"}))
        msg = ws.receive_json()
    expected = client.app.state.predictor.predict_signal(y[-3 * sr :], sr).probabilities
    assert msg["t"] == pytest.approx(5.0)
    for g in LABELS:
        assert msg["probabilities"][g] == pytest.approx(expected[g], abs=1e-4)


@pytest.mark.parametrize("hello", ['{"rate": 48000}', "not json", '{"sample_rate": 100}'])
def test_live_rejects_a_bad_start_message(client, hello):
    with client.websocket_connect("/ws/live") as ws:
        ws.send_text(hello)
        msg = ws.receive_json()
        assert msg["error"] == "bad start message" and "sample_rate" in msg["detail"]


def test_live_rejects_partial_samples(client):
    with client.websocket_connect("/ws/live") as ws:
        ws.send_text('{"sample_rate": 16000}')
        ws.receive_json()
        ws.send_bytes(b"\0" * 7)
        msg = ws.receive_json()
        assert msg["error"] == "bad audio chunk"
