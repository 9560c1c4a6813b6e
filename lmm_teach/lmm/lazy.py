"""Result tables that are built on first access.

A fit computes every number eagerly (estimates, df, p-values, variance
components, BLUPs, ...) and keeps them as numpy arrays; turning them into
pandas objects costs more than the whole REML fit of a small study (pandas
builds an index, infers dtypes and consolidates blocks for every frame), and
many callers (Monte Carlo replicates, a slider being dragged) never look at
most tables.  statsmodels' results do the same with ``cache_readonly``.

:class:`LazyField` is a dataclass field (a data descriptor, see "Descriptor-typed
fields" in the dataclasses documentation) that accepts either the value itself
or a :class:`Deferred` recipe, and replaces the recipe by its value the first
time the attribute is read.  The field stays a field: the constructor,
``dataclasses.fields``, ``replace`` and pickling (the instance ``__dict__``
holds the recipe or the value) work as for any other field, and a frozen
dataclass still refuses assignment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Deferred", "LazyField"]


@dataclass(frozen=True, eq=False)
class Deferred:
    """A recipe ``build(*args)`` for a field value.

    ``build`` must be a module-level function so that a result holding the
    recipe pickles (process pools send results between processes).
    """

    build: Callable[..., Any]
    args: tuple = ()

    def __call__(self) -> Any:
        return self.build(*self.args)


class LazyField:
    """A dataclass field whose value may be given as a :class:`Deferred` and is built on first read.

    Reading the attribute on the class raises ``AttributeError`` so that
    ``dataclass`` sees no default (unless one is given).
    """

    _NO_DEFAULT = object()

    def __init__(self, default: Any = _NO_DEFAULT):
        self._default = default
        self._name = ""

    def __set_name__(self, owner, name: str) -> None:
        self._name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            if self._default is LazyField._NO_DEFAULT:
                raise AttributeError(self._name)
            return self._default
        d = obj.__dict__
        value = d[self._name]
        if type(value) is Deferred:
            # Building twice from two threads is harmless: both build the same table.
            value = value()
            d[self._name] = value
        return value

    def __set__(self, obj, value) -> None:
        # Reached from the dataclass __init__ only (object.__setattr__): a
        # frozen dataclass's own __setattr__ refuses assignment before this.
        obj.__dict__[self._name] = value
