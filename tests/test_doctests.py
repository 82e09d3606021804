"""The Examples sections of the public API's docstrings run, and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

# cheap: no model is loaded
QUICK = ["genrekit.audio", "genrekit.audio_checks", "genrekit.features", "genrekit.splits", "genrekit.comparison"]
# these load the bundled model (a second or so)
WITH_MODEL = ["genrekit.default_predictor", "genrekit.predictor"]


def _run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of the {result.attempted} examples of {name} failed (see above)"


@pytest.mark.parametrize("name", QUICK)
def test_examples(name):
    _run(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", WITH_MODEL)
def test_examples_with_the_bundled_model(name):
    _run(name)
