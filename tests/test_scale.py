"""Tagging on Ray Data: a real cluster on this machine (a head and a worker node) and a local run,
one row per file (errors included), a rerun that skips everything, manifests, option errors.

Every Ray process, the driver included, runs in a network namespace of the test's own whose only
interface is ``lo`` (tests/loopback.py): Ray would otherwise use the machine's address even when
told 127.0.0.1, and its head probes cloud metadata servers when it starts. Where no namespace can
be made (not root and no user namespaces) the Ray runs are skipped, saying why.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import labelled_clip, random_checkpoint, write_audio
from loopback import LoopbackNamespace, LoopbackUnavailable, only_loopback

from genrekit.cli import TRAIN_MODULES, main
from genrekit.errors import GenrekitError
from genrekit.scale import list_items, row_key

SRC = Path(__file__).resolve().parents[1] / "src"
RAY = shutil.which("ray", path=os.path.dirname(sys.executable))
needs_ray = pytest.mark.skipif(RAY is None, reason='ray is not installed (pip install -e ".[scale]")')
RUN_TIMEOUT_S = 240  # one genrekit predict
CLUSTER_TIMEOUT_S = 90  # the head and the worker up
HEAD_PORT = 6379  # free: the namespace is new
# a sitecustomize that makes the training extras' modules unimportable, as without `pip install genrekit[train]`
BLOCK_TRAIN_MODULES = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {TRAIN_MODULES!r}:
            raise ModuleNotFoundError(f'blocked {{name}}', name=name.split('.')[0])
sys.meta_path.insert(0, Block())
"""


def _env(temp: str, *paths: str | os.PathLike) -> dict:
    """A token of its own for each cluster (nothing read from or written to ~/.ray), Ray's files under
    ``temp`` (not /tmp/ray), genrekit (and ``paths``) importable on every node."""
    path = os.pathsep.join([*map(str, paths), str(SRC), os.environ.get("PYTHONPATH", "")])
    return {
        **os.environ,
        "PYTHONPATH": path,
        "RAY_TMPDIR": temp,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def _namespace() -> LoopbackNamespace:
    """A new loopback-only network namespace, entered (the caller closes it); a skip where none can be made."""
    try:
        return LoopbackNamespace().__enter__()
    except LoopbackUnavailable as exc:
        pytest.skip(f"Ray runs only in a loopback-only network namespace, and {exc}")


@pytest.fixture
def ray_temp():
    """A short folder for Ray's files (its socket paths live under it), removed at the end."""
    temp = tempfile.mkdtemp(prefix="gkray")
    yield temp
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """A folder of 6 clips, a file that is not audio and a broken link; a manifest; a random model."""
    root = tmp_path_factory.mktemp("scale")
    music = root / "music"
    for i in range(6):
        clip = labelled_clip(("bass", "hiss", "treble")[i % 3], i, 2.0)
        write_audio(music / ("sub" if i == 5 else "") / f"t{i}.wav", clip)
    write_audio(music / "x.wav", labelled_clip("bass", 9, 2.0))
    os.rename(os.fsencode(music / "x.wav"), os.fsencode(music) + b"/caf\xe9.wav")  # a name that is not UTF-8
    (music / "bad.wav").write_bytes(b"not audio")
    os.symlink(root / "gone.wav", music / "broken.wav")
    (root / "list.txt").write_text("# a manifest\nmusic/t0.wav\n\nmusic/missing.wav\n")
    expected = sorted(row_key(p) for p in [*music.rglob("*.wav"), root / "music" / "missing.wav"])
    return root, random_checkpoint(root / "random.pt"), expected


def _predict(ns: LoopbackNamespace, argv: list[str], env: dict) -> subprocess.CompletedProcess:
    """``genrekit predict ARGV`` run inside ``ns``."""
    cmd = ns.wrap([sys.executable, "-m", "genrekit.cli", "predict", *argv, "--no-progress"])
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


def _check_output(out: Path, expected: list[str], labels: set[str]) -> None:
    import pyarrow.parquet as pq

    with open(out / "tags.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == expected
    errors = {Path(r["path"]).name for r in rows if r["error"]}
    assert errors == {"bad.wav", "broken.wav", "missing.wav"}
    assert all(r["genre"] in labels and r["top"] for r in rows if not r["error"])
    parts = sorted(out.glob("part-*.parquet"))
    assert sorted(p for f in parts for p in pq.read_table(f)["path"].to_pylist()) == expected
    assert not list(out.glob(".*.tmp"))


def test_the_namespace_has_only_loopback_and_goes_away():
    ns = _namespace()
    name = ns.name
    try:
        seen = subprocess.run(
            ns.wrap([sys.executable, "-c", "import loopback; print(loopback.only_loopback())"]),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).parent,
            check=False,
        )
        assert seen.stdout.strip() == "True", seen.stderr
        sleeper = subprocess.Popen(ns.wrap(["sleep", "600"]))
        deadline = time.monotonic() + 30
        while sleeper.pid not in ns.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sleeper.pid in ns.pids()
    finally:
        ns.close()
    assert sleeper.wait(timeout=30) == -signal.SIGKILL  # what is left inside is ended
    assert not ns.pids() and not ns.prefix
    if not only_loopback():  # else we are in a namespace ourselves, and see no /run/netns
        assert not os.path.exists(f"/run/netns/{name}")


@pytest.fixture(scope="module")
def cluster():
    """A head and a worker node started with the ray command (one core each) in a namespace of their
    own; at the end every process in it is killed and the namespace removed."""
    ns, temp = _namespace(), tempfile.mkdtemp(prefix="gkray")  # short: Ray's socket paths live under it
    env = _env(temp)
    common = [
        "--block",
        "--num-cpus=1",
        "--node-ip-address=127.0.0.1",
        f"--object-store-memory={100 * 2**20}",
        "--disable-usage-stats",
    ]
    nodes: list[subprocess.Popen] = []

    def start(args: list[str]) -> None:
        log = open(Path(temp) / f"node{len(nodes)}.log", "w")  # noqa: SIM115 (the node's, for its life)
        nodes.append(
            subprocess.Popen(
                ns.wrap([RAY, "start", *args, *common]),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        start(["--head", f"--port={HEAD_PORT}", "--include-dashboard=false"])
        address = f"127.0.0.1:{HEAD_PORT}"
        status = ns.wrap([RAY, "status", f"--address={address}"])
        deadline = time.monotonic() + CLUSTER_TIMEOUT_S
        started = False
        while time.monotonic() < deadline:
            if (
                not started
                and subprocess.run(status, env=env, capture_output=True, timeout=30, check=False).returncode == 0
            ):
                start([f"--address={address}"])
                started = True
            if started:
                text = subprocess.run(status, env=env, capture_output=True, text=True, timeout=30, check=False).stdout
                if text.count("node_") >= 2 and "2.0 CPU" in text:
                    break
            assert all(n.poll() is None for n in nodes), (Path(temp) / "node0.log").read_text()[-2000:]
            time.sleep(0.5)
        else:
            pytest.fail(f"the Ray cluster did not start in {CLUSTER_TIMEOUT_S} s")
        yield ns, address, env
    finally:
        for n in nodes:  # each node's processes are in its own session: end them (no drain), then what is left
            try:
                os.killpg(n.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            n.wait(timeout=30)
        ns.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
@needs_ray
def test_cluster_run_one_row_per_file_then_reruns_do_what_is_not_written(cluster, library, tmp_path):
    import pyarrow.parquet as pq

    ns, address, env = cluster
    root, model, expected = library
    out = tmp_path / "out"
    argv = [
        str(root / "music"),
        str(root / "list.txt"),
        "--engine",
        "ray",
        "--address",
        address,
        "--model",
        str(model),
        "-o",
        str(out),
        "--batch-size",
        "2",
    ]
    r = _predict(ns, argv, env)
    assert r.returncode == 1, r.stderr[-3000:]  # 1: some files failed
    assert f"done 7, skipped 0 (already in {out}), failed 3" in r.stderr
    _check_output(out, expected, {"a", "b", "c"})
    again = _predict(ns, argv, env)
    assert again.returncode == 0 and "done 0, skipped 10" in again.stderr, again.stderr[-3000:]
    _check_output(out, expected, {"a", "b", "c"})
    first = min(out.glob("part-*.parquet"))
    lost = pq.read_metadata(first).num_rows
    first.unlink()
    (out / ".part-killed.parquet.tmp").write_bytes(b"half")  # what a killed run leaves
    resumed = _predict(ns, argv, env)
    assert resumed.returncode in (0, 1), resumed.stderr[-3000:]
    counts = re.search(r"done (\d+), skipped (\d+) .*, failed (\d+)", resumed.stderr)
    assert counts and (int(counts[1]) + int(counts[3]), int(counts[2])) == (lost, 10 - lost), resumed.stderr[-3000:]
    _check_output(out, expected, {"a", "b", "c"})


@pytest.mark.slow
@needs_ray
def test_a_model_the_actors_cannot_load_is_one_clear_error(cluster, library, tmp_path):
    ns, address, env = cluster
    root, _, _ = library
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    argv = [
        str(root / "music" / "t0.wav"),
        "--engine",
        "ray",
        "--address",
        address,
        "--model",
        "broken.pt",
        "-o",
        str(tmp_path / "out"),
    ]
    r = subprocess.run(
        ns.wrap([sys.executable, "-m", "genrekit.cli", "predict", *argv, "--no-progress"]),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert r.returncode == 2, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the actors could not load the model: ") and "broken.pt" in last, last
    assert not list((tmp_path / "out").glob("part-*"))


@pytest.mark.slow
@needs_ray
def test_local_run_of_the_default_model_without_torch(library, tmp_path, ray_temp):
    """ray.init() on this machine (no --address), the bundled model on onnxruntime in every actor: no
    process, the driver's nor Ray's, can import the training extras' modules."""
    from genrekit.predictor import Predictor

    root, _, expected = library
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK_TRAIN_MODULES)
    out, env, labels = tmp_path / "out", _env(ray_temp, tmp_path / "site"), set(Predictor.load().labels)
    argv = [str(root / "music"), str(root / "list.txt"), "--engine", "ray", "-o", str(out), "--batch-size", "3"]
    ns = _namespace()
    try:
        r = _predict(ns, argv, env)
    finally:
        ns.close()
    assert r.returncode == 1, r.stderr[-3000:]
    assert f"done 7, skipped 0 (already in {out}), failed 3" in r.stderr
    _check_output(out, expected, labels)


@pytest.mark.slow
@needs_ray
def test_ray_actors_run_the_int8_backbone(library, tmp_path, ray_temp):
    """--precision int8 reaches every actor: each loads the bundled int8 backbone, and a copy of the
    model whose card names none stops the run in the actors."""
    from genrekit.checkpoint import bundled_model_path
    from genrekit.predictor import Predictor
    from genrekit.runtime import card_path

    root, _, expected = library
    out, env, labels = tmp_path / "out", _env(ray_temp), set(Predictor.load().labels)
    argv = [str(root / "music"), str(root / "list.txt"), "--engine", "ray", "--precision", "int8"]
    copy = tmp_path / "model"
    shutil.copytree(bundled_model_path().parent, copy)
    card = card_path(copy / bundled_model_path().name)
    card.write_text(json.dumps({k: v for k, v in json.loads(card.read_text()).items() if k != "precisions"}))
    ns = _namespace()
    try:
        r = _predict(ns, [*argv, "-o", str(out)], env)
        r2 = _predict(ns, [*argv, "-o", str(tmp_path / "out2"), "--model", str(copy / bundled_model_path().name)], env)
    finally:
        ns.close()
    assert r.returncode == 1 and f"done 7, skipped 0 (already in {out}), failed 3" in r.stderr, r.stderr[-3000:]
    _check_output(out, expected, labels)
    assert r2.returncode == 2 and "has no int8 backbone" in r2.stderr, r2.stderr[-3000:]


def test_manifest_items_and_errors(library):
    root, _, _ = library
    items = list_items([root / "list.txt", root / "music" / "t0.wav"])
    assert [(i.path.name, i.problem is None) for i in items] == [("t0.wav", True), ("missing.wav", False)]
    assert "list.txt" in items[1].problem


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "give it with --output"),
        (["-o", "x", "--format", "json"], "leave out --format"),
    ],
)
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


def test_a_missing_model_is_an_error_before_ray_starts(tmp_path, library):
    pytest.importorskip("ray")
    from genrekit.scale import run_ray

    with pytest.raises(GenrekitError, match="not found"):
        run_ray([library[0] / "music"], output_dir=tmp_path / "out", model=tmp_path / "nowhere.pt")


def test_output_must_be_a_folder(tmp_path, library):
    pytest.importorskip("ray")
    from genrekit.scale import run_ray

    (tmp_path / "f.csv").write_text("")
    with pytest.raises(GenrekitError, match="is a file"):
        run_ray([library[0] / "music"], output_dir=tmp_path / "f.csv")
