"""Compressors by name, as zcache's ``zcache_comp_name`` picks a crypto "comp" algorithm.

Each compressor owns its codec contexts and reuses them for every page:
creating a zstd context per call costs 2-4x the work itself.  A name that is
unknown, or whose Python package is missing, raises ``LookupError``; the module
glue turns that into the kernel's load failure (``zcache_comp_init``).
"""

from __future__ import annotations

import zlib
from typing import Callable

#: zstd level used when the name is plain ``zstd``
ZSTD_DEFAULT_LEVEL = 3
#: the kernel's crypto deflate uses a raw stream with an 11-bit window
DEFLATE_WBITS = -11
DEFLATE_LEVEL = 6


#: what a compressor's ``decompress`` takes: the bytes, or a copy or view of a frame's
Decompress = Callable[[bytes | bytearray | memoryview], bytes]


class Compressor:
    """A named codec: ``compress(bytes) -> bytes`` and ``decompress(buffer) -> bytes``.

    ``compress``/``decompress`` are plain attributes bound to reused contexts,
    so a hot path can fetch them once and call them without extra dispatch.
    ``decompress`` accepts any buffer (bytes, or a bytearray copy or memoryview of a frame).
    """

    __slots__ = ("name", "compress", "decompress")

    def __init__(self, name: str, compress: Callable[[bytes], bytes],
                 decompress: Decompress):
        self.name = name
        self.compress = compress
        self.decompress = decompress

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Compressor {self.name}>"


def _zstd(level: int) -> Compressor:
    import zstandard

    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
    dctx = zstandard.ZstdDecompressor()
    name = "zstd" if level == ZSTD_DEFAULT_LEVEL else f"zstd-{level}"
    return Compressor(name, cctx.compress, dctx.decompress)


def _lz4() -> Compressor:
    import lz4.block as block

    lz4_compress = block.compress
    lz4_decompress = block.decompress

    def compress(data: bytes) -> bytes:
        return lz4_compress(data, store_size=True)

    return Compressor("lz4", compress, lz4_decompress)


def _lzo() -> Compressor:
    import lzo  # python-lzo, optional

    return Compressor("lzo", lzo.compress, lzo.decompress)


def _deflate() -> Compressor:
    zcompress = zlib.compress
    zdecompress = zlib.decompress

    def compress(data: bytes) -> bytes:
        return zcompress(data, DEFLATE_LEVEL, DEFLATE_WBITS)

    def decompress(data) -> bytes:
        return zdecompress(data, DEFLATE_WBITS)

    return Compressor("deflate", compress, decompress)


_FACTORIES: dict[str, Callable[[], Compressor]] = {
    "zstd": lambda: _zstd(ZSTD_DEFAULT_LEVEL),
    "lz4": _lz4,
    "lzo": _lzo,
    "deflate": _deflate,
}


def get_compressor(name: str) -> Compressor:
    """A fresh compressor (own contexts) for ``name``; ``zstd-N`` picks a zstd level.

    Raises ``LookupError`` when the name is unknown or its package is missing.
    """
    if not isinstance(name, str):
        raise LookupError(f"compressor name must be a string, not {name!r}")
    factory = _FACTORIES.get(name)
    if factory is None and name.startswith("zstd-"):
        try:
            level = int(name[5:])
        except ValueError:
            raise LookupError(f"{name} not supported") from None
        factory = lambda: _zstd(level)  # noqa: E731
    if factory is None:
        raise LookupError(f"{name} not supported")
    try:
        return factory()
    except ImportError as exc:
        raise LookupError(f"{name} not supported ({exc})") from None
    except Exception as exc:  # e.g. a zstd level out of range
        raise LookupError(f"{name} not supported ({exc})") from None


def available() -> list[str]:
    """The plain names (no zstd levels) whose packages import on this machine."""
    names = []
    for name in _FACTORIES:
        try:
            get_compressor(name)
        except LookupError:
            continue
        names.append(name)
    return names
