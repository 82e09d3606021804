"""The one registry of feature kinds and models: lazy entries, plugins through entry points, one error."""

from __future__ import annotations

import sys

import pytest

from genrekit.errors import GenrekitError
from genrekit.registry import Registry


def test_a_lazy_entry_is_imported_on_first_use_and_listed_in_order():
    r: Registry[object] = Registry("thing", {"b": "json:dumps", "a": "json:loads"})
    r.add("c", len)
    assert r.names() == ["b", "a", "c"] and list(r) == r.names() and len(r) == 3 and "a" in r
    import json

    assert r["a"] is json.loads and r.names() == ["b", "a", "c"]  # loading keeps the order


def test_an_unknown_name_names_the_sort_and_the_choices():
    r: Registry[object] = Registry("feature kind", {"logmel": "json:dumps"})
    with pytest.raises(GenrekitError, match=r"unknown feature kind 'nope'; choose one of: logmel"):
        r["nope"]


def test_the_registries_of_features_and_models_are_registries():
    from genrekit.features import FEATURE_KINDS, FeatureConfig, feature_kind
    from genrekit.models import MODELS, model_spec

    assert isinstance(FEATURE_KINDS, Registry) and isinstance(MODELS, Registry)
    assert issubclass(feature_kind("musicnn"), FeatureConfig) and feature_kind("musicnn").kind == "musicnn"
    assert model_spec("gknet").build is MODELS["gknet"] and model_spec("gknet").source == "genrekit"
    with pytest.raises(GenrekitError, match="unknown model 'nope'"):
        model_spec("nope")


def test_another_package_adds_an_entry_through_its_entry_points(tmp_path, monkeypatch):
    """A distribution declaring ``[genrekit.test_things]`` is found; it never replaces an own entry."""
    (tmp_path / "plugin_things.py").write_text("THING = 'from the plugin'\nOTHER = 'not used'\n")
    info = tmp_path / "plugin_things-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-things\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[genrekit.test_things]\nthing = plugin_things:THING\nown = plugin_things:OTHER\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    r: Registry[str] = Registry("thing", {"own": "json:__name__"}, group="genrekit.test_things")
    assert r.names() == ["own", "thing"]
    assert r["thing"] == "from the plugin" and r["own"] == "json"
    monkeypatch.delitem(sys.modules, "plugin_things", raising=False)
