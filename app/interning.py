"""Equal read-only values shared as one object, in a bounded table.

Caches of answers hold many equal small objects (the inventories of hosts of
one hardware model, idle or equally loaded): one shared object each saves a
worker's memory. The table starts afresh past its limit, so it never grows with
the variety of what passes through it.
"""

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Interned(Generic[K, V]):
    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._table: dict[K, V] = {}

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The one value kept for ``key``, made (and kept) on first use; it
        must never be changed by those it is handed to."""
        value = self._table.get(key)
        if value is None:
            if len(self._table) >= self._limit:
                self._table.clear()
            value = self._table[key] = make()
        return value
