"""Page contents with labelled compressibility, generated deterministically.

A file or a process names a *content kind* and a seed; page ``i`` is then a
pure function of (kind, seed, i), so "disk" never stores generated data and a
reader can verify every byte it gets back. Kinds:

- ``zero``: all zero bytes (zcache 3.10 stores these without a zbud page);
- ``same``: one repeated 8-byte word (zswap's later "same-filled" pages);
- ``text``: English-like words (compresses to roughly 40%);
- ``binary``: executable-like data: small integers, pointers, zero runs (≈30%);
- ``random``: incompressible bytes;
- ``mixed``: each page one of the above (40% text, 30% binary, 15% zero, 15% random);
- ``host:PATH``: the bytes of a real file (read once, when the file is made).
"""

from __future__ import annotations

import functools
import itertools
import random
from typing import Callable

from kmodemu.mm.page import PAGE_SIZE

KINDS = ("zero", "same", "text", "binary", "random", "mixed")
#: what a ``mixed`` page is, by share: like a desktop's memory, mostly compressible
MIXED = (("text", 40), ("binary", 30), ("zero", 15), ("random", 15))
ZERO_PAGE = bytes(PAGE_SIZE)
_BLOCK = 256 * 1024

_SYLLABLES = ("an", "ber", "cal", "de", "el", "for", "ga", "hin", "in", "jo", "ker", "la", "men",
              "nel", "o", "per", "qua", "ri", "sto", "tion", "u", "ver", "wel", "x", "yon", "ze")


def _mix(seed: int, index: int) -> int:
    """A 64-bit hash of (seed, index): splitmix64's finaliser."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return z ^ (z >> 31)


class Corpus:
    """Per-kernel source blocks for text and binary pages, built from a seed on first use."""

    def __init__(self, seed: int):
        self.seed = seed
        self._text: bytes | None = None
        self._binary: bytes | None = None

    @property
    def text(self) -> bytes:
        if self._text is None:
            self._text = self._text_block(random.Random(self.seed))
        return self._text

    @property
    def binary(self) -> bytes:
        if self._binary is None:
            self._binary = self._binary_block(random.Random(self.seed + 1))
        return self._binary

    @staticmethod
    def _text_block(rng: random.Random) -> bytes:
        words = ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(2000)]
        cum = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(words))))  # Zipf-like
        stream = rng.choices(words, cum_weights=cum, k=_BLOCK // 3)
        out: list[str] = []
        size = pos = 0
        while size < _BLOCK + PAGE_SIZE:
            n = rng.randint(6, 18)
            line = " ".join(stream[pos:pos + n]).capitalize() + (".\n" if rng.random() < 0.2 else ". ")
            pos = (pos + n) % (len(stream) - 20)
            out.append(line)
            size += len(line)
        return "".join(out).encode()[: _BLOCK + PAGE_SIZE]

    @staticmethod
    def _binary_block(rng: random.Random) -> bytes:
        out = bytearray()
        base = 0xFFFFFFFF81000000
        while len(out) < _BLOCK + PAGE_SIZE:
            r = rng.random()
            if r < 0.25:
                out += bytes(rng.choice((8, 16, 32, 64)))                       # padding
            elif r < 0.55:
                out += (base + rng.randrange(0, 1 << 20, 8)).to_bytes(8, "little")  # pointers
            elif r < 0.8:
                out += rng.randrange(0, 256).to_bytes(4, "little")              # small ints
            else:
                out += bytes((0x48, 0x89, rng.randrange(256), 0xE8)) + rng.randbytes(4)  # code-ish
        return bytes(out[: _BLOCK + PAGE_SIZE])

    def page(self, kind: str, seed: int, index: int) -> bytes:
        """Page ``index`` of content ``kind`` with ``seed`` (4096 bytes)."""
        if kind == "zero":
            return ZERO_PAGE
        h = _mix(seed, index)
        if kind == "text":
            off = h % _BLOCK
            return self.text[off:off + PAGE_SIZE]
        if kind == "binary":
            off = (h % (_BLOCK // 8)) * 8
            return self.binary[off:off + PAGE_SIZE]
        if kind == "same":
            return (h & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") * (PAGE_SIZE // 8)
        if kind == "random":
            return random.Random(h).randbytes(PAGE_SIZE)
        if kind == "mixed":
            pick = h % 100
            for sub, share in MIXED:
                if pick < share:
                    return self.page(sub, seed ^ 0x5A5A, index)
                pick -= share
        raise ValueError(f"unknown content kind {kind!r}")


def _host_page(data: bytes, index: int) -> bytes:
    """Page ``index`` of a host file's bytes, the tail zero-filled as the page cache reads it."""
    chunk = data[index * PAGE_SIZE:(index + 1) * PAGE_SIZE]
    return chunk if len(chunk) == PAGE_SIZE else chunk + bytes(PAGE_SIZE - len(chunk))


class Content:
    """What a file or an anonymous region holds: a generator or a host file's bytes."""

    __slots__ = ("kind", "seed", "data", "_page")

    def __init__(self, corpus: Corpus, kind: str, seed: int, data: bytes | None = None):
        self.kind = kind
        self.seed = seed
        self.data = data
        if data is not None:
            self._page: Callable[[int], bytes] = functools.partial(_host_page, data)
        else:
            if kind not in KINDS:
                raise ValueError(f"unknown content kind {kind!r}")
            self._page = functools.partial(corpus.page, kind, seed)

    def page(self, index: int) -> bytes:
        return self._page(index)

    @property
    def label(self) -> str:
        return self.kind


def parse_content(spec: str) -> tuple[str, str | None]:
    """``text`` → ("text", None); ``host:/etc/services`` → ("host", "/etc/services")."""
    if spec.startswith("host:"):
        path = spec[5:]
        if not path:
            raise ValueError("host: needs a path")
        return "host", path
    if spec not in KINDS:
        raise ValueError(f"unknown content {spec!r} (one of {', '.join(KINDS)}, host:PATH)")
    return spec, None
