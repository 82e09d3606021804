"""Tagging in worker processes: results in order, errors per file, a dead worker costs one file."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
from conftest import labelled_clip, write_audio
from threadpoolctl import threadpool_info

from genrekit.audio import AudioError
from genrekit.errors import GenrekitError
from genrekit.predictor import Prediction
from genrekit.workers import SMALL_JOB, default_workers, pool_size, predict_files

# the tests that start workers are slow: each worker starts a Python and loads the model


def test_default_is_one_worker_per_core():
    assert default_workers() == len(os.sched_getaffinity(0))


def test_the_pool_has_one_worker_per_core_but_no_more_than_files():
    cores = default_workers()
    assert pool_size(None, files=1000) == cores and pool_size(3, files=1000) == 3
    assert pool_size(8, files=SMALL_JOB + 1) == SMALL_JOB + 1
    # a small job, or processes=1, is tagged in the calling process
    assert pool_size(None, files=SMALL_JOB) == 1 and pool_size(1, files=1000) == 1
    with pytest.raises(GenrekitError, match="processes must be at least 1"):
        pool_size(0, files=10)


def test_fewer_than_one_worker_is_refused():
    with pytest.raises(GenrekitError, match="workers must be at least 1"):
        next(predict_files(["a.wav"], workers=0))


@pytest.mark.slow
def test_results_come_in_order_with_errors_per_file(tmp_path):
    paths = [write_audio(tmp_path / f"song{i}.flac", labelled_clip("bass", i, 8.0)) for i in range(3)]
    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio " * 100)
    paths.insert(1, bad)
    before = threadpool_info()
    out = list(predict_files(paths, workers=2, patches=2, escalation=None))
    assert [p for p, _ in out] == [str(p) for p in paths]
    assert isinstance(out[1][1], AudioError) and "notes.mp3" in str(out[1][1])
    for _, result in out[:1] + out[2:]:
        assert isinstance(result, Prediction) and result.sampled == (2, 3)
    assert threadpool_info() == before  # the limits stayed inside the workers


@pytest.mark.slow
def test_a_worker_that_dies_costs_only_its_file(tmp_path):
    short = [write_audio(tmp_path / f"short{i}.flac", labelled_clip("hiss", i, 4.0)) for i in range(2)]
    noise = np.random.default_rng(0).normal(scale=0.1, size=600 * 16000).astype(np.float32)
    long = write_audio(tmp_path / "long.wav", noise, sr=16000)  # ten minutes: it is in flight when killed
    results = predict_files([short[0], long, short[1]], workers=1)
    assert isinstance(next(results)[1], Prediction)

    def kill():
        import multiprocessing

        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)

    timer = threading.Timer(2.0, kill)
    timer.start()
    rest = list(results)
    timer.join()
    assert rest[0][0] == str(long) and isinstance(rest[0][1], GenrekitError) and "died" in str(rest[0][1])
    assert rest[1][0] == str(short[1]) and isinstance(rest[1][1], Prediction)


@pytest.mark.slow
def test_a_model_that_cannot_load_is_one_error_before_any_file(tmp_path):
    with pytest.raises(GenrekitError, match="nosuchmodel"):
        list(predict_files([tmp_path / "a.wav"], model=tmp_path / "nosuchmodel.pt", workers=1))
