"""Deterministic 4 KiB test pages of every compressibility class, from a seed.

zero, same-filled (one repeated 8-byte word), text (words and lines), binary
(structured records with small integers, like ELF tables), random (does not
compress; zstd stores it raw and zbud refuses it).
"""

from __future__ import annotations

import random
import struct

PAGE_SIZE = 4096
CLASSES = ("zero", "same", "text", "binary", "random")

_WORDS = (
    "the page cache keeps clean file pages while memory lasts and cleancache "
    "catches them when they are dropped frontswap does the same for anonymous "
    "pages on their way to a swap device zcache compresses both into zbud frames"
).split()


def zero_page() -> bytes:
    return bytes(PAGE_SIZE)


def same_page(rng: random.Random) -> bytes:
    word = rng.getrandbits(64).to_bytes(8, "little")
    if word == bytes(8):
        word = b"\x01" + word[1:]
    return word * (PAGE_SIZE // 8)


def text_page(rng: random.Random) -> bytes:
    out = []
    size = 0
    while size < PAGE_SIZE:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))
        line = f"{rng.randint(1, 9999):5d}: {line}\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:PAGE_SIZE]


def binary_page(rng: random.Random) -> bytes:
    rec = struct.Struct("<IIHHQ")
    base = rng.getrandbits(32)
    out = bytearray()
    i = 0
    while len(out) < PAGE_SIZE:
        out += rec.pack(base + i * 24, rng.randint(0, 40), rng.choice((1, 2, 3, 17)),
                        i & 0xFFFF, rng.getrandbits(12))
        i += 1
    return bytes(out[:PAGE_SIZE])


def random_page(rng: random.Random) -> bytes:
    return rng.randbytes(PAGE_SIZE)


def page(kind: str, rng: random.Random) -> bytes:
    if kind == "zero":
        return zero_page()
    return {"same": same_page, "text": text_page, "binary": binary_page,
            "random": random_page}[kind](rng)


def corpus(n: int, seed: int = 1, kinds=CLASSES, weights=None) -> list[bytes]:
    """``n`` pages drawn from ``kinds`` (with ``weights``), reproducible from ``seed``."""
    rng = random.Random(seed)
    picks = rng.choices(kinds, weights=weights, k=n)
    return [page(kind, rng) for kind in picks]


def compressible(n: int, seed: int = 1) -> list[bytes]:
    """Pages every allocator accepts: text and binary only."""
    return corpus(n, seed, kinds=("text", "binary"))
