"""kmod's binary trie index (``modules.*.bin``): writer and reader.

We write exactly the bytes depmod writes (magic 0xB007F457, version 2.1,
post-order radix trie with per-key value lists sorted by priority), so the
real modprobe can use a tree our depmod indexed and vice versa.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Iterator

from . import fnmatch as _fn

MAGIC = 0xB007F457
VERSION = 0x00020001
F_PREFIX = 0x80000000
F_VALUES = 0x40000000
F_CHILDS = 0x20000000
F_MASK = 0x0FFFFFFF

Value = tuple[int, str]  # (priority, value)
_WILD_BYTES = b"*?["  # the children libkmod tries as patterns, in its order


class IndexError_(Exception):
    """The file is not a kmod index."""


@dataclass
class IndexBuilder:
    """Collects key → values, then serialises the radix trie depmod would."""

    entries: dict[bytes, list[Value]] = field(default_factory=dict)

    def insert(self, key: str, value: str, priority: int) -> bool:
        """Add a value; returns True if the same value was already there."""
        vals = self.entries.setdefault(key.encode("utf-8", "surrogateescape"), [])
        duplicate = any(v == value for _, v in vals)
        pos = 0
        while pos < len(vals) and vals[pos][0] < priority:
            pos += 1
        vals.insert(pos, (priority, value))
        return duplicate

    def to_bytes(self) -> bytes:
        out = bytearray(struct.pack(">III", MAGIC, VERSION, 0))
        keys = sorted(self.entries)
        root = self._write(out, keys, 0, len(keys), 0, top=True)
        struct.pack_into(">I", out, 8, root)
        return bytes(out)

    def _write(self, out: bytearray, keys: list[bytes], lo: int, hi: int, depth: int,
               top: bool = False) -> int:
        # keys[lo:hi] share keys[lo][:depth]; this node covers them
        if lo == hi:  # the root of an empty index: a bare node
            return len(out)
        first, last = keys[lo], keys[hi - 1]
        # longest common prefix of the sorted range = lcp(first, last)
        end = depth
        limit = 0 if top else min(len(first), len(last))  # the root never has a prefix
        while end < limit and first[end] == last[end]:
            end += 1
        prefix = first[depth:end]
        values: list[Value] = []
        i = lo
        if len(keys[i]) == end:
            values = self.entries[keys[i]]
            i += 1
        children: dict[int, int] = {}
        while i < hi:
            ch = keys[i][end]
            j = i + 1
            while j < hi and keys[j][end] == ch:
                j += 1
            children[ch] = self._write(out, keys, i, j, end + 1)
            i = j
        offset = len(out)
        if prefix:
            out += prefix + b"\0"
            offset |= F_PREFIX
        if children:
            cfirst, clast = min(children), max(children)
            out += bytes((cfirst, clast))
            for c in range(cfirst, clast + 1):
                out += struct.pack(">I", children.get(c, 0))
            offset |= F_CHILDS
        if values:
            out += struct.pack(">I", len(values))
            for prio, val in values:
                out += struct.pack(">I", prio) + val.encode("utf-8", "surrogateescape") + b"\0"
            offset |= F_VALUES
        return offset


class Index:
    """A read-only view of one ``.bin`` index."""

    def __init__(self, data: bytes):
        if len(data) < 12:
            raise IndexError_("short index")
        magic, version, root = struct.unpack_from(">III", data, 0)
        if magic != MAGIC or (version >> 16) != (VERSION >> 16):
            raise IndexError_("bad magic or version")
        self.data = data
        self.root = root
        self._all: dict[str, list[Value]] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "Index | None":
        try:
            with open(path, "rb") as fh:
                return cls(fh.read())
        except (OSError, IndexError_):
            return None

    def _node(self, off: int) -> tuple[bytes, int, list[int], list[Value]]:
        data = self.data
        pos = off & F_MASK
        prefix = b""
        if off & F_PREFIX:
            end = data.index(b"\0", pos)
            prefix = data[pos:end]
            pos = end + 1
        first = 0
        kids: list[int] = []
        if off & F_CHILDS:
            first, last = data[pos], data[pos + 1]
            pos += 2
            n = last - first + 1
            kids = list(struct.unpack_from(">%dI" % n, data, pos))
            pos += 4 * n
        values: list[Value] = []
        if off & F_VALUES:
            (count,) = struct.unpack_from(">I", data, pos)
            pos += 4
            for _ in range(count):
                (prio,) = struct.unpack_from(">I", data, pos)
                end = data.index(b"\0", pos + 4)
                values.append((prio, data[pos + 4:end].decode("utf-8", "surrogateescape")))
                pos = end + 1
        return prefix, first, kids, values

    def search(self, key: str) -> list[Value]:
        """Exact lookup by walking the trie (no full parse)."""
        k = key.encode("utf-8", "surrogateescape")
        off = self.root
        i = 0
        while True:
            prefix, first, kids, values = self._node(off)
            if k[i:i + len(prefix)] != prefix:
                return []
            i += len(prefix)
            if i == len(k):
                return values
            ch = k[i]
            if not kids or ch < first or ch >= first + len(kids) or not kids[ch - first]:
                return []
            off = kids[ch - first]
            i += 1

    def items(self) -> Iterator[tuple[str, list[Value]]]:
        """Every key with its values, in key (byte) order."""
        if self._all is None:
            out: dict[str, list[Value]] = {}
            stack: list[tuple[int, bytes]] = [(self.root, b"")]
            while stack:
                off, acc = stack.pop()
                prefix, first, kids, values = self._node(off)
                acc = acc + prefix
                if values:
                    out[acc.decode("utf-8", "surrogateescape")] = values
                for idx in range(len(kids) - 1, -1, -1):
                    if kids[idx]:
                        stack.append((kids[idx], acc + bytes((first + idx,))))
            self._all = dict(sorted(out.items(), key=lambda kv: kv[0].encode("utf-8", "surrogateescape")))
        return iter(self._all.items())

    def search_wild(self, key: str) -> list[Value]:
        """Values of every key that matches ``key``, found as libkmod's trie walk finds them.

        The walk (index_mm_searchwild_node/_all in libkmod-index.c) descends
        the trie along ``key``; at each node it first tries the ``*``, ``?``
        and ``[`` children as patterns against the rest of ``key``, then
        follows the next character of ``key`` itself. A value is reported once
        per path that reaches it, so a key that is itself a pattern can meet
        the same entry twice (kmod 30 prints ``sbshc`` twice for
        ``acpi*:ACPI0001:*``) while a pattern that matches only its own text
        (``block-major-1-*``) is reported once. Order is by priority, later
        finds first among equals, as add_value inserts.
        """
        k = key.encode("utf-8", "surrogateescape")
        found: list[Value] = []

        def add(vals: list[Value]) -> None:
            for prio, val in vals:
                pos = 0
                while pos < len(found) and found[pos][0] < prio:
                    pos += 1
                found.insert(pos, (prio, val))

        def matches(pattern: bytes, rest: bytes) -> bool:
            return _fn.fnmatch(pattern.decode("utf-8", "surrogateescape"),
                               rest.decode("utf-8", "surrogateescape"))

        def child(first: int, kids: list[int], ch: int) -> int:
            if first <= ch < first + len(kids):
                return kids[ch - first]
            return 0

        def walk_all(off: int, j: int, buf: bytes, rest: bytes) -> None:
            # below a wildcard: every key of the subtree is a pattern for ``rest``
            prefix, first, kids, values = self._node(off)
            buf += prefix[j:]
            for n, kid in enumerate(kids):
                if kid:
                    walk_all(kid, 0, buf + bytes((first + n,)), rest)
            if values and matches(buf, rest):
                add(values)

        off, i = self.root, 0
        while True:
            prefix, first, kids, values = self._node(off)
            for j, ch in enumerate(prefix):
                if ch in _WILD_BYTES:
                    walk_all(off, j, b"", k[i + j:])
                    return found
                if i + j >= len(k) or ch != k[i + j]:
                    return found
            i += len(prefix)
            for w in _WILD_BYTES:
                kid = child(first, kids, w)
                if kid:
                    walk_all(kid, 0, bytes((w,)), k[i:])
            if i == len(k):
                add(values)
                return found
            off = child(first, kids, k[i])
            if not off:
                return found
            i += 1
