"""Tags in the files: every container written and read back, audio untouched, kill -9 safety, undo, speed.

1. formats: one generated file per container (tests/tag_library.py) with an artist, a title and a
   genre set beforehand; the real command ``genrekit tag DIR --write --mode replace`` writes the
   predicted genre; each file is read back with mutagen and with FFmpeg (PyAV), and its decoded
   audio compared sample by sample with the audio before; then ``genrekit tag --undo`` and every
   journalled field is checked to be back;
2. kill: ``--files`` short files over every container; ``genrekit tag --write`` (the bundled
   model; a first run without ``--write`` fills its state, so the killed runs only write) is
   killed with SIGKILL ``--kills`` times at random moments once it has started writing
   (after each kill every file must open with mutagen), then run to the end; each file must then
   decode to its original samples and carry the genre the model gives it (predicted here), and
   ``--undo`` of the run's journal must bring back every field;
3. speed: the tag-writing step alone (``write_tags`` with its journal: copy, write, read back,
   fsync, rename) on the kill library's files, one thread pinned to one core.

    python benchmarks/tags.py [--files 200] [--kills 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _results import cpu, md_table, update_summary, write_results
from tag_library import CONTAINERS, decoded, ffmpeg_tags, write_container

from genrekit.tagging.containers import open_tags
from genrekit.tagging.decide import GenreMap
from genrekit.tagging.safe import Journal, read_journal, temp_path, write_tags

SR = 22050
KILL_WINDOW_S = 0.15  # each kill comes this long at most after its run began writing


def clip(seed: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(80, 600)
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * (0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0))
    y = 0.4 * y / np.abs(y).max() + 0.01 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def genrekit(*args, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "genrekit.cli", *map(str, args)], env=env, capture_output=True, text=True
    )
    if check and done.returncode not in (0, 1):
        raise RuntimeError(f"genrekit {' '.join(map(str, args))} failed: {done.stderr[-2000:]}")
    return done


def undo_check(journal: Path) -> tuple[int, int]:
    """(fields the journal changed, fields now back at their value before it)."""
    first: dict[tuple[str, str], list | None] = {}
    for e in read_journal(journal):
        first.setdefault((e["path"], e["field"]), e["old"])
    back = 0
    for (path, field), old in first.items():
        back += (open_tags(path).get(field) or None) == old
    return len(first), back


def formats(work: Path, env: dict) -> dict:
    lib, out = work / "formats", {}
    files, missing = {}, {}
    for i, name in enumerate(CONTAINERS):
        got = write_container(name, lib, clip(i, 6.0), SR, stem=name)
        if isinstance(got, str):
            missing[name] = got
            continue
        write_tags(got, {"artist": ["Someone"], "title": [f"A {name} track"], "genre": ["Soundtrack"]}, journal=None)
        files[name] = got
    before = {n: decoded(p) for n, p in files.items()}
    journal, rows = work / "formats-journal.jsonl", work / "formats-rows.json"
    genrekit(
        "tag",
        lib,
        "--write",
        "--mode",
        "replace",
        "--min-confidence",
        "0",
        "--journal",
        journal,
        "--state",
        work / "formats-state.jsonl",
        "-o",
        rows,
        env=env,
    )
    by_name = {Path(r["path"]).name: r for r in json.loads(rows.read_text())}
    for name, path in files.items():
        row = by_name[path.name]
        want = row["genre_new"]
        t, ff = open_tags(path).read(), ffmpeg_tags(path)
        after = decoded(path)
        out[name] = {
            "action": row["action"],
            "genre": want,
            "mutagen_ok": t.get("genre") == [want]
            and t.get("genrekit_genre") == [want]
            and t.get("artist") == ["Someone"],
            "ffmpeg_ok": ff.get("GENRE", "").split(";")[0] == want and ff.get("GENREKIT_GENRE") == want,
            "audio_same": len(after) == len(before[name]) and bool(np.array_equal(after, before[name])),
        }
    undo_journal_path = work / "formats-undo.jsonl"
    genrekit("tag", "--undo", journal, "--journal", undo_journal_path, env=env)
    fields, back = undo_check(journal)
    for name, path in files.items():
        out[name]["audio_same_after_undo"] = bool(np.array_equal(decoded(path), before[name]))
    return {"containers": out, "not_generated": missing, "undo_fields": fields, "undo_restored": back}


def kill_run(work: Path, env: dict, *, n_files: int, kills: int, seed: int) -> tuple[dict, list[Path]]:
    from genrekit.predictor import Predictor

    rng = random.Random(seed)
    lib = work / "kill"
    names = [n for n in CONTAINERS if not isinstance(write_container(n, work / "probe", clip(0, 0.5), SR), str)]
    paths = []
    for i in range(n_files):
        p = write_container(
            names[i % len(names)], lib / f"album{i // 20:02d}", clip(1000 + i, 1.5), SR, stem=f"{i:03d}"
        )
        paths.append(p)
    originals = {p: decoded(p) for p in paths}
    predictor, gmap = Predictor.load(), GenreMap()
    expected = {p: gmap(predictor.predict_file(p).genre) for p in paths}
    journal, state = work / "kill-journal.jsonl", work / "kill-state.jsonl"
    args = [
        sys.executable,
        "-m",
        "genrekit.cli",
        "tag",
        str(lib),
        "--write",
        "--min-confidence",
        "0",
        "--journal",
        str(journal),
        "--state",
        str(state),
    ]
    # a first run without --write fills the state: the killed runs reuse its predictions and spend
    # their time writing, so that the kills come inside writes
    genrekit("tag", lib, "--min-confidence", "0", "--state", state, env=env)
    done_kills, unreadable_between, finished_early, inside_a_write = 0, 0, 0, 0
    while done_kills < kills:
        size0 = journal.stat().st_size if journal.exists() else 0
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and (not journal.exists() or journal.stat().st_size <= max(size0, 100)):
            time.sleep(0.005)  # wait until this run writes
        time.sleep(rng.uniform(0, KILL_WINDOW_S))
        if proc.poll() is not None:
            finished_early += 1
            break  # nothing left to write: the library is done
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_kills += 1
        inside_a_write += sum(temp_path(p).exists() for p in paths)
        for p in paths:  # between two runs, every file is whole: the old one or the new one
            try:
                open_tags(p)
            except Exception:  # noqa: BLE001 - counted
                unreadable_between += 1
    stale = sum(temp_path(p).exists() for p in paths)
    final = subprocess.run(args, env=env, capture_output=True, text=True)
    wrong, unreadable = [], []
    for p in paths:
        try:
            t = open_tags(p).read()
            audio = decoded(p)
        except Exception as exc:  # noqa: BLE001 - counted
            unreadable.append(f"{p.name}: {exc}")
            continue
        if (
            not np.array_equal(audio, originals[p])
            or t.get("genre") != [expected[p]]
            or t.get("genrekit_genre") != [expected[p]]
            or ffmpeg_tags(p).get("GENREKIT_GENRE") != expected[p]
        ):
            wrong.append(p.name)
    written_before_final = sum(1 for e in read_journal(journal) if e["field"] == "genre")
    genrekit("tag", "--undo", journal, "--journal", work / "kill-undo.jsonl", env=env)
    fields, back = undo_check(journal)
    return {
        "files": n_files,
        "containers": names,
        "kills": done_kills,
        "finished_before_a_kill": finished_early,
        "unreadable_between_kills": unreadable_between,
        "stale_copies_after_kills": stale,
        "kills_inside_a_write": inside_a_write,
        "genre_writes_journalled": written_before_final,
        "final_rc": final.returncode,
        "unreadable": unreadable,
        "wrong": wrong,
        "undo_fields": fields,
        "undo_restored": back,
    }, paths


def write_speed(paths: list[Path], work: Path) -> dict:
    """Files/s of write_tags alone, one thread on one core."""
    copies = work / "speed"
    files = []
    for p in paths:
        dst = copies / p.parent.name / p.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dst)
        files.append(dst)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    changes = {
        "genre": ["Jazz"],
        "genrekit_genre": ["Jazz"],
        "genrekit_probability": ["0.8123"],
        "genrekit_model": ["musicnn-gtzan.pt"],
        "genrekit_model_sha256": ["0" * 64],
    }
    with Journal(work / "speed-journal.jsonl") as j:
        t0, c0 = time.perf_counter(), time.process_time()
        for f in files:
            write_tags(f, changes, journal=j)
        wall, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    return {
        "files": len(files),
        "wall_s": wall,
        "cpu_s": cpu_s,
        "files_per_s": len(files) / wall,
        "files_per_cpu_s": len(files) / cpu_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="genrekit-tags-"))
    env = {
        **os.environ,
        "GENREKIT_CACHE": str(work / "cache"),
        "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        t0 = time.perf_counter()
        f = formats(work, env)
        k, paths = kill_run(work, env, n_files=a.files, kills=a.kills, seed=a.seed)
        s = write_speed(paths, work)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    c = f["containers"]
    ok = [n for n, r in c.items() if r["action"] == "written" and r["mutagen_ok"] and r["ffmpeg_ok"]]
    changed = sum(not r["audio_same"] or not r["audio_same_after_undo"] for r in c.values()) + len(k["wrong"])
    audio_changed = sum(not r["audio_same"] or not r["audio_same_after_undo"] for r in c.values())
    undo = (f["undo_restored"] + k["undo_restored"]) / max(1, f["undo_fields"] + k["undo_fields"])
    summary = {
        "tag_formats_written": len(ok),
        "tag_formats_total": len(CONTAINERS),
        "tag_audio_changed": audio_changed,
        "tag_kill_corrupt": len(k["unreadable"]) + len(k["wrong"]) + k["unreadable_between_kills"],
        "tag_undo_restored": round(undo, 4),
        "tag_write_files_per_s": round(s["files_per_s"], 1),
    }
    data = {**cpu(), "summary": summary, "formats": f, "kill": k, "speed": s, "seconds": seconds}
    rows = [
        [
            n,
            r["genre"],
            r["action"],
            "yes" if r["mutagen_ok"] else "NO",
            "yes" if r["ffmpeg_ok"] else "NO",
            "yes" if r["audio_same"] and r["audio_same_after_undo"] else "NO",
        ]
        for n, r in c.items()
    ]
    rows += [[n, "-", f"not generated: {why}", "-", "-", "-"] for n, why in f["not_generated"].items()]
    md = f"""# Tags in the files (benchmarks/tags.py)

CPU: {data["cpu_model"]} ({", ".join(data["vector_extensions"])}); {seconds:.0f} s in all.

## Every container, through `genrekit tag --write --mode replace`

{md_table(["container", "genre written", "row", "mutagen reads it", "FFmpeg reads it", "audio identical (after write and undo)"], rows)}

Written and read back by both: **{len(ok)} of {len(CONTAINERS)}** containers (`tag_formats_written`).
Files whose decoded audio changed: **{audio_changed}** (`tag_audio_changed`; every sample compared, FFmpeg decoding).
`--undo`: {f["undo_restored"]} of {f["undo_fields"]} journalled fields back.

## kill -9 during `genrekit tag --write` ({k["files"]} files, {len(k["containers"])} containers)

{k["kills"]} SIGKILLs at random moments (0-{KILL_WINDOW_S} s after each run began writing, its predictions\nreused from a first run without `--write`; {k["finished_before_a_kill"]} run(s) ended
before its kill), then a run to the end (exit {k["final_rc"]}). Files unreadable between kills:
{k["unreadable_between_kills"]}; kills that came inside a file's write (a copy was left beside it):
{k["kills_inside_a_write"]}; copies left after the last kill: {k["stale_copies_after_kills"]} (the next write of the file replaces them).
After the final run: unreadable {len(k["unreadable"])}, wrong genre or changed audio {len(k["wrong"])}
(`tag_kill_corrupt` = {summary["tag_kill_corrupt"]}). `--undo` of the run's journal: {k["undo_restored"]} of
{k["undo_fields"]} fields back. Overall `tag_undo_restored` = {summary["tag_undo_restored"]}.

## Tag-writing speed (prediction excluded)

`write_tags` (copy, write, read back, fsync, journal line fsynced, rename, fsync of the folder) on {s["files"]}
files of 1.5 s, one thread pinned to one core: **{s["files_per_s"]:.1f} files/s** wall
({s["files_per_cpu_s"]:.0f} files per CPU second: the rest is waiting for fsync).
"""
    write_results("tags", data, md)
    update_summary(summary)
    print(md)
    if changed:
        print(f"warning: {changed} file(s) changed audio or were wrong", file=sys.stderr)


if __name__ == "__main__":
    main()
