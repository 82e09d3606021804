"""The top-level names: lazy at run time, visible to type checkers, one version."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
from pathlib import Path

import pytest
import tomllib

import genrekit

ROOT = Path(__file__).resolve().parents[1]
INIT = ROOT / "src" / "genrekit" / "__init__.py"


def _type_checking_imports() -> dict[str, str]:
    """name -> module of the imports under ``if TYPE_CHECKING:`` in genrekit/__init__.py."""
    tree = ast.parse(INIT.read_text())
    blocks = [n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING"]
    assert len(blocks) == 1
    return {alias.name: imp.module for imp in blocks[0].body for alias in imp.names}


def test_type_checkers_see_every_lazy_export_from_its_module():
    assert _type_checking_imports() == genrekit._EXPORTS
    assert sorted(genrekit.__all__) == sorted([*genrekit._EXPORTS, "__version__"])


@pytest.mark.parametrize("name", sorted(genrekit._EXPORTS))
def test_every_export_is_the_object_of_its_module(name):
    module = importlib.import_module(genrekit._EXPORTS[name])
    assert getattr(genrekit, name) is getattr(module, name)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        genrekit.nothing  # noqa: B018


def test_the_version_is_written_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "genrekit.__version__"}
    assert importlib.metadata.version("genrekit") == genrekit.__version__
