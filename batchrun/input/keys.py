"""Record keys: which key a line has, and which keys were seen.

Every output line's `custom_id` is unique in a file. A line with no key of its own, and every bad
line, is keyed `line-N` by its own line number (the README), so keys of that form belong to their
line: a record on line 5 whose own key is `line-3` is a bad line, whatever line 3 turns out to be
(it may be a bad line keyed `line-3` that is only read later). Own keys that pass are checked
against each other in a KeySet; `line-N` keys are unique by their line number and need no entry.
"""

from __future__ import annotations

import mmap
import re
from typing import Any


class KeySet:
    """The record keys seen so far, as 64-bit hashes in one open-addressing array.

    8–20 bytes a key (grown at 80 % full) instead of ~100 for a set of str, so memory stays flat on files of
    millions of records. A job reserves room for its file's lines up front (`reserve`): no growth
    then, whose rehash holds the old table and the new at once. Each table is an anonymous mapping
    of its own, given back to the system when outgrown. Two different keys share a hash with odds
    of about n²/2⁶⁵ (1 in 10⁸ at a million keys); the price of that is one record reported as a
    duplicate key.
    """

    __slots__ = ("table", "mask", "n", "_map")

    def __init__(self, capacity: int = 1024) -> None:
        self._map, self.table = _zeros(capacity)
        self.mask = capacity - 1
        self.n = 0

    def reserve(self, keys: int) -> None:
        """Make room for this many keys in all (a file's line count) without growing later."""
        size = self.mask + 1
        while keys * 5 > (size - 1) * 4:
            size *= 2
        if size > self.mask + 1:
            self._grow(size)

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
                if self.n * 5 > mask * 4:  # linear probing on 64-bit hashes stays short up to 80 % full
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

    def _grow(self, size: int = 0) -> None:
        old, old_map = self.table, self._map
        size = size or len(old) * 2
        self._map, self.table = _zeros(size)
        table = self.table
        self.mask = mask = size - 1
        for h in old:
            if h:
                i = h & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = h
        old.release()
        old_map.close()


def _zeros(slots: int) -> tuple[mmap.mmap, memoryview]:
    """A table of empty (zero) 64-bit slots, in a mapping of its own: the system's pages come
    zeroed, and are given back when it closes (a malloc'd table stays in the heap)."""
    m = mmap.mmap(-1, slots * 8)
    return m, memoryview(m).cast("q")


class BadKey(ValueError):
    """A record's own key that cannot be used; the message says why, for the error line."""


_LINE_KEY = re.compile(r"line-([1-9][0-9]*)")


def own_key(obj: dict[str, Any], line: int) -> str | None:
    """A line's own key: `custom_id`, else `id`; None when it has neither.

    Raises BadKey for an empty key, and for a `line-N` key on any line but N.
    """
    field = "custom_id"
    v = obj.get(field)
    if v is None:
        field = "id"
        v = obj.get(field)
        if v is None:
            return None
    key = v if type(v) is str else str(v)
    if not key:  # replacing it would quietly unhook the answer from the user's record
        raise BadKey(f"empty {field}")
    if key[:5] == "line-" and (m := _LINE_KEY.fullmatch(key)) and int(m[1]) != line:
        raise BadKey(f"{field} {key!r} is kept for line {m[1]} (a key line-N belongs to line N)")
    return key


def record_key(obj: dict[str, Any], line: int) -> str:
    """A line's key: `custom_id`, else `id`, else `line-N`; raises BadKey as own_key does."""
    return own_key(obj, line) or f"line-{line}"
