"""Things of one sort found by name: the feature kinds and the models.

An entry is either the thing itself (:meth:`Registry.add`, or the :meth:`Registry.register`
decorator) or where it lies, ``"module:attribute"``, imported on first use so that listing the
names stays light. Other packages add entries through the entry-point group the registry names
(``[project.entry-points."genrekit.feature_kinds"]``, ``genrekit.models``), read when a name is
first looked up; a package's entry never replaces genrekit's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from genrekit.errors import GenrekitError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one sort.

    Parameters
    ----------
    what : what an entry is, as error messages name it (``"feature kind"``)
    lazy : name -> ``"module:attribute"`` of entries imported on first use
    group : the entry-point group through which other packages add entries (``None``: none)
    """

    def __init__(self, what: str, lazy: dict[str, str] | None = None, *, group: str | None = None):
        self.what, self.group = what, group
        self._lazy: dict[str, str] = dict(lazy or {})
        self._loaded: dict[str, T] = {}
        self._names: dict[str, None] = dict.fromkeys(self._lazy)  # every name, in the order registered
        self._plugins_read = group is None

    def add(self, name: str, value: T) -> T:
        """Register ``value`` under ``name`` (replacing an entry of that name)."""
        self._lazy.pop(name, None)
        self._loaded[name] = value
        self._names.setdefault(name)
        return value

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering what it decorates under ``name``."""
        return lambda value: self.add(name, value)

    def _read_plugins(self) -> None:
        if self._plugins_read:
            return
        self._plugins_read = True
        for ep in entry_points(group=self.group or ""):
            if ep.name not in self._names:
                self._lazy[ep.name] = ep.value
                self._names[ep.name] = None

    def names(self) -> list[str]:
        """Every registered name, in the order registered."""
        self._read_plugins()
        return list(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        """The entry ``name``, imported on first use.

        Raises
        ------
        GenrekitError
            no entry of that name
        """
        if name in self._loaded:
            return self._loaded[name]
        self._read_plugins()
        if name not in self._lazy:
            raise GenrekitError(f"unknown {self.what} '{name}'; choose one of: {', '.join(self.names())}")
        module, _, attribute = self._lazy[name].partition(":")
        return self.add(name, getattr(importlib.import_module(module), attribute))
