"""The web app's REST API and live WebSocket through FastAPI's TestClient.

Two models: a real Predictor with random weights (decoding, errors, temp files) and a stub that
keeps the Predictor contract (labels, info, sample_rate, predict_file, predict_signal) and
answers chosen probabilities at once, or when a test lets it (to fill the queue).
"""

from __future__ import annotations

import io
import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

with warnings.catch_warnings():  # starlette's TestClient warns that it prefers httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from genrekit.audio import GenrekitError
from genrekit.predictor import Prediction, Segment
from genrekit.serve import ServeConfig, create_app

LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
SR = 22050
MAX_MB = 1.0
MAX_S = 20.0
BASE = "http://localhost"  # a Host the server answers to by default
WS = "ws://localhost/ws/live"
# the fields of every answer of POST /api/predict: a prediction (genrekit.schema) with its windows
ANSWER_FIELDS = {
    "path",
    "genre",
    "probability",
    "confident",
    "no_music",
    "label",
    "genres",
    "top",
    "probabilities",
    "duration_s",
    "truncated",
    "declared_duration_s",
    "timeline",
    "analysed",
    "windows",
    "model",
    "file",
    "timing",
    "styles",
}
LIVE_FIELDS = {"genre", "probability", "confident", "no_music", "label", "genres", "top", "probabilities", "t"}


def tone(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(scale=0.05, size=t.size)
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0) + noise).astype(np.float32)


def encode(y: np.ndarray, sr: int = SR, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@dataclass
class StubPredictor:
    """The Predictor contract, answering ``probs``; ``gate``, when given, holds every answer."""

    probs: dict = field(default_factory=lambda: dict(zip(LABELS, np.full(10, 0.1))))
    duration_s: float = 10.0
    confident: bool = True
    truncated: bool = False
    declared_s: float | None = None
    gate: threading.Event | None = None
    calls: list = field(default_factory=list)
    labels: list = field(default_factory=lambda: list(LABELS))
    info: dict = field(default_factory=lambda: {"name": "stub.pt", "path": "/secret/stub.pt"})
    sample_rate: int = SR

    def _prediction(self) -> Prediction:
        if self.gate is not None:
            assert self.gate.wait(60), "the test never released the stub"
        half = self.duration_s / 2
        timeline = [Segment(0.0, half, dict(self.probs)), Segment(half, self.duration_s, dict(self.probs))]
        return Prediction(
            path="upload",
            duration_s=self.duration_s,
            probabilities=dict(self.probs),
            timeline=timeline,
            model="stub.pt",
            confident=self.confident,
            truncated=self.truncated,
            declared_s=self.declared_s,
        )

    def predict_file(self, path, *, max_seconds=None, pace=None, styles=False) -> Prediction:
        self.calls.append({"suffix": Path(path).suffix, "bytes": Path(path).read_bytes(), "max_seconds": max_seconds})
        for _ in (pace or iter)([np.zeros(1, np.float32)]):  # one block, analysed in one turn at the model
            return self._prediction()

    def predict_signal(self, y, sr) -> Prediction:
        self.calls.append({"samples": len(y), "sr": sr})
        return self._prediction()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    from conftest import random_checkpoint

    return str(random_checkpoint(tmp_path_factory.mktemp("model") / "m.pt", labels=LABELS))


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("uploads")


def config(**overrides) -> ServeConfig:
    return ServeConfig(**{"max_upload_mb": MAX_MB, "max_duration_s": MAX_S, "workers": 1, **overrides})


@pytest.fixture(scope="module")
def client(model_path, upload_dir):
    with TestClient(create_app(config(model=model_path, tmp_dir=str(upload_dir))), base_url=BASE) as c:
        yield c


def stub_client(stub: StubPredictor, **overrides) -> TestClient:
    return TestClient(create_app(config(warmup=False, **overrides), predictor=stub), base_url=BASE)


@pytest.fixture(autouse=True)
def no_leftover_uploads(upload_dir):
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
    assert r.json()["status"] == "ok" and r.json()["model"] == "m.pt"


def test_models_lists_labels_info_and_limits(client):
    body = client.get("/api/models").json()
    assert body["labels"] == LABELS
    assert body["model"]["name"] == "m.pt" and body["model"]["description"] == "random weights"
    assert "path" not in body["model"]  # no server paths leak
    assert body["limits"]["max_upload_mb"] == MAX_MB and body["limits"]["max_duration_s"] == MAX_S


def test_page_and_static_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    scripts = ["/static/app.js", "/static/charts.js", "/static/mic.js", "/static/ui.js", "/static/mic-worklet.js"]
    for asset in ("/static/app.js", "/static/style.css", "/static/plotly.min.js"):
        assert f'"{asset}"' in page.text, asset
    for asset in [*scripts, "/static/style.css", "/static/plotly.min.js"]:
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 500, asset
    assert b"plotly.js" in client.get("/static/plotly.min.js").content[:2000].lower()
    for asset in ["/", *scripts, "/static/style.css"]:  # nothing comes from the internet
        text = client.get(asset).text
        assert "https://" not in text and 'src="http' not in text and "url(http" not in text, asset
    assert client.get("/favicon.ico").status_code == 200


def test_openapi_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "https://" not in page.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1") and {"/api/predict", "/api/models", "/healthz"} <= set(spec["paths"])
    docs_spec = client.get("/docs/openapi.json").json()  # what the bundled Swagger UI 4 can read
    assert docs_spec["openapi"] == "3.0.3" and set(docs_spec["paths"]) == set(spec["paths"])
    body = docs_spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["properties"]["file"]["format"] == "binary"
    assert '"null"' not in json.dumps(docs_spec)
    assert client.get("/redoc").status_code == 404  # its script would come from a CDN


def test_openapi_30_rewrites_31_schemas():
    from genrekit.serve.docs import openapi_30

    doc = {
        "openapi": "3.1.0",
        "components": {
            "schemas": {
                "X": {
                    "properties": {
                        "a": {"anyOf": [{"type": "integer"}, {"type": "null"}], "title": "A"},
                        "b": {"type": ["string", "null"], "examples": ["x"]},
                        "c": {"anyOf": [{"$ref": "#/components/schemas/Y"}, {"type": "null"}]},
                        "d": {"type": "number", "exclusiveMinimum": 0},
                        "e": {"type": "string", "contentMediaType": "application/octet-stream"},
                        "f": {"const": "k"},
                    }
                }
            }
        },
    }
    props = openapi_30(doc)["components"]["schemas"]["X"]["properties"]
    assert props["a"] == {"type": "integer", "nullable": True, "title": "A"}
    assert props["b"] == {"type": "string", "nullable": True, "example": "x"}
    assert props["c"] == {"allOf": [{"$ref": "#/components/schemas/Y"}], "nullable": True}
    assert props["d"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert props["e"] == {"type": "string", "format": "binary"}
    assert props["f"] == {"enum": ["k"]}
    assert doc["openapi"] == "3.1.0"  # the input is left alone


def test_unknown_route_is_json_404(client):
    assert_error(client.get("/api/nope"), 404, "not found")


# ------------------------------------------------------------------ predict, real model


def test_predict_wav(client, wav5):
    r = client.post("/api/predict", files={"file": ("song.wav", wav5, "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == ANSWER_FIELDS  # the model card and the labels are at /api/models only
    assert body["file"] == {"name": "song.wav", "bytes": len(wav5)} and body["path"] == "song.wav"
    assert body["styles"] is None  # this model does not compute the musicnn tags
    assert body["duration_s"] == pytest.approx(5.0, abs=0.01)
    assert body["truncated"] is False and body["declared_duration_s"] == pytest.approx(5.0, abs=0.01)
    assert len(body["top"]) == 3
    assert body["genre"] == body["top"][0]["genre"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["probability"] == body["top"][0]["probability"] and body["genres"][0] == body["genre"]
    assert body["label"] in (" / ".join(body["genres"]), " / ".join(body["genres"]) + " (unsure)")
    assert set(body["probabilities"]) == set(LABELS)
    assert body["model"] == "m.pt"
    windows = body["windows"]
    assert len(windows) >= 2 and windows[0]["start_s"] == 0
    assert windows[-1]["end_s"] == pytest.approx(5.0, abs=0.05)
    for w in windows:
        assert w["genre"] == max(w["probabilities"], key=w["probabilities"].get) and w["end_s"] > w["start_s"]
    runs = body["timeline"]  # smoothed runs covering the song end to end
    assert runs[0]["start_s"] == 0 and runs[-1]["end_s"] == pytest.approx(body["duration_s"], abs=1e-3)
    assert all(a["end_s"] == b["start_s"] and a["genre"] != b["genre"] for a, b in zip(runs, runs[1:]))
    assert all(set(r) == {"start_s", "end_s", "genre"} and r["genre"] in LABELS for r in runs)
    assert set(body["timing"]) == {"upload_ms", "queue_ms", "predict_ms", "total_ms"}
    assert all(v >= 0 for v in body["timing"].values())


def test_predict_answers_the_predictors_values_unchanged(client, wav5, tmp_path):
    """The API passes on the predictor's probabilities as they are (no rounding of its own)."""
    path = tmp_path / "song.wav"
    path.write_bytes(wav5)
    expected = client.app.state.serve.predictor.predict_file(path)
    body = client.post("/api/predict", files={"file": ("song.wav", wav5)}).json()
    assert body["probabilities"] == {g: float(p) for g, p in expected.probabilities.items()}
    assert [s["probabilities"] for s in body["windows"]] == [
        {g: float(p) for g, p in s.probabilities.items()} for s in expected.timeline
    ]


def test_top_k_as_form_field_and_query(client, wav5):
    r = client.post("/api/predict", files={"file": ("a.wav", wav5)}, data={"top_k": "5"})
    assert len(r.json()["top"]) == 5
    r = client.post("/api/predict?top_k=1", files={"file": ("a.wav", wav5)})
    assert len(r.json()["top"]) == 1


@pytest.mark.parametrize("bad", ["0", "11", "abc"])
def test_invalid_top_k(client, wav5, bad):
    r = client.post("/api/predict", files={"file": ("a.wav", wav5)}, data={"top_k": bad})
    assert_error(r, 422, "invalid top_k")


def test_content_is_checked_by_decoding_not_by_name(client):
    flac = encode(tone(4.0, sr=16000), sr=16000, fmt="FLAC")
    r = client.post("/api/predict", files={"file": ("notes.txt", flac, "text/plain")})
    assert r.status_code == 200, r.text
    assert r.json()["duration_s"] == pytest.approx(4.0, abs=0.01)
    ogg = encode(tone(3.0), fmt="OGG", subtype="VORBIS")
    assert client.post("/api/predict", files={"file": ("clip", ogg)}).status_code == 200


def test_non_audio(client):
    r = client.post("/api/predict", files={"file": ("song.mp3", b"this is not music\n" * 200, "audio/mpeg")})
    body = assert_error(r, 422, "not a readable audio file", "'song.mp3' could not be decoded")
    assert "genrekit-upload-" not in body["detail"]  # the server's temp path does not leak


def test_corrupt_audio(client):
    flac = encode(tone(5.0), fmt="FLAC")
    corrupt = flac[:200] + np.random.default_rng(1).integers(0, 256, len(flac) - 200, dtype=np.uint8).tobytes()
    r = client.post("/api/predict", files={"file": ("x.flac", corrupt)})
    assert_error(r, 422, "not a readable audio file", "corrupt")


def test_header_without_samples(client, wav5):
    r = client.post("/api/predict", files={"file": ("x.wav", wav5[:44])})
    assert_error(r, 422, "not a readable audio file", "no audio")


def test_empty_file(client):
    assert_error(client.post("/api/predict", files={"file": ("x.wav", b"")}), 422, "empty file")


def test_too_long(client):
    long_wav = encode(tone(MAX_S + 5, sr=8000), sr=8000, subtype="PCM_16")
    assert len(long_wav) < MAX_MB * 1e6
    r = client.post("/api/predict", files={"file": ("long.wav", long_wav)})
    assert_error(r, 422, "audio too long", "20 s")


def test_temp_files_go_to_the_system_temp_dir_and_are_removed(model_path, wav5, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = []
    real_mkstemp = tempfile.mkstemp

    def spy(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        seen.append(name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    with TestClient(create_app(config(model=model_path, warmup=False)), base_url=BASE) as c:
        assert c.post("/api/predict", files={"file": ("a.wav", wav5)}).status_code == 200
        assert c.post("/api/predict", files={"file": ("a.wav", b"junk" * 100)}).status_code == 422
        assert c.post("/api/predict", files={"file": ("a.wav", os.urandom(1_200_000))}).status_code == 413
    uploads = [n for n in seen if "genrekit-upload-" in n]
    assert len(uploads) == 2 and all(os.path.dirname(n) == str(tmp_path) for n in uploads)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("genrekit-upload-")] == []


def test_bad_model_path_fails_at_start(tmp_path):
    app = create_app(ServeConfig(model=str(tmp_path / "missing.pt")))
    with pytest.raises(GenrekitError, match="not found"), TestClient(app, base_url=BASE):
        pass


def test_invalid_settings():
    with pytest.raises(GenrekitError, match="max_upload_mb"):
        ServeConfig(max_upload_mb=0)
    with pytest.raises(GenrekitError, match="max_queue"):
        ServeConfig(max_queue=-1)


# ------------------------------------------------------------------ predict, stub model


def test_upload_suffix_is_kept_sanitised_and_max_seconds_passed():
    stub = StubPredictor()
    with stub_client(stub) as c:
        for name, suffix in [
            ("cover.PNG", ".png"),
            ("song.mp3", ".mp3"),
            ("x.we ird", ""),
            ("noext", ""),
            ("../../etc/passwd.wav", ".wav"),
        ]:
            assert c.post("/api/predict", files={"file": (name, b"abc")}).status_code == 200
            assert stub.calls[-1]["suffix"] == suffix and stub.calls[-1]["bytes"] == b"abc"
            assert stub.calls[-1]["max_seconds"] == pytest.approx(MAX_S + 1)
        body = c.post("/api/predict", files={"file": ("../../etc/passwd.wav", b"abc")}).json()
        assert body["file"]["name"] == "passwd.wav"


def test_too_long_per_the_predictors_duration():
    with stub_client(StubPredictor(duration_s=MAX_S + 1)) as c:
        assert_error(c.post("/api/predict", files={"file": ("a.wav", b"x")}), 422, "audio too long")


def test_probabilities_sum_to_one_unrounded():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(10))
    with stub_client(StubPredictor(probs=dict(zip(LABELS, p.tolist())))) as c:
        body = c.post("/api/predict", files={"file": ("a.wav", b"x")}).json()
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-6
    assert body["probabilities"] == dict(zip(LABELS, p.tolist()))
    assert [t["probability"] for t in body["top"]] == sorted(p.tolist(), reverse=True)[:3]


@pytest.mark.parametrize(
    ("probs", "genres"),
    [
        ({"blues": 0.34, "jazz": 0.33, "rock": 0.33}, ["blues", "jazz", "rock"]),  # a song in three equal parts
        ({"blues": 0.45, "jazz": 0.40, "rock": 0.15}, ["blues", "jazz"]),
        ({"pop": 0.36, "blues": 0.26, "classical": 0.15}, ["pop", "blues"]),
        ({"blues": 0.55, "jazz": 0.35, "rock": 0.10}, ["blues"]),
        ({"blues": 0.9, "jazz": 0.05, "rock": 0.05}, ["blues"]),
    ],
)
def test_the_answer_shows_the_mix_when_the_top_genres_are_close(probs, genres):
    probs = dict.fromkeys(LABELS, 0.0) | probs
    with stub_client(StubPredictor(probs=probs)) as c:
        body = c.post("/api/predict", files={"file": ("a.wav", b"x")}).json()
    assert body["genres"] == genres and body["label"] == " / ".join(genres) and body["genre"] == genres[0]


def test_an_unsure_answer_says_so_and_keeps_its_genre():
    probs = dict.fromkeys(LABELS, 0.0625) | {"jazz": 0.35, "blues": 0.15}
    with stub_client(StubPredictor(probs=probs, confident=False)) as c:
        body = c.post("/api/predict", files={"file": ("a.wav", b"x")}).json()
    assert body["confident"] is False and body["no_music"] is None
    assert body["genre"] == "jazz" and body["genres"] == ["jazz"] and body["label"] == "jazz (unsure)"
    assert body["top"][0] == {"genre": "jazz", "probability": 0.35}


def test_a_truncated_file_is_flagged_with_what_its_header_says():
    with stub_client(StubPredictor(duration_s=6.0, truncated=True, declared_s=30.0)) as c:
        body = c.post("/api/predict", files={"file": ("cut.mp3", b"x")}).json()
    assert body["truncated"] is True and body["declared_duration_s"] == 30.0 and body["duration_s"] == 6.0


# ------------------------------------------------------------------ live WebSocket


def test_live_websocket_round_trip(client):
    sr = 16000
    y = tone(3.0, sr=sr).astype("<f4")
    with client.websocket_connect(WS) as ws:
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
        assert set(m) == LIVE_FIELDS and set(m["probabilities"]) == set(LABELS)
        assert len(m["top"]) == 3 and m["top"][0]["genre"] in LABELS
        assert m["genre"] == m["genres"][0] == m["top"][0]["genre"] and m["label"].startswith(m["genre"])


def test_live_prediction_matches_predict_signal(client):
    """The live answer is the model's prediction of the last 3 s, resampled from the browser's rate."""
    sr = 8000
    y = tone(5.0, sr=sr, seed=3).astype("<f4")
    with client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps({"sample_rate": sr}))
        ws.receive_json()
        ws.send_bytes(y[:sr].tobytes())  # the ring buffer wraps: 1 s, then 4 s in two pieces
        ws.send_bytes(y[sr : 3 * sr].tobytes())
        ws.send_bytes(y[3 * sr :].tobytes())
        ws.send_text(json.dumps({"type": "stop"}))
        messages = []
        with pytest.raises(Exception):
            while True:
                messages.append(ws.receive_json())
    expected = client.app.state.serve.predictor.predict_signal(y[-3 * sr :], sr).probabilities
    assert messages[-1]["t"] == pytest.approx(5.0)
    assert messages[-1]["probabilities"] == pytest.approx({g: float(p) for g, p in expected.items()}, abs=1e-6)


def test_live_rejects_partial_samples(client):
    with client.websocket_connect(WS) as ws:
        ws.send_text('{"sample_rate": 16000}')
        ws.receive_json()
        ws.send_bytes(b"\0" * 7)
        assert ws.receive_json()["error"] == "bad audio chunk"


def test_command_line_options_map_to_settings():
    import argparse

    from genrekit.serve import add_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert settings_from_args(parser.parse_args([])) == {"log_level": "info"}  # ServeConfig's defaults
    args = parser.parse_args(
        [
            "--port",
            "9000",
            "--workers",
            "3",
            "--max-queue",
            "0",
            "--allowed-host",
            "music.lan",
            "--trusted-origin",
            "https://x.org",
            "--max-upload-mb",
            "5",
        ]
    )
    settings = settings_from_args(args)
    cfg = ServeConfig(**{k: v for k, v in settings.items() if k != "log_level"})
    assert (cfg.port, cfg.workers, cfg.queue_size, cfg.max_upload_mb) == (9000, 3, 0, 5.0)
    assert "music.lan" in cfg.hosts and "localhost" in cfg.hosts and cfg.trusted_origins == ("https://x.org",)
    assert ServeConfig(workers=3).queue_size == 96


def test_kaggle_png_upload_is_read_as_the_command_line_reads_it(gtzan_root):
    """A GTZAN spectrogram .png goes through predict_file as on the command line (bundled gknet, which
    reads images; the default musicnn model refuses them with a clear 422)."""
    from genrekit.predictor import Predictor

    png = gtzan_root / "images_original" / "blues" / "blues00000.png"
    if not png.exists():
        pytest.skip(f"no {png}")
    with TestClient(create_app(config(warmup=False), predictor=Predictor.load()), base_url=BASE) as c:
        r = c.post("/api/predict", files={"file": ("blues00000.png", png.read_bytes(), "image/png")})
    assert r.status_code == 422 and "kaggle-image" in r.json()["detail"], r.text
    predictor = Predictor.load("gknet-gtzan")
    expected = predictor.predict_file(png)
    with TestClient(
        create_app(config(warmup=False, max_upload_mb=5, max_duration_s=60), predictor=predictor), base_url=BASE
    ) as c:
        r = c.post("/api/predict", files={"file": ("blues00000.png", png.read_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["duration_s"] == pytest.approx(expected.duration_s)
    assert r.json()["probabilities"] == {g: float(p) for g, p in expected.probabilities.items()}


def test_silence_gets_no_music_not_a_genre(client):
    silence = encode(np.zeros(10 * SR, np.float32))
    r = client.post("/api/predict", files={"file": ("quiet.wav", silence, "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == ANSWER_FIELDS
    assert "silence" in body["no_music"] and body["confident"] is False and body["label"] == "no music detected"
    assert body["genre"] is None and body["probability"] is None and body["probabilities"] is None
    assert body["genres"] == [] and body["top"] == [] and body["timeline"] == [] and body["windows"] == []
    assert body["duration_s"] == pytest.approx(10.0, abs=0.01)


def test_live_silence_gets_no_music_not_a_genre(client):
    sr = 16000
    with client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps({"sample_rate": sr}))
        ws.receive_json()
        ws.send_bytes(np.zeros(3 * sr, "<f4").tobytes())
        ws.send_text(json.dumps({"type": "stop"}))
        messages = []
        with pytest.raises(Exception):
            while True:
                messages.append(ws.receive_json())
    assert messages
    for m in messages:
        assert set(m) == LIVE_FIELDS and "silence" in m["no_music"] and m["label"] == "no music detected"
        assert m["genre"] is None and m["genres"] == [] and m["top"] == [] and m["probabilities"] is None


def test_music_is_reported_as_music(client, wav5):
    body = client.post("/api/predict", files={"file": ("tone.wav", wav5, "audio/wav")}).json()
    assert body["no_music"] is None and body["genre"] == body["genres"][0] and body["top"]


def test_the_bundled_model_answers_styles(gtzan_root, upload_dir):
    """The musicnn MSD tags come in every answer of a model that computes them, most probable first."""
    from genrekit.schema import DEFAULT_STYLE_THRESHOLD

    clip = (gtzan_root / "genres_original" / "jazz" / "jazz.00000.ogg").read_bytes()
    app = create_app(config(max_upload_mb=5, max_duration_s=40, tmp_dir=str(upload_dir)))
    with TestClient(app, base_url=BASE) as c:
        body = c.post("/api/predict", files={"file": ("jazz.ogg", clip, "audio/ogg")}).json()
    assert set(body) == ANSWER_FIELDS and body["styles"]
    probs = [s["probability"] for s in body["styles"]]
    assert probs == sorted(probs, reverse=True) and min(probs) >= DEFAULT_STYLE_THRESHOLD
    assert "jazz" in {s["style"] for s in body["styles"]}
