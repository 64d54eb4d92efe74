"""Record keys: which key a line has, and which keys were seen."""

from __future__ import annotations

from array import array
from typing import Any


class KeySet:
    """The record keys seen so far, as 64-bit hashes in one open-addressing array.

    About 16 bytes a key instead of ~100 for a set of str, so memory stays flat on files of
    millions of records. Two different keys share a hash with odds of about n²/2⁶⁵ (1 in 10⁸ at
    a million keys); the price of that is one record reported as a duplicate key.
    """

    __slots__ = ("table", "mask", "n")

    def __init__(self, capacity: int = 1024) -> None:
        self.table = array("q", bytes(8 * capacity))
        self.mask = capacity - 1
        self.n = 0

    def add(self, key: str) -> bool:
        """Remember a key; False if it was already there."""
        h = hash(key) or 1  # 0 marks an empty slot
        table, mask = self.table, self.mask
        i = h & mask
        while True:
            v = table[i]
            if v == 0:
                table[i] = h
                self.n += 1
                if self.n * 2 > mask:
                    self._grow()
                return True
            if v == h:
                return False
            i = (i + 1) & mask

    def __contains__(self, key: str) -> bool:
        h = hash(key) or 1
        table, mask = self.table, self.mask
        i = h & mask
        while (v := table[i]) != 0:
            if v == h:
                return True
            i = (i + 1) & mask
        return False

    def __len__(self) -> int:
        return self.n

    def _grow(self) -> None:
        old = self.table
        size = len(old) * 2
        self.table = table = array("q", bytes(8 * size))
        self.mask = mask = size - 1
        for h in old:
            if h:
                i = h & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = h


def record_key(obj: dict[str, Any], line: int) -> str:
    """A line's key: `custom_id`, else `id`, else `line-N`."""
    v = obj.get("custom_id")
    if v is None or v == "":
        v = obj.get("id")
        if v is None or v == "":
            return f"line-{line}"
    return v if type(v) is str else str(v)

