"""Hostile inputs: header bombs, absurd samples, truncated files, and what decoding does with them.

Every input here is a few kB generated in the test; the standing benchmark
(``benchmarks/hostile.py``) runs a larger corpus through the CLI and the server.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import noise_band, write_audio

from genrekit.audio import MAX_CHANNELS, MAX_RATE, AudioError, DecodeReport, load_audio, stream_audio


def wav_bytes(
    *, channels: int, rate: int, data: bytes, declared: int | None = None, bits: int = 16, fmt: int = 1
) -> bytes:
    """A WAV whose header declares ``channels``, ``rate`` and ``declared`` data bytes, holding ``data``."""
    declared = len(data) if declared is None else declared
    block = channels * bits // 8
    fmt_chunk = struct.pack("<IHHIIHH", 16, fmt, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + declared)
        + b"WAVEfmt "
        + fmt_chunk
        + b"data"
        + struct.pack("<I", declared)
        + data
    )


def _decode_peak_mb(path) -> tuple[str, float]:
    """Decode ``path`` in a fresh interpreter: (``"ok"`` or the error's reason, its peak RSS in MB)."""
    code = (
        "import sys\n"
        "from genrekit.audio import load_audio, AudioError\n"
        "try:\n    load_audio(sys.argv[1]); out = 'ok'\n"
        "except AudioError as e:\n    out = e.reason\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(out); print(int(hwm) / 1024)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    outcome, peak = run.stdout.strip().rsplit("\n", 1)
    return outcome, float(peak)


# ----------------------------------------------------------------------------- header bombs


def test_many_channels_at_a_high_rate_decode_in_bounded_memory(tmp_path):
    """A 40 kB WAV declaring 64 channels at 192 kHz and 4 GB of data once took 1.5 GB to read."""
    path = tmp_path / "bomb.wav"
    path.write_bytes(wav_bytes(channels=64, rate=192_000, data=b"\1\0" * 20_000, declared=0xFFFF_FF00))
    outcome, peak_mb = _decode_peak_mb(path)
    assert outcome == "ok"
    assert peak_mb < 400


@pytest.mark.parametrize(
    "channels,rate,what",
    [
        (MAX_CHANNELS + 1, 44100, "channels"),
        (1024, 192_000, "channels"),
        (2, 655_360, "sample rate"),
        (2, MAX_RATE + 1, "sample rate"),
        (1, 1, "sample rate"),
        (1, 999, "sample rate"),
    ],
)
def test_header_declaring_what_no_music_has_is_refused(tmp_path, channels, rate, what):
    path = tmp_path / "bomb.wav"
    path.write_bytes(wav_bytes(channels=channels, rate=rate, data=b"\0" * 4096 * channels))
    with pytest.raises(AudioError, match=what) as info:
        load_audio(path)
    assert "not a music file" in info.value.reason and "\n" not in str(info.value)


def test_a_long_header_at_a_tiny_rate_is_refused_before_decoding(tmp_path):
    """A small file holding long audio at a low rate (1000 samples at 1 Hz once took 12-21 s of
    analysis before their 422): its header's duration is refused before a sample is decoded."""
    path = tmp_path / "slow.wav"
    path.write_bytes(wav_bytes(channels=1, rate=1000, data=b"\x80" * 601_000, bits=8))
    with pytest.raises(AudioError, match="header says it lasts"):
        next(stream_audio(path, max_duration=600))


# ----------------------------------------------------------------------------- absurd samples


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e30, -5e3])
def test_non_finite_or_absurd_samples_are_not_audio(tmp_path, value):
    y = np.zeros(22050, np.float32)
    y[1000:1010] = value
    path = tmp_path / "odd.wav"
    path.write_bytes(wav_bytes(channels=1, rate=22050, data=y.tobytes(), bits=32, fmt=3))
    with pytest.raises(AudioError, match="not audio"):
        load_audio(path)


def test_loud_but_plausible_float_samples_are_audio(tmp_path):
    y = (np.sin(np.linspace(0, 2000, 22050)) * 4).astype(np.float32)  # 12 dB over full scale: a hot mix
    path = tmp_path / "hot.wav"
    path.write_bytes(wav_bytes(channels=1, rate=22050, data=y.tobytes(), bits=32, fmt=3))
    assert np.abs(load_audio(path)).max() == pytest.approx(4, rel=1e-3)


# ----------------------------------------------------------------------------- truncated files


def _faststart_m4a(path, y: np.ndarray, sr: int = 22050):
    """An M4A with its index first (as players and shops write them), so that a cut keeps it."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("aac", rate=sr, layout="mono")
        stream.codec_context.open()
        for pts in range(0, len(y) - 1024, 1024):
            frame = av.AudioFrame.from_ndarray(y[None, pts : pts + 1024].copy(), format="flt", layout="mono")
            frame.sample_rate, frame.pts = sr, pts
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize("ext", ["flac", "m4a"])
@pytest.mark.parametrize("cut", [0.1, 0.5])
def test_truncated_flac_and_m4a_give_what_decodes_flagged(tmp_path, ext, cut):
    y = noise_band(50, 6000, 10.0, amp=0.2, seed=21)
    full = tmp_path / f"full.{ext}"
    write_audio(full, y) if ext == "flac" else _faststart_m4a(full, y)
    data = full.read_bytes()
    part = tmp_path / f"cut.{ext}"
    part.write_bytes(data[: int(len(data) * cut)])
    whole_report, part_report = DecodeReport(), DecodeReport()
    whole = np.concatenate(list(stream_audio(full, report=whole_report)))
    head = np.concatenate(list(stream_audio(part, report=part_report)))
    assert not whole_report.truncated
    assert part_report.truncated
    assert 0.4 * cut * len(whole) < len(head) < cut * len(whole) * 1.1 + 4096
    assert part_report.decoded_s == pytest.approx(len(head) / 22050)
    assert part_report.declared_s == pytest.approx(10.0, abs=0.2)
    edge = 4096  # a lossy decoder's last frame before the cut may differ
    np.testing.assert_allclose(head[: len(head) - edge], whole[: len(head) - edge], atol=1e-4)


def test_m4a_cut_before_its_index_says_so(tmp_path):
    full = write_audio(tmp_path / "full.m4a", noise_band(50, 6000, 3.0, seed=22))  # index written last
    part = tmp_path / "cut.m4a"
    part.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with pytest.raises(AudioError, match="cut short before its index"):
        load_audio(part)


def test_whole_file_is_not_flagged_truncated(tmp_path):
    report = DecodeReport()
    list(stream_audio(write_audio(tmp_path / "a.wav", noise_band(50, 6000, 2.0, seed=23)), report=report))
    assert (report.truncated, report.declared_s) == (False, pytest.approx(2.0))
    assert json.loads(json.dumps(report.__dict__)) == report.__dict__


# ----------------------------------------------------------------------------- the server: fair admission


LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
MAX_S = 20.0


class StubPredictor:
    """The Predictor contract, answering a flat prediction after one turn at the model."""

    labels, info, sample_rate = LABELS, {"name": "stub.pt"}, 22050

    def __init__(self):
        self.calls = []

    def _prediction(self, name):
        from genrekit.predictor import Prediction, Segment

        probs = dict(zip(LABELS, np.full(10, 0.1)))
        return Prediction(name, 10.0, probs, [Segment(0.0, 3.0, probs)], "stub")

    def predict_file(self, path, *, max_seconds=None, pace=None, styles=False):
        self.calls.append(path)
        for _ in (pace or iter)([np.zeros(1, np.float32)]):
            return self._prediction(str(path))

    def predict_signal(self, y, sr, **_):
        return self._prediction("signal")


def _stub_client(stub=None, **overrides):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from genrekit.serve import ServeConfig, create_app

    settings = ServeConfig(warmup=False, max_duration_s=MAX_S, max_upload_mb=1.0, workers=2, **overrides)
    return TestClient(create_app(settings, predictor=stub or StubPredictor()), base_url="http://localhost")


def test_a_long_header_is_refused_before_it_takes_a_place(tmp_path):
    """A WAV declaring more than the limit gets 422 from its header: the model never sees it."""
    stub = StubPredictor()
    long_wav = wav_bytes(channels=1, rate=1000, data=b"\x80" * int((MAX_S + 5) * 1000), bits=8)
    with _stub_client(stub) as c:
        r = c.post("/api/predict", files={"file": ("long.wav", long_wav)})
        assert r.status_code == 422 and r.json()["error"] == "audio too long"
        assert stub.calls == []
        assert c.app.state.serve.pool.admitted == 0


def test_per_client_limits_keep_a_place_for_others():
    """One client (here told apart by the proxy header) holds at most its share of the queue."""
    from genrekit.serve.errors import ApiError
    from genrekit.serve.jobs import JobPool

    pool = JobPool(workers=1, max_queue=10, max_wait_s=100.0, max_uploads=10, client_uploads=2, client_jobs=2)
    try:
        with pool.admission("attacker", 10), pool.admission("attacker", 10):
            with pytest.raises(ApiError, match="of your songs") as refused, pool.admission("attacker", 10):
                pass
            assert refused.value.status == 503
            with pool.admission("other", 10):
                assert pool.admitted == 3
        with pool.upload("attacker"), pool.upload("attacker"):
            with pytest.raises(ApiError, match="you are sending 2 files"), pool.upload("attacker"):
                pass
            with pool.upload("other"):
                assert pool.uploading == 3
    finally:
        pool.close()


def test_a_flood_or_a_long_song_costs_another_client_its_share_only():
    """The wait a new song is told counts at most its own cost per other client's work."""
    from genrekit.serve.jobs import JobPool

    pool = JobPool(workers=2, max_queue=100, max_wait_s=1.0, max_uploads=10, client_jobs=3)
    try:
        pool.seconds_per_audio_s = 0.01  # 9 s of compute for a 15-min song
        pool.max_wait_s = 100.0  # the attacker's songs get in
        with pool.admission("a", 900), pool.admission("a", 900), pool.admission("a", 900):
            assert pool.expected_wait_s(30 * 0.01, "b") == pytest.approx(0.3 / 2)
            assert pool.expected_wait_s(30 * 0.01, "a") == pytest.approx(27 / 2)
            pool.max_wait_s = 1.0
            with pool.admission("b", 30):  # admitted at once
                pass
    finally:
        pool.close()


def test_failed_jobs_do_not_inflate_the_cost_and_an_idle_worker_admits():
    import asyncio

    from genrekit.serve.jobs import JobPool

    pool = JobPool(workers=2, max_queue=10, max_wait_s=0.1, max_uploads=10)

    def fail(blocks):
        for _ in blocks:
            raise AudioError("x.wav", "corrupt")

    async def main():
        with pool.admission("a", 600) as job, pytest.raises(AudioError):
            await pool.run(lambda: fail(pool.paced(iter([1, 2]), job)), job=job)
        return pool.seconds_per_audio_s

    try:
        assert asyncio.run(main()) == 0.0
        pool.seconds_per_audio_s = 100.0  # however slow the recent songs were
        with pool.admission("a", 600):  # one worker is idle: admitted
            assert pool.expected_wait_s(1.0, "b") == 0.0
    finally:
        pool.close()


def test_turns_rotate_between_clients():
    """Chunks waiting for a turn are served client by client, not first come first served."""
    import threading

    from genrekit.serve.jobs import Turns

    turns, order, started = Turns(1), [], []
    gate = threading.Event()

    def hold():
        with turns.turn("a"):
            gate.wait(30)

    def chunk(client):
        started.append(client)
        with turns.turn(client):
            order.append(client)

    holder = threading.Thread(target=hold)
    holder.start()
    waiting = []
    for client in ["a", "a", "a", "b"]:
        t = threading.Thread(target=chunk, args=(client,))
        t.start()
        waiting.append(t)
        while len(started) < len(waiting):  # queued in this order
            pass
        threading.Event().wait(0.05)
    gate.set()
    for t in [holder, *waiting]:
        t.join(30)
    assert order == ["a", "b", "a", "a"]


def test_a_long_job_hands_its_turn_over_between_chunks():
    import threading

    from genrekit.serve.jobs import Turns

    turns, order = Turns(1), []
    at_turn = threading.Event()

    def long_job():
        with turns.turn("a"):
            order.append("a1")
            at_turn.set()
            for _ in range(3000):  # until b waits for a turn
                if turns._waiting:
                    break
                threading.Event().wait(0.01)
            turns.handover("a")  # b gets the turn, then a again
            order.append("a2")

    def short_job():
        at_turn.wait(30)
        with turns.turn("b"):
            order.append("b")

    threads = [threading.Thread(target=long_job), threading.Thread(target=short_job)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert order == ["a1", "b", "a2"]
    assert turns.handover("a") == 0.0  # no one waiting: the turn is kept


# ----------------------------------------------------------------------------- the server: answers


def test_every_answer_has_the_security_headers():
    from genrekit.serve.guards import CONTENT_SECURITY_POLICY

    with _stub_client() as c:
        for r in (c.get("/"), c.get("/docs"), c.get("/api/models"), c.get("/nowhere"), c.post("/api/predict")):
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


def test_the_page_and_docs_hold_no_inline_script_or_style():
    import re
    from pathlib import Path

    static = Path(__import__("genrekit.serve.app", fromlist=["STATIC_DIR"]).STATIC_DIR)
    with _stub_client() as c:
        pages = {"/": c.get("/").text, "/docs": c.get("/docs").text}
    for html in [*pages.values(), *(p.read_text() for p in static.glob("*.html"))]:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
        assert "<style" not in html and not re.search(r"\sstyle=", html) and not re.search(r"\son[a-z]+=", html)


@pytest.mark.slow
def test_chromium_sees_no_csp_violation_on_the_page_and_docs(tmp_path):
    """The page (an upload, its charts and player) and /docs under the policy, in real Chromium."""
    import os
    from pathlib import Path

    chromium = Path(os.environ.get("GENREKIT_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        pytest.skip(f"no Chromium at {chromium}")
    sync_api = pytest.importorskip("playwright.sync_api")
    import soundfile as sf

    from genrekit.serve import ServeConfig, create_app
    from genrekit.serve.server import serving

    song = tmp_path / "song.wav"
    sf.write(song, noise_band(50, 6000, 8.0, amp=0.3, seed=30), 22050)
    config = ServeConfig(host="127.0.0.1", port=0, workers=1)
    with serving(create_app(config), config) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        problems = []
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: problems.append(str(e)) if "Content Security Policy" in str(e) else None)
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => "
            "console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
        )
        page.goto(url + "/")
        page.set_input_files("#file-input", str(song))
        page.wait_for_selector("#results:not([hidden])", timeout=60_000)
        page.wait_for_timeout(500)  # the charts draw after the results show
        page.goto(url + "/docs")
        page.wait_for_selector(".opblock-summary-path[data-path='/api/predict']", timeout=30_000)
        page.wait_for_timeout(500)
        browser.close()
    assert problems == [], "\n".join(problems)


# ----------------------------------------------------------------------------- training input


@pytest.mark.parametrize(
    "protocol,counts,minimum",
    [
        ("random", {"bass": 1, "treble": 5}, 3),
        ("random", {"bass": 5, "treble": 2}, 3),
        ("kfold", {"bass": 4, "treble": 9}, 5),
        ("none", {"bass": 1, "treble": 1}, 2),
    ],
)
def test_too_few_tracks_per_class_is_one_error_naming_the_class(protocol, counts, minimum):
    from genrekit.datasets import DatasetError
    from genrekit.splits import make_split

    labels = [g for g, n in counts.items() for _ in range(n)]
    smallest = min(counts, key=counts.get)
    with pytest.raises(DatasetError) as info:
        make_split(protocol, ids=[f"t{i}" for i in range(len(labels))], labels=labels)
    message = str(info.value)
    assert (
        f"class '{smallest}' has {counts[smallest]} track" in message
        and f"at least {minimum} tracks per class" in message
    )


def test_a_random_split_too_small_for_its_classes_says_so():
    from genrekit.datasets import DatasetError
    from genrekit.splits import make_split

    labels = [f"g{k}" for k in range(10) for _ in range(3)]  # 6 test tracks for 10 classes
    with pytest.raises(DatasetError, match="cannot be split with a test share of 0.2"):
        make_split("random", ids=[f"t{i}" for i in range(30)], labels=labels)


def test_train_on_one_file_per_class_is_one_clear_error(tmp_path):
    import os
    from pathlib import Path

    import soundfile as sf

    for genre, f in (("bass", 110), ("treble", 1760)):
        (tmp_path / genre).mkdir()
        t = np.arange(22050 * 4) / 22050
        sf.write(tmp_path / genre / "a.wav", (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), 22050)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "genrekit.cli",
            "train",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "class 'bass' has 1 track(s)" in run.stderr and "at least 3 tracks per class" in run.stderr


# ----------------------------------------------------------------------------- Ray: keys and processes


def test_ray_keys_are_injective_for_any_byte_string():
    import os

    from genrekit.scale import row_key

    names = [b"caf\xe9.wav", b"caf\\xe9.wav", b"caf\\\\xe9.wav", b"a\\b.wav", b"a\\\\b.wav", "café.wav".encode()]
    keys = [row_key(os.fsdecode(n)) for n in names]
    assert len(set(keys)) == len(names)
    assert all(k.encode("utf-8") for k in keys)


_DRIVER = """
import subprocess, sys, time
from genrekit.reaper import Reaper
r = Reaper()
# a child that ignores SIGTERM, under a child of its own (as Ray's agents run under the raylet)
code = "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
code += "subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)']); time.sleep(600)"
subprocess.Popen([sys.executable, "-c", code])
time.sleep(1.0)
r.watch_children()
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper reads /proc")
def test_processes_of_a_killed_driver_are_ended():
    import os
    import signal
    import time

    from genrekit.reaper import descendants

    env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1] / "src")}
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER], stdout=subprocess.PIPE, text=True, env=env)
    assert driver.stdout.readline().strip() == "ready"
    under = [p for p in descendants(driver.pid)]
    watched = [p for p in under if "time.sleep(600)" in open(f"/proc/{p}/cmdline").read()]
    assert len(watched) == 2
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(30)
    deadline = time.monotonic() + 30
    while any(
        os.path.exists(f"/proc/{p}") and "Z" != open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0]
        for p in watched
    ):
        assert time.monotonic() < deadline, "the driver's processes outlived it"
        time.sleep(0.05)


def test_a_run_that_ends_leaves_others_alone():
    import time

    from genrekit.reaper import Reaper

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Reaper() as reaper:
            reaper.watch_children()
        time.sleep(0.5)
        assert other.poll() is None  # ended on its own terms: the watcher killed nothing
    finally:
        other.kill()
        other.wait()


def test_a_wav_of_zero_bit_samples_is_one_clear_error(tmp_path):
    """libsndfile refuses it and PyAV opens a stream without a rate: no AttributeError."""
    path = tmp_path / "zero-bits.wav"
    path.write_bytes(wav_bytes(channels=1, rate=22050, data=b"\0" * 8192, bits=0))
    with pytest.raises(AudioError):
        load_audio(path)
