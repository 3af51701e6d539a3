"""Name -> thing lookups (layouts, assets, weather kinds and presets, exporters, models).

An unknown name raises ``UnknownNameError`` (an InputError and a KeyError) listing the choices,
so a typo fails loudly and helpfully, and the CLI reports it under the flag that gave the name.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from longtail.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """``kind`` names what it holds in messages; ``param`` the parameter a name arrives in
    (default: the kind's last word, e.g. "format" for "export format")."""

    def __init__(self, kind: str, param: str | None = None):
        self.kind = kind
        self.param = param or kind.split()[-1]
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable "name" from a file
            raise UnknownNameError(self.kind, name, self.names(), self.param) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def values(self) -> list[T]:
        return [self._items[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._items
