"""The seed documents' protocols: what each states, how its samples are cut and split (the
segment leak and its cure), the training options they need, and a whole run from the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import LABELS

from genrekit.comparison import comparison_markdown
from genrekit.config import TrainConfig
from genrekit.errors import GenrekitError
from genrekit.experiment import prepare
from genrekit.features.logmel import LogMelConfig
from genrekit.models import build_model, model_names
from genrekit.seed_protocols import (
    PROTOCOL_NAMES,
    SEED_PROTOCOLS,
    cut_samples,
    on_images,
    run_seed_protocol,
    split_samples,
    subset_clips,
)
from genrekit.train import _epoch_draw, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
headline = pytest.importorskip("seed_protocols").headline

SMALL = LogMelConfig(n_mels=32, segment_seconds=1.0, segment_overlap=0.0)


def test_each_protocol_states_the_documents_figures_and_models():
    claimed = {k: p.claimed for k, p in SEED_PROTOCOLS.items()}
    assert claimed == {"seed000": 0.7085, "seed001": 0.3445, "seed002": 0.48, "seed003": 0.9461, "seed004": None}
    for p in SEED_PROTOCOLS.values():
        assert set(p.models) <= set(model_names())
        assert abs(sum(p.shares) - 1) < 1e-9
        assert p.notes, f"{p.key} must say what its document leaves unstated"
    assert SEED_PROTOCOLS["seed003"].split_by == "segment" and SEED_PROTOCOLS["seed003"].repetitions == 5
    assert SEED_PROTOCOLS["seed000"].train.optimizer == "nadam" and SEED_PROTOCOLS["seed000"].train.epochs == 150
    assert len(SEED_PROTOCOLS["seed004"].genres) == 8


def test_the_cli_offers_exactly_the_protocols():
    out = subprocess.run(
        [sys.executable, "-m", "genrekit.cli", "compare", "--help"], capture_output=True, text=True, check=False
    )
    assert "{" + ",".join(PROTOCOL_NAMES) + "}" in out.stdout


@pytest.fixture(scope="module")
def small_data(labelled_dataset, tmp_path_factory):
    return prepare(labelled_dataset, feature_config=SMALL, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


def test_samples_are_the_consecutive_windows_of_each_clip(small_data):
    samples = cut_samples(small_data)
    size = SMALL.segment_frames
    per_clip = small_data.features[0].shape[1] // size
    assert len(samples.y) == per_clip * len(small_data.y)
    assert all(f.shape == (SMALL.n_bins, size) for f in samples.features)
    first = samples.of_clips(np.array([0]))
    assert len(first) == per_clip
    np.testing.assert_array_equal(samples.features[first[1]], small_data.features[0][:, size : 2 * size])
    assert (samples.y[first] == small_data.y[0]).all()


def test_a_subset_keeps_at_most_n_clips_per_genre_the_same_way_each_time(small_data):
    subset = subset_clips(small_data, 3)
    assert np.bincount(subset.y).tolist() == [3] * len(LABELS)
    assert subset.ids == subset_clips(small_data, 3).ids and set(subset.ids) <= set(small_data.ids)
    assert all(
        np.array_equal(f, small_data.features[small_data.ids.index(i)]) for i, f in zip(subset.ids, subset.features)
    )


def test_an_audio_protocol_on_the_image_matrices_keeps_its_window():
    images = on_images(SEED_PROTOCOLS["seed003"])
    assert images.input_kind == "images" and images.features["kind"] == "kaggle-image"
    assert images.features["segment_seconds"] == 3.0 and images.split_by == "segment"
    assert on_images(SEED_PROTOCOLS["seed000"]) == SEED_PROTOCOLS["seed000"]


def _sides_of_clips(samples, parts):
    return [set(samples.clip[p].tolist()) for p in parts]


def test_a_segment_split_puts_windows_of_one_clip_on_both_sides_and_a_track_split_never(small_data):
    protocol = SEED_PROTOCOLS["seed003"]
    samples = cut_samples(small_data)
    leaky = split_samples(protocol, "reproduced", small_data, samples, seed=0)
    train_clips, _, test_clips = _sides_of_clips(samples, leaky)
    assert train_clips & test_clips, "the seed's own protocol shares clips between train and test"
    honest = split_samples(protocol, "track", small_data, samples, seed=0)
    tr, va, te = _sides_of_clips(samples, honest)
    assert not (tr & te) and not (tr & va) and not (va & te)
    for parts in (leaky, honest):  # every sample on exactly one side, shares as stated
        assert sorted(np.concatenate(parts).tolist()) == list(range(len(samples.y)))
        assert len(parts[0]) / len(samples.y) == pytest.approx(0.8, abs=0.06)
        assert set(samples.y[parts[2]].tolist()) == set(range(len(LABELS)))  # stratified
    other_seed = split_samples(protocol, "track", small_data, samples, seed=1)
    assert not np.array_equal(other_seed[2], honest[2])


def test_the_filtered_variant_follows_the_list_files(small_data, tmp_path):
    ids = small_data.ids
    (tmp_path / "train_filtered.txt").write_text("\n".join(f"{i}.wav" for i in ids[::2]))
    (tmp_path / "valid_filtered.txt").write_text(f"{ids[1]}.wav\n")
    (tmp_path / "test_filtered.txt").write_text("\n".join(f"{i}.wav" for i in ids[3::4]))
    samples = cut_samples(small_data)
    parts = split_samples(SEED_PROTOCOLS["seed002"], "filtered", small_data, samples, seed=0, splits_dir=tmp_path)
    assert [sorted(s) for s in _sides_of_clips(samples, parts)] == [
        list(range(0, len(ids), 2)),
        [1],
        list(range(3, len(ids), 4)),
    ]
    with pytest.raises(GenrekitError, match="split lists"):
        split_samples(SEED_PROTOCOLS["seed002"], "filtered", small_data, samples, seed=0, splits_dir=tmp_path / "no")


def test_training_options_the_seeds_need():
    with pytest.raises(GenrekitError, match="optimizer 'rmsprop'.*adamw, adam, nadam, sgd"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(GenrekitError, match="precision"):
        TrainConfig(precision="fp8")
    # without class balancing an epoch is a shuffled pass: every track equally often
    draw = _epoch_draw(np.array([0, 0, 0, 1]), 8, False, np.random.default_rng(0))
    assert sorted(draw.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert draw.tolist() != [0, 1, 2, 3, 0, 1, 2, 3]


@pytest.mark.parametrize("optimizer,schedule,precision", [("nadam", "decay", "fp32"), ("sgd", "constant", "bf16")])
def test_training_with_another_optimiser_keeps_the_last_epoch_when_asked(small_data, optimizer, schedule, precision):
    f = SMALL
    net = build_model("s004_parallel_cnn", n_classes=len(LABELS), input_shape=(f.n_bins, f.segment_frames))
    config = TrainConfig(
        epochs=3,
        optimizer=optimizer,
        schedule=schedule,
        lr=0.01,
        precision=precision,
        restore_best=False,
        patience=3,
        augment=False,
    )
    idx = np.arange(len(small_data.y))
    result = train(
        net,
        small_data.features,
        small_data.y,
        f,
        train_idx=idx[::2],
        val_idx=idx[1::2],
        config=config,
        device="cpu",
        progress=False,
    )
    assert result.best_epoch == len(result.history) == 3
    lrs = [row["lr"] for row in result.history]
    if schedule == "decay":
        assert lrs[0] > lrs[-1] == pytest.approx(0.01 / 2, rel=0.05)
    else:
        assert lrs == [0.01] * 3
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def _tiny_protocol(**changes):
    return replace(
        SEED_PROTOCOLS["seed003"],
        features={"kind": "logmel", "n_mels": 32, "segment_seconds": 1.0, "segment_overlap": 0.0},
        **changes,
    )


@pytest.mark.slow
def test_a_whole_protocol_runs_every_variant_and_reports_it(labelled_dataset, tmp_path):
    ids = prepare(labelled_dataset, feature_config=SMALL, progress=False).ids
    splits = tmp_path / "splits"
    splits.mkdir()
    for part, chosen in (("train", ids[::2]), ("valid", ids[1::4]), ("test", ids[3::4])):
        (splits / f"{part}_filtered.txt").write_text("\n".join(f"{i}.wav" for i in chosen))
    seen = []
    result = run_seed_protocol(
        _tiny_protocol(),
        labelled_dataset,
        splits_dir=splits,
        repetitions=2,
        max_epochs=2,
        device="cpu",
        cache_dir=tmp_path / "cache",
        progress=False,
        on_result=lambda r: seen.append(json.dumps(r)),
    )
    runs = result["models"]["s003_cnn"]
    assert set(runs) == {"reproduced", "track", "filtered"}
    assert [len(runs[v]["runs"]) for v in ("reproduced", "track", "filtered")] == [2, 2, 1]
    assert len(seen) == 5  # saved after every run
    assert result["budget"] == {
        "epochs": 2,
        "seed_epochs": 30,
        "repetitions": 2,
        "seed_repetitions": 5,
        "precision": "fp32",
        "clips_per_genre": None,
    }
    assert all(r["epochs_run"] <= 2 and 0 <= r["accuracy"] <= 1 for v in runs.values() for r in v["runs"])
    assert "clip_accuracy" in runs["track"]["runs"][0] and "clip_accuracy" not in runs["reproduced"]["runs"][0]
    assert runs["filtered"]["runs"][0]["n_measured"] == len(ids[3::4]) * 4  # 4 one-second windows per clip
    head = headline(result)
    assert head["claimed"] == 0.9461 and head["reproduced"] == round(runs["reproduced"]["accuracy_mean"], 4)
    assert head["honest"] == round(runs["filtered"]["accuracy_mean"], 4) and "track_level" in head
    table = comparison_markdown(result)
    assert table.startswith("Protocol: seed003 (its document: 94.61 ± 0.40 % over five random splits); audio, 24 clips")
    assert "at most 2 of the seed's 30 epochs" in table
    rows = [line for line in table.splitlines() if line.startswith("| s003_cnn |")]
    assert [r.split(" | ")[1:4] for r in rows] == [
        ["reproduced", "2", "segment"],
        ["track", "2", "segment"],
        ["filtered", "1", "segment"],
    ]
    mean, sd = runs["reproduced"]["accuracy_mean"], runs["reproduced"]["accuracy_sd"]
    assert f"| {mean:.3f} ± {sd:.3f} |" in rows[0] and "| — |" in rows[0]  # no clip accuracy for a segment split


def test_an_unknown_protocol_is_refused(labelled_dataset):
    with pytest.raises(GenrekitError, match="unknown protocol 'seed009'.*seed000"):
        run_seed_protocol("seed009", labelled_dataset)


@pytest.mark.slow
def test_compare_protocol_from_the_command_line(labelled_dataset, tmp_path):
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "genrekit.cli",
        "compare",
        "--protocol",
        "seed002",
        "--data",
        str(labelled_dataset),
        "--max-epochs",
        "1",
        "--no-progress",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(out),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    # the synthetic data has no split lists: the reproduced run is kept, then one clear error
    assert proc.returncode != 0
    assert "split lists" in proc.stderr and "--splits-dir" in proc.stderr and "Traceback" not in proc.stderr
    saved = json.loads((out / "compare.json").read_text())
    assert saved["models"]["s002_cnn"]["reproduced"]["runs"][0]["epochs_run"] == 1
    assert (
        (out / "compare.md")
        .read_text()
        .startswith("Protocol: seed002 (its document: 48 % test accuracy); audio, 24 clips")
    )
    assert "| s002_cnn | reproduced | 1 | clip |" in (out / "compare.md").read_text()

    ids = sorted(prepare(labelled_dataset, feature_config=SMALL, progress=False).ids)
    for part, chosen in (("train", ids[::2]), ("valid", ids[1::4]), ("test", ids[3::4])):
        (tmp_path / f"{part}_filtered.txt").write_text("\n".join(f"{i}.wav" for i in chosen))
    proc = subprocess.run(
        command + ["--splits-dir", str(tmp_path)], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert f"written: {out / 'compare.md'}" in proc.stdout
    assert set(json.loads((out / "compare.json").read_text())["models"]["s002_cnn"]) == {"reproduced", "filtered"}
