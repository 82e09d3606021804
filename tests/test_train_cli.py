"""End to end through the CLI: train -> report -> evaluate, compare, reproducibility, clean errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from genrekit.checkpoint import load_checkpoint
from genrekit.cli import main
from genrekit.models import model_names

# small and fast: 32 mels, 1-s windows, many windows per epoch so that 4 epochs learn the easy classes
FAST = ["--feature", "segment_seconds=1", "--feature", "n_mels=32", "--windows-per-track", "16", "--no-progress"]
# the default validation share (0.1) of 19 training tracks is 2 tracks, fewer than the 3 classes
VAL = ["--val-fraction", "0.2"]


def run_cli(argv: list[str]) -> int:
    """Run ``genrekit argv``; the exit code (0 when it returns normally)."""
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, labelled_dataset, cache) -> Path:
    out = tmp_path_factory.mktemp("train")
    argv = ["train", "--data", labelled_dataset, "--out", out, "--epochs", 4, "--seed", 0, "--cache-dir", cache]
    argv += [*FAST, *VAL]
    assert run_cli(argv) == 0
    return out


def test_train_writes_model_and_report(trained):
    assert (trained / "model.pt").is_file()
    for name in (
        "report.json",
        "confusion_track.png",
        "confusion_track.csv",
        "confusion_segment.png",
        "confusion_segment.csv",
        "per_genre.csv",
        "curves.png",
    ):
        assert (trained / "report" / name).is_file(), name
        assert (trained / "report" / name).stat().st_size > 0, name
    assert not list(trained.rglob("*.tmp"))


def test_report_json_has_the_metrics(trained):
    rep = json.loads((trained / "report" / "report.json").read_text())
    assert rep["labels"] == ["bass", "hiss", "treble"]
    assert rep["model"] == "gknet"
    for level in ("track", "segment"):
        m = rep[level]
        for key in ("accuracy", "balanced_accuracy", "macro_f1"):
            assert 0.0 <= m[key] <= 1.0
        assert set(m["per_class"]) == set(rep["labels"])
        assert all(set(v) == {"precision", "recall", "f1", "support"} for v in m["per_class"].values())
        assert len(m["confusion"]) == 3 and all(len(r) == 3 for r in m["confusion"])
        assert sum(map(sum, m["confusion"])) == m["n"]
    assert rep["track"]["n"] == len(rep["tracks"]) == 5  # 20 % of 24 tracks, stratified
    assert rep["segment"]["n"] > rep["track"]["n"]
    assert rep["skipped_unreadable"] == {}


def test_model_beats_chance_on_easy_classes(trained):
    rep = json.loads((trained / "report" / "report.json").read_text())
    assert rep["track"]["accuracy"] >= 0.8
    assert rep["segment"]["balanced_accuracy"] >= 0.7


def test_report_csvs_parse(trained):
    with open(trained / "report" / "per_genre.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["genre"] for r in rows] == ["bass", "hiss", "treble"]
    assert all(0 <= float(r["recall"]) <= 1 for r in rows)
    with open(trained / "report" / "confusion_track.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0][1:] == ["bass", "hiss", "treble"] and len(table) == 4


def test_checkpoint_records_the_training(trained, labelled_dataset):
    ckpt = load_checkpoint(trained / "model.pt")
    assert ckpt.labels == ["bass", "hiss", "treble"]
    assert ckpt.feature_config.n_mels == 32 and ckpt.feature_config.segment_seconds == 1.0
    meta, split = ckpt.metadata, ckpt.split
    assert len(split["test"]) == 5 and meta["protocol"] == "random"
    assert meta["epochs_run"] == len(meta["history"]) <= 4
    assert meta["n_train_tracks"] == len(split["train"]) and meta["n_val_tracks"] == len(split["val"])
    # the three sides are disjoint and cover the data
    assert len(set(split["train"]) | set(split["val"]) | set(split["test"])) == 24
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 24
    assert 0.0 <= meta["accuracy"]["track_accuracy"] <= 1.0


def test_evaluate_on_the_held_out_tracks(trained, labelled_dataset, cache, tmp_path):
    code = run_cli(
        [
            "evaluate",
            "--model",
            trained / "model.pt",
            "--data",
            labelled_dataset,
            "--out",
            tmp_path / "eval",
            "--cache-dir",
            cache,
            "--no-progress",
        ]
    )
    assert code == 0
    rep = json.loads((tmp_path / "eval" / "report.json").read_text())
    test_ids = load_checkpoint(trained / "model.pt").split["test"]
    assert sorted(t["id"] for t in rep["tracks"]) == sorted(test_ids)
    train_rep = json.loads((trained / "report" / "report.json").read_text())
    assert rep["track"]["confusion"] == train_rep["track"]["confusion"]  # the same model on the same tracks
    assert (tmp_path / "eval" / "confusion_track.png").is_file()


def test_evaluate_refuses_tracks_the_model_was_trained_on(trained, labelled_dataset, cache, tmp_path, capsys):
    argv = [
        "evaluate",
        "--model",
        trained / "model.pt",
        "--data",
        labelled_dataset,
        "--subset",
        "all",
        "--out",
        tmp_path / "eval",
        "--cache-dir",
        cache,
        "--no-progress",
    ]
    code = run_cli(argv)
    _assert_clean_error(capsys, code, "19 of the 24 tracks", "used to train", "--allow-seen")
    assert not (tmp_path / "eval").exists()
    # allowed on request, with a loud warning and the count in the report
    assert run_cli([*argv, "--allow-seen"]) == 0
    assert "warning: 19 of the 24 tracks" in capsys.readouterr().err  # the CLI prints warnings as one line
    rep = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert rep["track"]["n"] == 24 and rep["seen_tracks_evaluated"] == 19
    assert rep["track"]["balanced_accuracy"] >= 0.8


def _train_on_all_argv(dataset, out: Path, cache: Path) -> list:
    """``genrekit train`` on every track (no test split, no validation share), one epoch."""
    return [
        "train",
        "--data",
        dataset,
        "--out",
        out,
        "--epochs",
        1,
        "--split",
        "none",
        "--cache-dir",
        cache,
        *FAST,
        "--val-fraction",
        "0",
    ]


@pytest.mark.slow
def test_evaluate_refuses_a_test_subset_the_checkpoint_does_not_have(labelled_dataset, cache, tmp_path, capsys):
    out = tmp_path / "all"
    assert run_cli(_train_on_all_argv(labelled_dataset, out, cache)) == 0
    code = run_cli(
        [
            "evaluate",
            "--model",
            out / "model.pt",
            "--data",
            labelled_dataset,
            "--subset",
            "test",
            "--out",
            tmp_path / "eval",
            "--cache-dir",
            cache,
            "--no-progress",
        ]
    )
    _assert_clean_error(capsys, code, "no held-out test tracks")


def _as_gtzan_layout(dataset: Path, root: Path) -> Path:
    """The synthetic clips as ``genres_original/<label>/<label>.000NN.wav`` (GTZAN clip ids)."""
    for label_dir in sorted(p for p in dataset.iterdir() if p.is_dir()):
        for i, f in enumerate(sorted(label_dir.glob("*.wav"))):
            dest = root / "genres_original" / label_dir.name / f"{label_dir.name}.{i:05d}.wav"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
    return root


def test_evaluate_a_split_file(trained, labelled_dataset, cache, tmp_path, capsys):
    data = _as_gtzan_layout(labelled_dataset, tmp_path / "gtzan")
    lst = tmp_path / "some.txt"
    lst.write_text("bass/bass.00000.wav\nhiss/hiss.00003.wav\nblues/blues.00099.wav\n")
    code = run_cli(
        [
            "evaluate",
            "--model",
            trained / "model.pt",
            "--data",
            data,
            "--split-file",
            lst,
            "--out",
            tmp_path / "eval",
            "--cache-dir",
            cache,
            "--no-progress",
        ]
    )
    assert code == 0
    rep = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert sorted(t["id"] for t in rep["tracks"]) == ["bass.00000", "hiss.00003"]
    assert "1 clip(s)" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_a_split_file_on_a_plain_folder_dataset(trained, labelled_dataset, cache, tmp_path):
    held_out = sorted(load_checkpoint(trained / "model.pt").split["test"])[:2]  # e.g. bass/bass_00
    lst = tmp_path / "some.txt"
    lst.write_text("".join(f"{i}.wav\n" for i in held_out))
    code = run_cli(
        [
            "evaluate",
            "--model",
            trained / "model.pt",
            "--data",
            labelled_dataset,
            "--split-file",
            lst,
            "--out",
            tmp_path / "eval",
            "--cache-dir",
            cache,
            "--no-progress",
        ]
    )
    assert code == 0
    rep = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert sorted(t["id"] for t in rep["tracks"]) == held_out


@pytest.mark.slow
def test_training_is_reproducible_with_the_same_seed(trained, labelled_dataset, cache, tmp_path):
    out = tmp_path / "again"
    argv = ["train", "--data", labelled_dataset, "--out", out, "--epochs", 4, "--seed", 0, "--cache-dir", cache]
    argv += [*FAST, *VAL]
    assert run_cli(argv) == 0
    a, b = load_checkpoint(trained / "model.pt"), load_checkpoint(out / "model.pt")
    assert a.split == b.split
    assert a.state_dict.keys() == b.state_dict.keys()
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k
    ra = json.loads((trained / "report" / "report.json").read_text())
    rb = json.loads((out / "report" / "report.json").read_text())
    assert ra["tracks"] == rb["tracks"] and ra["segment"] == rb["segment"]


@pytest.mark.slow
def test_another_seed_gives_another_split_and_model(trained, labelled_dataset, cache, tmp_path, capsys):
    splits = []
    for seed in (1, 2):
        out = tmp_path / f"seed{seed}"
        argv = ["train", "--data", labelled_dataset, "--out", out, "--epochs", 1, "--seed", seed, "--cache-dir", cache]
        assert run_cli([*argv, *FAST, *VAL]) == 0
        assert f"seed {seed}" in capsys.readouterr().out  # says which seed it is on
        splits.append(load_checkpoint(out / "model.pt").split["test"])
    a = load_checkpoint(trained / "model.pt")
    assert len({tuple(a.split["test"]), *map(tuple, splits)}) == 3  # --seed draws the split
    b = load_checkpoint(tmp_path / "seed1" / "model.pt")
    assert any(not torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


@pytest.mark.slow
def test_train_kfold_trains_the_fold_it_is_given(labelled_dataset, cache, tmp_path, capsys):
    base = [
        "train",
        "--data",
        labelled_dataset,
        "--epochs",
        1,
        "--split",
        "kfold",
        "--folds",
        3,
        "--cache-dir",
        cache,
        *FAST,
        "--val-fraction",
        "0.25",
    ]
    code = run_cli([*base, "--out", tmp_path / "o"])
    _assert_clean_error(capsys, code, "--fold", "compare")
    tests = []
    for k in (0, 2):
        assert run_cli([*base, "--fold", k, "--out", tmp_path / f"f{k}"]) == 0
        assert f"fold{k}" in capsys.readouterr().out
        tests.append(set(load_checkpoint(tmp_path / f"f{k}" / "model.pt").split["test"]))
    assert len(tests[0]) == len(tests[1]) == 8 and not tests[0] & tests[1]
    _assert_clean_error(capsys, run_cli([*base, "--fold", 3, "--out", tmp_path / "f3"]), "--fold 3")


@pytest.mark.slow
def test_train_on_all_data_without_a_test_split(labelled_dataset, cache, tmp_path):
    out = tmp_path / "all"
    assert run_cli(_train_on_all_argv(labelled_dataset, out, cache)) == 0
    assert (out / "model.pt").is_file() and (out / "curves.png").is_file()
    assert not (out / "report").exists()
    ckpt = load_checkpoint(out / "model.pt")
    assert ckpt.metadata["n_train_tracks"] == 24 and len(ckpt.split["train"]) == 24 and ckpt.split["test"] == []


@pytest.mark.slow
def test_train_skips_unreadable_files_and_says_so(labelled_dataset, cache, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(labelled_dataset, data)
    (data / "hiss" / "broken.wav").write_bytes(b"RIFF" + bytes(200))
    out = tmp_path / "out"
    argv = ["train", "--data", data, "--out", out, "--epochs", 1, "--cache-dir", cache, *FAST, *VAL]
    assert run_cli(argv) == 0
    err = capsys.readouterr().err
    assert "warning: skipped 1 unreadable" in err
    assert "hiss/broken" in err and "Traceback" not in err
    assert "hiss/broken" in load_checkpoint(out / "model.pt").metadata["skipped_unreadable"]


@pytest.mark.slow
def test_compare_two_models_by_kfold(labelled_dataset, cache, tmp_path):
    out = tmp_path / "cmp"
    argv = [
        "compare",
        "--data",
        labelled_dataset,
        "--models",
        "gknet,s001_ann",
        "--split",
        "kfold",
        "--folds",
        2,
        "--epochs",
        2,
        "--val-fraction",
        "0.25",
        "--out",
        out,
        "--cache-dir",
        cache,
        *FAST,
    ]
    narrow = tmp_path / "narrow"
    assert (
        run_cli(
            [
                "compare",
                "--data",
                labelled_dataset,
                "--models",
                "gknet",
                "--split",
                "kfold",
                "--folds",
                2,
                "--epochs",
                1,
                "--val-fraction",
                "0.25",
                "--out",
                narrow,
                "--cache-dir",
                cache,
                *FAST,
                "--model-param",
                "width=4",
            ]
        )
        == 0
    )
    assert run_cli(argv) == 0
    md = (out / "compare.md").read_text()
    assert "gknet" in md and "s001_ann" in md and "±" in md
    assert "kfold" in md
    table = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == 3  # header + two models
    res = json.loads((out / "compare.json").read_text())
    assert res["protocol"]["key"] == "kfold" and list(res["models"]) == ["gknet", "s001_ann"]
    for variants in res["models"].values():
        r = variants["kfold"]
        assert [f["fold"] for f in r["runs"]] == ["fold0", "fold1"]
        assert sum(f["n_test"] for f in r["runs"]) == 24  # every track tested once
        assert 0 <= r["accuracy_mean"] <= 1 and r["accuracy_sd"] >= 0
    assert (out / "compare.png").is_file()
    assert (out / "runs" / "gknet" / "fold1" / "report.json").is_file()
    sizes = [
        json.loads((d / "compare.json").read_text())["models"]["gknet"]["kfold"]["runs"][0]["n_parameters"]
        for d in (out, narrow)
    ]
    assert sizes[1] < sizes[0] / 4  # --model-param width=4 reached the model (default width 16)


def test_models_command_lists_every_architecture(capsys):
    assert run_cli(["models"]) == 0
    out = capsys.readouterr().out
    for n in model_names():
        assert n in out


# ----------------------------------------------------------------------------- errors


def _assert_clean_error(capsys, code: int, *needles: str) -> str:
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, captured.err
    assert len(lines) == 1, captured.err
    for n in needles:
        assert n in errors[0]
    return errors[0]


def test_wrong_data_path(tmp_path, capsys):
    code = run_cli(["train", "--data", tmp_path / "nowhere", "--out", tmp_path / "o", "--no-progress"])
    _assert_clean_error(capsys, code, str(tmp_path / "nowhere"), "does not exist")
    assert not (tmp_path / "o").exists()


def test_data_path_is_a_file(tmp_path, capsys):
    f = tmp_path / "x.wav"
    f.write_bytes(b"x")
    code = run_cli(["train", "--data", f, "--out", tmp_path / "o", "--no-progress"])
    _assert_clean_error(capsys, code, str(f))


def test_empty_dataset_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = run_cli(["train", "--data", tmp_path / "empty", "--out", tmp_path / "o", "--no-progress"])
    _assert_clean_error(capsys, code, "no tracks found")


def test_missing_checkpoint_for_evaluate(labelled_dataset, tmp_path, capsys):
    code = run_cli(["evaluate", "--model", tmp_path / "none.pt", "--data", labelled_dataset, "--out", tmp_path / "o"])
    _assert_clean_error(capsys, code, str(tmp_path / "none.pt"), "not found")


def test_missing_checkpoint_for_predict(labelled_dataset, tmp_path, capsys):
    wav = next((labelled_dataset / "bass").glob("*.wav"))
    code = run_cli(["predict", wav, "--model", tmp_path / "none.pt", "--no-progress"])
    _assert_clean_error(capsys, code, "not found")


def test_evaluate_on_data_without_the_checkpoint_labels(trained, tmp_path, capsys):
    from conftest import make_dataset

    other = make_dataset(tmp_path / "other", clips_per_label=1, seconds=1.0)
    for d in other.iterdir():
        d.rename(other / f"x{d.name}")
    code = run_cli(
        [
            "evaluate",
            "--model",
            trained / "model.pt",
            "--data",
            other,
            "--out",
            tmp_path / "o",
            "--cache-dir",
            tmp_path / "c",
            "--no-progress",
        ]
    )
    _assert_clean_error(capsys, code, "labels")


def test_kfold_with_too_few_tracks(labelled_dataset, cache, tmp_path, capsys):
    code = run_cli(
        [
            "compare",
            "--data",
            labelled_dataset,
            "--models",
            "gknet",
            "--split",
            "kfold",
            "--folds",
            10,
            "--out",
            tmp_path / "o",
            "--cache-dir",
            cache,
            *FAST,
        ]
    )
    _assert_clean_error(capsys, code, "10-fold")


def test_unknown_model_name(labelled_dataset, cache, tmp_path, capsys):
    code = run_cli(
        [
            "train",
            "--data",
            labelled_dataset,
            "--model",
            "resnet9000",
            "--out",
            tmp_path / "o",
            "--cache-dir",
            cache,
            *FAST,
            *VAL,
        ]
    )
    _assert_clean_error(capsys, code, "resnet9000", "gknet")


@pytest.mark.slow
def test_small_dataset_with_default_validation_share(labelled_dataset, cache, tmp_path, capsys):
    # 10 % of 19 training tracks is 2, fewer than the 3 classes: validation still gets one track per class
    code = run_cli(
        ["train", "--data", labelled_dataset, "--out", tmp_path / "o", "--epochs", 1, "--cache-dir", cache, *FAST]
    )
    assert code == 0
    val = load_checkpoint(tmp_path / "o" / "model.pt").split["val"]
    assert sorted(v.split("/")[0] for v in val) == ["bass", "hiss", "treble"]


def test_feature_settings_are_checked_against_the_kind(labelled_dataset, cache, tmp_path, capsys):
    code = run_cli(
        [
            "train",
            "--data",
            labelled_dataset,
            "--out",
            tmp_path / "o",
            "--features",
            "kaggle-image",
            "--feature",
            "n_mels=64",
            "--cache-dir",
            cache,
            "--no-progress",
        ]
    )
    _assert_clean_error(capsys, code, "n_mels", "kaggle-image")
    code = run_cli(
        [
            "train",
            "--data",
            labelled_dataset,
            "--out",
            tmp_path / "o",
            "--feature",
            "n_mels",
            "--cache-dir",
            cache,
            "--no-progress",
        ]
    )
    _assert_clean_error(capsys, code, "KEY=VALUE")


def test_every_training_setting_has_an_option_with_its_default(capsys):
    from dataclasses import fields

    from genrekit.config import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in text
    assert "(default: 40)" in text and "--no-augment" in text


def test_the_cli_starts_without_heavy_libraries():
    import subprocess
    import sys

    heavy = ("torch", "librosa", "sklearn", "matplotlib", "ray", "pyarrow")
    code = f"import sys, genrekit.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
