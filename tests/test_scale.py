"""Tagging on Ray Data: a real cluster on this machine (a head and a worker node) and a local run,
one row per file (errors included), a rerun that skips everything, manifests, option errors."""
from __future__ import annotations

import csv
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import labelled_clip, random_checkpoint, write_audio

from genrekit.cli import main
from genrekit.errors import GenrekitError
from genrekit.scale import list_items, row_key

SRC = Path(__file__).resolve().parents[1] / "src"
RAY = shutil.which("ray", path=os.path.dirname(sys.executable))
needs_ray = pytest.mark.skipif(RAY is None, reason='ray is not installed (pip install -e ".[scale]")')


def _env() -> dict:
    """A token of its own for each cluster (nothing read from or written to ~/.ray), genrekit importable on every node."""
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """A folder of 6 clips, a file that is not audio and a broken link; a manifest; a random model."""
    root = tmp_path_factory.mktemp("scale")
    music = root / "music"
    for i in range(6):
        write_audio(music / ("sub" if i == 5 else "") / f"t{i}.wav", labelled_clip(("bass", "hiss", "treble")[i % 3], i, 2.0))
    write_audio(music / "x.wav", labelled_clip("bass", 9, 2.0))
    os.rename(os.fsencode(music / "x.wav"), os.fsencode(music) + b"/caf\xe9.wav")  # a name that is not UTF-8
    (music / "bad.wav").write_bytes(b"not audio")
    os.symlink(root / "gone.wav", music / "broken.wav")
    (root / "list.txt").write_text("# a manifest\nmusic/t0.wav\n\nmusic/missing.wav\n")
    expected = sorted(row_key(p) for p in [*music.rglob("*.wav"), root / "music" / "missing.wav"])
    return root, random_checkpoint(root / "random.pt"), expected


def _predict(argv: list[str], env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "genrekit.cli", "predict", *argv, "--no-progress"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _check_output(out: Path, expected: list[str]) -> None:
    import pyarrow.parquet as pq

    with open(out / "tags.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == expected
    errors = {Path(r["path"]).name for r in rows if r["error"]}
    assert errors == {"bad.wav", "broken.wav", "missing.wav"}
    assert all(r["genre"] in ("a", "b", "c") and r["top"] for r in rows if not r["error"])
    parts = sorted(out.glob("part-*.parquet"))
    assert sorted(p for f in parts for p in pq.read_table(f)["path"].to_pylist()) == expected
    assert not list(out.glob(".*.tmp"))


@pytest.fixture(scope="module")
def cluster():
    """A head and a worker node started with the ray command (one core each), stopped at the end."""
    env, port = _env(), _free_port()
    temp = tempfile.mkdtemp(prefix="gkray")  # short: Ray's socket paths live under it
    common = ["--block", "--num-cpus=1", "--node-ip-address=127.0.0.1", f"--object-store-memory={100 * 2**20}",
              "--disable-usage-stats"]  # fmt: skip
    nodes: list[subprocess.Popen] = []

    def start(args: list[str]) -> None:
        log = open(Path(temp) / f"node{len(nodes)}.log", "w")
        nodes.append(subprocess.Popen([RAY, "start", *args, *common], env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))  # fmt: skip

    try:
        start(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"])
        address = f"127.0.0.1:{port}"
        status = [RAY, "status", f"--address={address}"]
        deadline = time.monotonic() + 90
        started = False
        while time.monotonic() < deadline:
            if not started and subprocess.run(status, env=env, capture_output=True, timeout=30).returncode == 0:
                start([f"--address={address}"])
                started = True
            if started:
                text = subprocess.run(status, env=env, capture_output=True, text=True, timeout=30).stdout
                if text.count("node_") >= 2 and "2.0 CPU" in text:
                    break
            assert all(n.poll() is None for n in nodes), (Path(temp) / "node0.log").read_text()[-2000:]
            time.sleep(1)
        else:
            pytest.fail(f"the Ray cluster did not start in 90 s; logs in {temp}")
        yield address, env
    finally:
        for n in nodes:  # each node's processes are in its own session: end them, and only them (no drain)
            try:
                os.killpg(n.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            n.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


@needs_ray
@pytest.mark.slow
def test_cluster_run_one_row_per_file_then_rerun_skips(cluster, library, tmp_path):
    address, env = cluster
    root, model, expected = library
    out = tmp_path / "out"
    argv = [str(root / "music"), str(root / "list.txt"), "--engine", "ray", "--address", address, "--model", str(model),
            "-o", str(out), "--batch-size", "2"]  # fmt: skip
    r = _predict(argv, env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"done 7, skipped 0 (already in {out}), failed 3" in r.stderr
    _check_output(out, expected)
    again = _predict(argv, env)
    assert again.returncode == 0 and "done 0, skipped 10" in again.stderr, again.stderr[-3000:]
    _check_output(out, expected)


@needs_ray
@pytest.mark.slow
def test_local_run_resumes_after_a_lost_partition(library, tmp_path):
    root, model, expected = library
    out, env = tmp_path / "out", _env()
    argv = [str(root / "music"), str(root / "list.txt"), "--engine", "ray", "--model", str(model), "-o", str(out),
            "--batch-size", "3"]
    r = _predict(argv, env)
    assert r.returncode == 0, r.stderr[-3000:]
    _check_output(out, expected)
    first = sorted(out.glob("part-*.parquet"))[0]
    lost = len(__import__("pyarrow.parquet").parquet.read_table(first))
    first.unlink()
    (out / ".part-killed.parquet.tmp").write_bytes(b"half")  # what a killed run leaves
    again = _predict(argv, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "skipped" in again.stderr and f"skipped {10 - lost} " in again.stderr
    _check_output(out, expected)


def test_manifest_items_and_errors(library):
    root, _, _ = library
    items = list_items([root / "list.txt", root / "music" / "t0.wav"])
    assert [(i.path.name, i.problem is None) for i in items] == [("t0.wav", True), ("missing.wav", False)]
    assert "list.txt" in items[1].problem


@pytest.mark.parametrize("extra, message", [
    ([], "give it with --output"), (["-o", "x", "--format", "json"], "leave out --format"),
])  # fmt: skip
def test_ray_options_are_checked(extra, message, library, capsys):
    root, _, _ = library
    with pytest.raises(SystemExit):
        main(["predict", str(root / "music"), "--engine", "ray", *extra])
    assert message in capsys.readouterr().err


def test_address_needs_ray_engine(library, capsys):
    root, _, _ = library
    with pytest.raises(SystemExit):
        main(["predict", str(root / "music"), "--address", "auto"])
    assert "--address is for --engine ray" in capsys.readouterr().err


def test_output_must_be_a_folder(tmp_path, library):
    pytest.importorskip("ray")
    from genrekit.scale import run_ray

    (tmp_path / "f.csv").write_text("")
    with pytest.raises(GenrekitError, match="is a file"):
        run_ray([library[0] / "music"], output_dir=tmp_path / "f.csv")
