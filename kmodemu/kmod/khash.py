"""The iteration order of kmod's string hash table.

depmod writes ``modules.symbols`` by walking its symbol hash table, and keeps
modules missing from ``modules.order`` in the order of its name table; to
reproduce those files byte for byte we need the same bucket order: Paul
Hsieh's SuperFastHash, power-of-two buckets, entries sorted inside a bucket.
"""

from __future__ import annotations

from typing import Iterable, TypeVar

T = TypeVar("T")
_M = 0xFFFFFFFF


def superfast(key: bytes) -> int:
    """SuperFastHash of ``key`` (32-bit, little-endian 16-bit reads)."""
    length = len(key)
    h = length
    rem = length & 3
    pos = 0
    for _ in range(length >> 2):
        h = (h + (key[pos] | key[pos + 1] << 8)) & _M
        tmp = (((key[pos + 2] | key[pos + 3] << 8) << 11) ^ h) & _M
        h = ((h << 16) & _M) ^ tmp
        pos += 4
        h = (h + (h >> 11)) & _M
    if rem == 3:
        h = (h + (key[pos] | key[pos + 1] << 8)) & _M
        h ^= (h << 16) & _M
        c = key[pos + 2]
        if c >= 0x80:
            c -= 0x100
        h ^= (c << 18) & _M
        h = (h + (h >> 11)) & _M
    elif rem == 2:
        h = (h + (key[pos] | key[pos + 1] << 8)) & _M
        h ^= (h << 11) & _M
        h = (h + (h >> 17)) & _M
    elif rem == 1:
        c = key[pos]
        if c >= 0x80:
            c -= 0x100
        h = (h + c) & _M
        h ^= (h << 10) & _M
        h = (h + (h >> 1)) & _M
    h ^= (h << 3) & _M
    h = (h + (h >> 5)) & _M
    h ^= (h << 4) & _M
    h = (h + (h >> 17)) & _M
    h ^= (h << 25) & _M
    h = (h + (h >> 6)) & _M
    return h


def _pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


def hash_order(keys: Iterable[str], n_buckets: int) -> list[str]:
    """``keys`` (unique) in the order kmod's hash_iter would visit them."""
    mask = _pow2(n_buckets) - 1
    decorated = []
    for k in keys:
        b = k.encode("utf-8", "surrogateescape")
        decorated.append((superfast(b) & mask, b, k))
    decorated.sort(key=lambda t: (t[0], t[1]))
    return [k for _, _, k in decorated]
