"""Datasets (layouts, errors, feature cache, unreadable files) and track-level splits."""

from __future__ import annotations

import csv
import functools
import operator
import shutil
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import SR, labelled_clip, noise_band, tone, write_audio

from genrekit.datasets import DatasetError, Track, load_dataset
from genrekit.datasets.cache import default_cache_dir, load_features
from genrekit.experiment import prepare
from genrekit.features.kaggle_image import KaggleImageConfig
from genrekit.features.logmel import LogMelConfig
from genrekit.splits import ListSplit, clip_id, kfold, list_split, make_split, random_split

SMALL = LogMelConfig(n_mels=16, segment_seconds=1.0)


def _clip(seed: int, seconds: float = 0.5) -> np.ndarray:
    return noise_band(100, 4000, seconds, amp=0.1, seed=seed)


# ----------------------------------------------------------------------------- layouts


def test_kaggle_audio_layout(tmp_path):
    for g in ("blues", "jazz"):
        for i in range(3):
            write_audio(tmp_path / "genres_original" / g / f"{g}.{i:05d}.wav", _clip(i))
    (tmp_path / "genres_original" / "jazz" / "readme.txt").write_text("not audio")
    tracks = load_dataset(tmp_path)
    assert [t.id for t in tracks] == [f"{g}.{i:05d}" for g in ("blues", "jazz") for i in range(3)]
    assert all(isinstance(t, Track) and t.kind == "audio" and t.path.is_file() for t in tracks)
    assert [t.label for t in tracks] == ["blues"] * 3 + ["jazz"] * 3
    assert tracks[0].path == tmp_path / "genres_original" / "blues" / "blues.00000.wav"


def test_original_au_layout(tmp_path):
    for g in ("metal", "pop"):
        for i in (4, 9):
            write_audio(tmp_path / "genres" / g / f"{g}.{i:05d}.au", _clip(i))
    tracks = load_dataset(tmp_path)
    assert [(t.id, t.label) for t in tracks] == [
        ("metal.00004", "metal"),
        ("metal.00009", "metal"),
        ("pop.00004", "pop"),
        ("pop.00009", "pop"),
    ]
    assert all(t.path.suffix == ".au" and t.kind == "audio" for t in tracks)


def test_audio_names_outside_the_gtzan_pattern_keep_their_folder(tmp_path):
    write_audio(tmp_path / "genres_original" / "rock" / "My Song.flac", _clip(0))
    assert [t.id for t in load_dataset(tmp_path)] == ["rock/My Song"]


@pytest.fixture(scope="module")
def kaggle_png(tmp_path_factory) -> Path:
    """One Kaggle-geometry PNG rendered from a short synthetic signal."""
    from genrekit.features.kaggle_image import IMAGE_HEIGHT, IMAGE_WIDTH, render_image, save_png

    rgba = render_image(labelled_clip("hiss", 0, 3.0), SR)
    assert rgba.shape == (IMAGE_HEIGHT, IMAGE_WIDTH, 4)
    path = tmp_path_factory.mktemp("png") / "image.png"
    save_png(rgba, path)
    return path


def _images_layout(root: Path, png: Path, genres=("blues", "disco"), n=2) -> Path:
    for g in genres:
        (root / "images_original" / g).mkdir(parents=True)
        for i in range(n):
            shutil.copy(png, root / "images_original" / g / f"{g}{i:05d}.png")
    return root


def test_kaggle_images_layout(tmp_path, kaggle_png):
    _images_layout(tmp_path, kaggle_png)
    tracks = load_dataset(tmp_path)
    assert [t.id for t in tracks] == ["blues.00000", "blues.00001", "disco.00000", "disco.00001"]
    assert all(t.kind == "image" for t in tracks)
    # images give kaggle-image features of the full image width
    fs = load_features(tracks[:1], KaggleImageConfig(), cache_dir=tmp_path / "cache", progress=False)
    assert fs.features[0].shape == (128, 334) and not fs.failed


def test_images_can_only_feed_kaggle_image_features(tmp_path, kaggle_png):
    _images_layout(tmp_path, kaggle_png, genres=("pop",), n=1)
    tracks = load_dataset(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        fs = load_features(tracks, LogMelConfig(), cache_dir=tmp_path / "cache", progress=False)
    assert not fs.tracks and "kaggle-image" in fs.failed["pop.00000"]
    # prepare() chooses image features by itself, and refuses audio features for images
    data = prepare(tmp_path, cache_dir=tmp_path / "cache", progress=False)
    assert data.feature_config.kind == "kaggle-image"
    with pytest.raises(DatasetError, match="spectrogram images.*logmel"):
        prepare(tmp_path, feature_config=LogMelConfig(), cache_dir=tmp_path / "cache", progress=False)


def test_audio_and_images_side_by_side(tmp_path, kaggle_png):
    _images_layout(tmp_path, kaggle_png, genres=("blues",), n=2)
    write_audio(tmp_path / "genres_original" / "blues" / "blues.00000.wav", _clip(0))
    assert [t.kind for t in load_dataset(tmp_path)] == ["audio"]
    assert [t.kind for t in load_dataset(tmp_path, input_kind="audio")] == ["audio"]
    images = load_dataset(tmp_path, input_kind="images")
    assert [t.kind for t in images] == ["image", "image"]
    assert images[0].id == "blues.00000"  # same clip id as the audio: they line up


def test_real_kaggle_images_when_present(gtzan_root):
    tracks = load_dataset(gtzan_root, input_kind="images")
    assert len(tracks) >= 900
    assert len({t.id for t in tracks}) == len(tracks)
    assert {t.label for t in tracks} == {
        "blues",
        "classical",
        "country",
        "disco",
        "hiphop",
        "jazz",
        "metal",
        "pop",
        "reggae",
        "rock",
    }


def test_plain_label_folders(tmp_path):
    write_audio(tmp_path / "rock" / "a.wav", _clip(0))
    write_audio(tmp_path / "rock" / "live" / "b.flac", _clip(1))
    write_audio(tmp_path / "pop" / "c.ogg", _clip(2))
    (tmp_path / "pop" / "cover.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "pop" / "notes.txt").write_text("x")
    write_audio(tmp_path / "pop" / ".hidden.wav", _clip(3))
    write_audio(tmp_path / ".git" / "x.wav", _clip(4))
    tracks = load_dataset(tmp_path)
    assert [(t.id, t.label) for t in tracks] == [("pop/c", "pop"), ("rock/a", "rock"), ("rock/live/b", "rock")]
    assert all(t.kind == "audio" for t in tracks)


# ----------------------------------------------------------------------------- dataset errors


def test_missing_dataset_path(tmp_path):
    with pytest.raises(DatasetError, match="does not exist") as info:
        load_dataset(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_file_instead_of_folder(tmp_path):
    f = write_audio(tmp_path / "song.wav", _clip(0))
    with pytest.raises(DatasetError, match="is a file") as info:
        load_dataset(f)
    assert str(f) in str(info.value)


@pytest.mark.parametrize("content", ["nothing", "empty label folders", "non-audio files", "empty gtzan folder"])
def test_folder_without_tracks(tmp_path, content):
    if content == "empty label folders":
        (tmp_path / "rock").mkdir()
    elif content == "non-audio files":
        (tmp_path / "rock").mkdir()
        (tmp_path / "rock" / "list.txt").write_text("a\nb\n")
    elif content == "empty gtzan folder":
        (tmp_path / "genres_original" / "rock").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no tracks found") as info:
        load_dataset(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_unknown_input_kind(tmp_path):
    write_audio(tmp_path / "rock" / "a.wav", _clip(0))
    with pytest.raises(DatasetError, match="input kind"):
        load_dataset(tmp_path, input_kind="video")


# ----------------------------------------------------------------------------- feature cache


def _npy(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "features").rglob("*.npy") if ".tmp" not in p.name)


@pytest.fixture
def small_dataset(tmp_path) -> Path:
    root = tmp_path / "data"
    for label, f0 in (("low", 300.0), ("high", 3000.0)):
        for i in range(2):
            write_audio(root / label / f"{label}{i}.wav", tone(f0 * (1 + 0.1 * i), 1.0, amp=0.3))
    return root


def test_cache_is_written_once_and_read_back(tmp_path, small_dataset):
    cache = tmp_path / "cache"
    tracks = load_dataset(small_dataset)
    first = load_features(tracks, SMALL, cache_dir=cache, progress=False)
    entries = _npy(cache)
    assert len(entries) == len(tracks) == 4
    assert all(f.shape[0] == 16 and f.dtype == np.float16 for f in first.features)
    # prove the second call reads the cache: plant a recognisable array in every entry
    for e in entries:
        np.save(e, np.full((16, 5), 7.0, np.float16))
    second = load_features(tracks, SMALL, cache_dir=cache, progress=False)
    assert all(np.all(f == 7.0) for f in second.features)
    assert _npy(cache) == entries


def test_cache_dir_defaults_to_genrekit_cache(tmp_path, small_dataset, monkeypatch):
    monkeypatch.setenv("GENREKIT_CACHE", str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    load_features(load_dataset(small_dataset), SMALL, progress=False)
    assert len(_npy(tmp_path / "envcache")) == 4


def test_cache_is_keyed_by_content_not_name(tmp_path, small_dataset):
    cache = tmp_path / "cache"
    load_features(load_dataset(small_dataset), SMALL, cache_dir=cache, progress=False)
    assert len(_npy(cache)) == 4
    # a renamed (identical) file hits the same entry
    (small_dataset / "low" / "low0.wav").rename(small_dataset / "low" / "renamed.wav")
    fs = load_features(load_dataset(small_dataset), SMALL, cache_dir=cache, progress=False)
    assert len(_npy(cache)) == 4 and len(fs.tracks) == 4
    # a changed file gets a new entry, and its new features
    write_audio(small_dataset / "low" / "renamed.wav", tone(500.0, 1.5, amp=0.3))
    fs = load_features(load_dataset(small_dataset), SMALL, cache_dir=cache, progress=False)
    assert len(_npy(cache)) == 5
    changed = fs.features[[t.id for t in fs.tracks].index("low/renamed")]
    assert changed.shape[1] == 1 + int(1.5 * SR) // SMALL.hop_length


def test_cache_is_keyed_by_the_features_but_not_the_windows(tmp_path, small_dataset):
    cache = tmp_path / "cache"
    tracks = load_dataset(small_dataset)
    load_features(tracks, SMALL, cache_dir=cache, progress=False)
    # window-only fields do not change a track's matrix: same entries
    load_features(
        tracks,
        LogMelConfig(n_mels=16, segment_seconds=2.0, segment_overlap=0.0, top_db=60),
        cache_dir=cache,
        progress=False,
    )
    assert len(_npy(cache)) == 4
    # other mel bands do
    fs = load_features(tracks, LogMelConfig(n_mels=24), cache_dir=cache, progress=False)
    assert len(_npy(cache)) == 8 and fs.features[0].shape[0] == 24


def test_without_cache_nothing_is_written(tmp_path, small_dataset):
    tracks = load_dataset(small_dataset)
    fs = load_features(tracks, SMALL, cache_dir=tmp_path / "cache", use_cache=False, progress=False)
    assert len(fs.features) == 4
    assert not (tmp_path / "cache").exists()


def test_damaged_cache_entry_is_recomputed(tmp_path, small_dataset):
    cache = tmp_path / "cache"
    tracks = load_dataset(small_dataset)
    first = load_features(tracks, SMALL, cache_dir=cache, progress=False)
    for e in _npy(cache):
        e.write_bytes(b"garbage")
    second = load_features(tracks, SMALL, cache_dir=cache, progress=False)
    for a, b in zip(first.features, second.features):
        np.testing.assert_array_equal(a, b)


def test_cached_features_equal_fresh_ones(tmp_path, small_dataset):
    tracks = load_dataset(small_dataset)
    fresh = load_features(tracks, SMALL, use_cache=False, progress=False)
    cached = load_features(tracks, SMALL, cache_dir=tmp_path / "c", progress=False)
    again = load_features(tracks, SMALL, cache_dir=tmp_path / "c", progress=False)
    for a, b, c in zip(fresh.features, cached.features, again.features):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(b, c)


def test_unreadable_files_are_skipped_and_listed(tmp_path, small_dataset):
    bad = small_dataset / "high" / "broken.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(3000))
    (small_dataset / "low" / "empty.mp3").write_bytes(b"")
    tracks = load_dataset(small_dataset)
    assert len(tracks) == 6
    with pytest.warns(UserWarning, match="skipped 2 unreadable track") as rec:
        fs = load_features(tracks, SMALL, cache_dir=tmp_path / "cache", progress=False)
    assert set(fs.failed) == {"high/broken", "low/empty"}
    assert str(bad) in fs.failed["high/broken"]
    assert "high/broken" in str(rec[0].message) and "low/empty" in str(rec[0].message)
    assert len(fs.tracks) == len(fs.features) == 4
    assert all(t.id not in fs.failed for t in fs.tracks)
    # through prepare(): the failures are kept for the report
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prepare(small_dataset, feature_config=SMALL, cache_dir=tmp_path / "cache", progress=False)
    assert set(data.failed) == {"high/broken", "low/empty"} and len(data.tracks) == 4


def test_dataset_with_no_readable_track(tmp_path):
    (tmp_path / "rock").mkdir()
    (tmp_path / "rock" / "a.wav").write_bytes(b"RIFF....nope")
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="none of the 1 tracks"):
        prepare(tmp_path, feature_config=SMALL, cache_dir=tmp_path / "cache", progress=False)


def test_prepare_labels_are_sorted_and_can_be_fixed(tmp_path, small_dataset):
    data = prepare(small_dataset, feature_config=SMALL, cache_dir=tmp_path / "c", progress=False)
    assert data.labels == ["high", "low"]
    assert [data.labels[i] for i in data.y] == [t.label for t in data.tracks]
    only_low = prepare(
        small_dataset, feature_config=SMALL, cache_dir=tmp_path / "c", labels=["low", "x"], progress=False
    )
    assert only_low.labels == ["low", "x"] and set(only_low.y) == {0}
    with pytest.raises(DatasetError, match="labels"):
        prepare(small_dataset, feature_config=SMALL, cache_dir=tmp_path / "c", labels=["jazz"], progress=False)


# ----------------------------------------------------------------------------- random and k-fold splits


def _labels(counts=(10, 7, 13)) -> list[str]:
    return [g for g, n in zip(("blues", "jazz", "rock"), counts) for _ in range(n)]


def _ids(labels):
    return [f"{g}.{i:05d}" for i, g in enumerate(labels)]


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
@pytest.mark.parametrize("test_size", [0.2, 0.3, 0.5])
def test_random_split_is_a_stratified_partition(seed, test_size):
    labels = _labels()
    ids = _ids(labels)
    train, test = random_split(labels, test_size=test_size, seed=seed)
    assert not {ids[i] for i in train} & {ids[i] for i in test}  # no track on both sides
    assert sorted([*train, *test]) == list(range(len(labels)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    per_class = Counter(labels[i] for i in test)
    for g, n in Counter(labels).items():
        assert abs(per_class[g] - n * test_size) <= 1, g


@pytest.mark.parametrize("seed", [0, 3])
def test_random_split_is_deterministic_per_seed(seed):
    labels = _labels()
    a, b = random_split(labels, seed=seed), random_split(labels, seed=seed)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("shares", [(0.8, 0.1, 0.1), (0.7, 0.3, 0.0), (0.5, 0.2, 0.3)])
def test_a_shares_split_cuts_every_class_by_the_three_shares(shares):
    labels = _labels()
    (fold,) = make_split("shares", ids=_ids(labels), labels=labels, seed=4, shares=shares).folds
    parts = (fold.train, fold.val, fold.test)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))  # a partition
    for g, n in Counter(labels).items():
        sizes = [sum(labels[i] == g for i in part) for part in parts]
        assert sizes[2] == round(n * shares[2]) and sizes[1] == round(n * shares[1]), (g, sizes)
    again = make_split("shares", ids=_ids(labels), labels=labels, seed=4, shares=shares).folds[0]
    np.testing.assert_array_equal(again.train, fold.train)
    if shares[2]:
        other = make_split("shares", ids=_ids(labels), labels=labels, seed=5, shares=shares).folds[0]
        assert not np.array_equal(other.test, fold.test)


def test_random_split_differs_between_seeds():
    labels = _labels()
    tests = {tuple(random_split(labels, seed=s)[1]) for s in range(5)}
    assert len(tests) > 1


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 11])
def test_kfold_tests_partition_the_tracks(k, seed):
    labels = _labels()
    ids = _ids(labels)
    folds = kfold(labels, k=k, seed=seed)
    assert len(folds) == k
    all_test = np.concatenate([te for _, te in folds])
    assert sorted(all_test) == list(range(len(labels)))  # every track tested exactly once
    for train, test in folds:
        assert not {ids[i] for i in train} & {ids[i] for i in test}
        assert sorted([*train, *test]) == list(range(len(labels)))
        per_class = Counter(labels[i] for i in test)
        for g, n in Counter(labels).items():
            assert abs(per_class[g] - n / k) < 1, g  # stratified
    again = kfold(labels, k=k, seed=seed)
    for (a, b), (c, d) in zip(folds, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_kfold_needs_k_tracks_per_class():
    with pytest.raises(DatasetError, match="at least 5 tracks per class"):
        kfold(_labels((10, 4, 6)), k=5)


# ----------------------------------------------------------------------------- list splits


@pytest.mark.parametrize(
    "line,expected",
    [
        ("blues/blues.00012.wav", "blues.00012"),
        ("  jazz/jazz.00054.au \n", "jazz.00054"),
        ("blues.00012", "blues.00012"),
        ("blues.00012.ogg", "blues.00012"),
        ("/abs/path/rock/rock.00099.wav", "rock.00099"),
    ],
)
def test_clip_id(line, expected):
    assert clip_id(line) == expected


def _write_lists(d: Path, parts: dict[str, list[str]], suffix="_filtered") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for part, ids in parts.items():
        (d / f"{part}{suffix}.txt").write_text("".join(f"{i.split('.')[0]}/{i}.wav\n" for i in ids) + "\n")
    return d


def _check_partition(split: ListSplit, track_ids: list[str]):
    sides = {p: {track_ids[i] for i in idx} for p, idx in split.parts.items()}
    names = list(sides)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not sides[a] & sides[b], (a, b)
    return sides


def test_list_split_on_synthetic_lists(tmp_path):
    ids = [f"{g}.{i:05d}" for g in ("blues", "rock") for i in range(6)]
    lists = {
        "train": ["blues.00000", "blues.00001", "rock.00000", "rock.00001", "rock.00099"],
        "valid": ["blues.00002", "rock.00002"],
        "test": ["blues.00003", "rock.00003", "blues.00077"],
    }
    split = list_split(ids, _write_lists(tmp_path / "splits", lists))
    sides = _check_partition(split, ids)
    assert sides == {
        "train": {"blues.00000", "blues.00001", "rock.00000", "rock.00001"},
        "valid": {"blues.00002", "rock.00002"},
        "test": {"blues.00003", "rock.00003"},
    }
    assert split.missing == {"train": ["rock.00099"], "valid": [], "test": ["blues.00077"]}
    assert sorted(split.unlisted) == ["blues.00004", "blues.00005", "rock.00004", "rock.00005"]
    assert all(p.dtype == np.int64 for p in split.parts.values())


def test_list_split_prefers_filtered_lists_and_falls_back_to_plain(tmp_path):
    ids = ["a.00000", "a.00001", "a.00002"]
    d = _write_lists(tmp_path, {"train": ["a.00000"], "valid": ["a.00001"], "test": ["a.00002"]}, suffix="")
    _write_lists(d, {"train": ["a.00001"]})  # train_filtered.txt wins over train.txt
    split = list_split(ids, d)
    assert list(split.parts["train"]) == [1] and list(split.parts["test"]) == [2]


def test_list_split_missing_list_file(tmp_path):
    d = _write_lists(tmp_path, {"train": ["a.00000"], "test": ["a.00001"]})
    with pytest.raises(DatasetError, match="'valid'") as info:
        list_split(["a.00000", "a.00001"], d)
    assert str(d) in str(info.value)


def _real_split_dir(root: Path) -> Path:
    d = root / "splits"
    if not (d / "train_filtered.txt").is_file():
        pytest.skip(f"filtered split lists not found in {d}")
    return d


def test_list_split_real_lists_with_clips_missing(gtzan_root):
    splits = _real_split_dir(gtzan_root)
    with open(gtzan_root / "inventory.csv", newline="") as f:
        inventory = [row["clip_id"] for row in csv.DictReader(f)]
    listed = {
        p: [clip_id(x) for x in (splits / f"{p}_filtered.txt").read_text().split()] for p in ("train", "valid", "test")
    }
    removed = {listed["train"][0], listed["train"][-1], listed["valid"][3], listed["test"][10]}
    ids = [i for i in inventory if i not in removed]
    split = list_split(ids, splits)
    sides = _check_partition(split, ids)
    assert sorted(functools.reduce(operator.iadd, split.missing.values(), [])) == sorted(removed)
    assert split.missing["train"] == [listed["train"][0], listed["train"][-1]]
    for p in ("train", "valid", "test"):
        assert len(sides[p]) == len(listed[p]) - len(split.missing[p])
    assert len(split.unlisted) == len(ids) - sum(len(s) for s in sides.values())


def test_list_split_real_lists_on_the_partial_audio(gtzan_root):
    """The audio copy lacks most clips: list_split reports them and still splits what is there."""
    splits = _real_split_dir(gtzan_root)
    if not (gtzan_root / "genres_original").is_dir():
        pytest.skip(f"GTZAN audio not found at {gtzan_root / 'genres_original'}")
    ids = [t.id for t in load_dataset(gtzan_root, input_kind="audio")]
    split = list_split(ids, splits)
    sides = _check_partition(split, ids)
    assert all(len(sides[p]) > 0 for p in ("train", "test"))
    n_listed = sum(len((splits / f"{p}_filtered.txt").read_text().split()) for p in ("train", "valid", "test"))
    assert sum(len(v) for v in split.missing.values()) == n_listed - sum(len(s) for s in sides.values())
    assert all(i not in ids for v in split.missing.values() for i in v)


def test_cache_writes_of_one_entry_from_many_threads_do_not_collide(tmp_path):
    # identical files share one cache entry: 12 threads write it at once (a per-process temp name collided)
    y = labelled_clip("hiss", 0, 2.0)
    for i in range(24):
        write_audio(tmp_path / "data" / "hiss" / f"copy{i:02d}.wav", y)
    tracks = load_dataset(tmp_path / "data")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no track may fail
        fs = load_features(tracks, SMALL, cache_dir=tmp_path / "cache", workers=12, progress=False)
    assert len(fs.tracks) == 24 and not fs.failed
    entries = list((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 1 and not list((tmp_path / "cache").rglob("*.tmp*"))


@pytest.mark.parametrize("protocol", ["random", "kfold"])
def test_make_split_follows_the_seed(protocol):
    from genrekit.splits import make_split

    labels = [g for g in ("a", "b", "c") for _ in range(10)]
    ids = [f"{g}.{i:05d}" for i, g in enumerate(labels)]
    tests = {s: [tuple(f.test) for f in make_split(protocol, ids=ids, labels=labels, seed=s).folds] for s in (0, 1, 2)}
    assert tests[0] == [tuple(f.test) for f in make_split(protocol, ids=ids, labels=labels, seed=0).folds]
    assert len({tuple(v) for v in tests.values()}) == 3
    for s in (0, 1):
        for fold in make_split(protocol, ids=ids, labels=labels, seed=s).folds:
            sides = [set(fold.train), set(fold.val), set(fold.test)]
            assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
            assert len(set().union(*sides)) == 30


def test_make_split_kfold_tests_every_track_once_and_none_trains_on_all():
    from genrekit.splits import make_split

    labels = [g for g in ("a", "b") for _ in range(10)]
    ids = [str(i) for i in range(20)]
    folds = make_split("kfold", ids=ids, labels=labels, folds=4).folds
    assert [f.name for f in folds] == ["fold0", "fold1", "fold2", "fold3"]
    assert sorted(i for f in folds for i in f.test) == list(range(20))
    everything = make_split("none", ids=ids, labels=labels, val_fraction=0).folds
    assert len(everything) == 1 and sorted(everything[0].train) == list(range(20)) and not len(everything[0].test)
    with pytest.raises(DatasetError, match="unknown protocol"):
        make_split("leaky", ids=ids, labels=labels)
