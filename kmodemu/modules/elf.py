"""Reading ``.ko`` files: what kmod's ELF reader and modinfo extract.

``read_elf`` returns the raw facts (``.modinfo`` pairs, exported and undefined
symbols, signature); ``read_module`` turns them into a ``ModuleDecl`` the
loader can take. Compressed modules (``.ko.xz``, ``.ko.zst``) are unpacked in
memory. Anything that is not a well-formed ELF relocatable gives
``KernelError(ENOEXEC)``, like the kernel's ELF sanity checks.
"""

from __future__ import annotations

import errno
import lzma
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmodemu.errors import KernelError
from kmodemu.kernel.params import ParamSpec
from kmodemu.modules.declaration import ModuleDecl

from kmodemu.modules import signature as _sig

PLUGIN_SECTION = ".kmodemu"
STRING_MAXLEN = 1024     # module_param_string buffer size we assume for a .ko
ARRAY_MAX_COUNT = 32     # module_param_array capacity we assume for a .ko
PARAM_PERM = 0o444


@dataclass
class ElfInfo:
    """What kmod reads from one module file."""

    path: str
    modinfo: list[tuple[str, str]] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    crcs: dict[str, int] = field(default_factory=dict)
    #: undefined symbols with their binding: ("sym", weak?)
    undefined: list[tuple[str, bool]] = field(default_factory=list)
    #: ``__versions`` entries no undefined symbol refers to (module_layout…)
    versions_only: list[str] = field(default_factory=list)
    defined: set[str] = field(default_factory=set)
    plugin: str | None = None
    signature: _sig.SignatureInfo | None = None
    size: int = 0


#: the largest module image read or decompressed (a bound for /dev/zero and decompression bombs)
MAX_MODULE_BYTES = 64 << 20


def load_bytes(path: str | Path) -> bytes:
    """The module image, decompressed; OSError when the file cannot be read.

    Reading and decompression stop at MAX_MODULE_BYTES: a larger image is
    EFBIG (Linux would exhaust vmalloc space long before a real module got there).
    """
    p = str(path)
    with open(p, "rb") as fh:
        data = fh.read(MAX_MODULE_BYTES + 1)
    _bound(p, data)
    try:
        if p.endswith(".xz"):
            data = lzma.LZMADecompressor().decompress(data, max_length=MAX_MODULE_BYTES + 1)
        elif p.endswith(".zst"):
            import io

            import zstandard
            data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read(
                MAX_MODULE_BYTES + 1)
        elif p.endswith(".gz"):
            import zlib
            data = zlib.decompressobj(wbits=31).decompress(data, MAX_MODULE_BYTES + 1)
        else:
            return data
    except Exception as exc:  # corrupt archive: not a module
        raise KernelError(errno.ENOEXEC, f"{p}: cannot decompress") from exc
    _bound(p, data)
    return data


def _bound(path: str, data: bytes) -> None:
    if len(data) > MAX_MODULE_BYTES:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), path)


def _strings(blob: bytes) -> list[str]:
    return [s.decode("utf-8", "surrogateescape") for s in blob.split(b"\0") if s]


class _Section:
    __slots__ = ("name", "type", "offset", "size", "link")

    def __init__(self, name: str, type_: int, offset: int, size: int, link: int):
        self.name, self.type, self.offset, self.size, self.link = name, type_, offset, size, link


def _sections(body: bytes, path: str) -> tuple[list[_Section], bool, bool]:
    """Section headers of an ELF relocatable: (sections, is64, little_endian)."""
    if len(body) < 52 or body[:4] != b"\x7fELF" or body[4] not in (1, 2) or body[5] not in (1, 2):
        raise KernelError(errno.ENOEXEC, f"{path}: not an ELF file")
    is64 = body[4] == 2
    end = "<" if body[5] == 1 else ">"
    (e_type,) = struct.unpack_from(end + "H", body, 16)
    if is64:
        (shoff,) = struct.unpack_from(end + "Q", body, 40)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", body, 58)
        shfmt = end + "IIQQQQIIQQ"
    else:
        (shoff,) = struct.unpack_from(end + "I", body, 32)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", body, 46)
        shfmt = end + "IIIIIIIIII"
    if e_type != 1:  # ET_REL
        raise KernelError(errno.ENOEXEC, f"{path}: not a relocatable object")
    if (shentsize != struct.calcsize(shfmt) or shoff + shnum * shentsize > len(body)
            or shstrndx >= shnum):
        raise KernelError(errno.ENOEXEC, f"{path}: bad section headers")
    raw = []
    for i in range(shnum):
        f = struct.unpack_from(shfmt, body, shoff + i * shentsize)
        # name, type, flags, addr, offset, size, link, info, align, entsize
        raw.append((f[0], f[1], f[4], f[5], f[6]))
    _, _, stroff, strsize, _ = raw[shstrndx]
    shstr = body[stroff:stroff + strsize]
    secs = []
    for name_off, type_, off, size, link in raw:
        if type_ != 8 and off + size > len(body):  # SHT_NOBITS has no bytes
            raise KernelError(errno.ENOEXEC, f"{path}: section beyond end of file")
        nend = shstr.find(b"\0", name_off)
        name = shstr[name_off:nend if nend >= 0 else len(shstr)].decode("utf-8", "replace")
        secs.append(_Section(name, type_, off, size, link))
    return secs, is64, end == "<"


def _read_symtab(raw: bytes, strtab: bytes, is64: bool, little: bool, info: ElfInfo) -> None:
    """Undefined and defined symbols; exports from ``__crc_`` symbols when present."""
    end = "<" if little else ">"
    fmt = end + ("IBBHQQ" if is64 else "IIIBBH")
    entsize = struct.calcsize(fmt)
    crc_exports: list[str] = []
    entries = struct.iter_unpack(fmt, raw[:len(raw) - len(raw) % entsize])
    next(entries, None)  # entry 0 is the null symbol
    for ent in entries:
        if is64:
            name_off, st_info, _other, shndx, value, _size = ent
        else:
            name_off, value, _size, st_info, _other, shndx = ent
        if not name_off:
            continue
        nend = strtab.find(b"\0", name_off)
        sname = strtab[name_off:nend if nend >= 0 else len(strtab)].decode("utf-8", "surrogateescape")
        if not sname:
            continue
        if shndx == 0:  # SHN_UNDEF: a dependency (weak ones never fail a load)
            info.undefined.append((sname, (st_info >> 4) == 2))
            continue
        info.defined.add(sname)
        if sname.startswith("__crc_"):
            info.crcs[sname[6:]] = value
            crc_exports.append(sname[6:])
    if crc_exports:  # modversions: kmod trusts __crc_* over __ksymtab_strings
        info.exports = crc_exports


def _read_versions(blob: bytes, little: bool, is64: bool, info: ElfInfo) -> None:
    """``__versions`` names not already undefined symbols (kmod adds them as deps)."""
    used = {s for s, _ in info.undefined}
    crclen = 8 if is64 else 4
    for off in range(0, len(blob) - len(blob) % 64, 64):
        raw = blob[off + crclen:off + 64]
        name = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if name and name not in used:
            info.versions_only.append(name)


def parse_elf(data: bytes, path: str = "") -> ElfInfo:
    """Parse a module image (already decompressed)."""
    body, sig = _sig.split_signature(data)
    info = ElfInfo(path=path, signature=sig, size=len(data))
    ksymtab_strings: list[str] = []
    versions = b""
    try:
        secs, is64, little = _sections(body, path)
        for sec in secs:
            blob = body[sec.offset:sec.offset + sec.size] if sec.type != 8 else b""
            if sec.name == ".modinfo":
                for entry in _strings(blob):
                    key, sep, value = entry.partition("=")
                    info.modinfo.append((key, value if sep else ""))
            elif sec.name == "__ksymtab_strings":
                ksymtab_strings = _strings(blob)
            elif sec.name == "__versions":
                versions = blob
            elif sec.name == PLUGIN_SECTION:
                info.plugin = blob.rstrip(b"\0").decode("utf-8", "replace") or None
            elif sec.type == 2 and sec.link < len(secs):  # SHT_SYMTAB
                strsec = secs[sec.link]
                _read_symtab(blob, body[strsec.offset:strsec.offset + strsec.size], is64, little, info)
        if versions:
            _read_versions(versions, little, is64, info)
    except struct.error as exc:
        raise KernelError(errno.ENOEXEC, f"{path}: truncated ELF") from exc
    if not info.exports:
        info.exports = ksymtab_strings
    return info


def read_elf(path: str | Path) -> ElfInfo:
    """Read and parse a module file (ENOENT/EACCES as OSError, bad ELF as ENOEXEC)."""
    return parse_elf(load_bytes(path), str(path))


def _noop(_ctx: Any) -> None:
    """What a .ko's init/exit does in the emulator: nothing (no code runs)."""
    return None


def _param_specs(pairs: list[tuple[str, str]]) -> tuple[Any, ...]:
    """ParamSpecs from merged parm/parmtype entries, in first-appearance order."""
    order: list[str] = []
    desc: dict[str, str] = {}
    ptype: dict[str, str] = {}
    for key, value in pairs:
        if key not in ("parm", "parmtype"):
            continue
        name, sep, rest = value.partition(":")
        if not sep:
            continue
        if name not in desc and name not in ptype:
            order.append(name)
        (desc if key == "parm" else ptype)[name] = rest
    specs = []
    for name in order:
        specs.append(make_param_spec(name, ptype.get(name), desc.get(name, "")))
    return tuple(specs)


def make_param_spec(name: str, ptype: str | None, desc: str) -> Any:
    """One ParamSpec: a described parameter without a type is a callback one."""
    if ptype is None:
        return ParamSpec(name, "charp", PARAM_PERM, desc, callback=True)
    kwargs: dict[str, Any] = {}
    if ptype == "string":
        kwargs["maxlen"] = STRING_MAXLEN
    elif ptype.startswith("array of "):
        kwargs["max_count"] = ARRAY_MAX_COUNT
    return ParamSpec(name, ptype, PARAM_PERM, desc, **kwargs)


def decl_from_info(info: ElfInfo) -> ModuleDecl:
    """A ModuleDecl for what the file declares; loading runs no code."""
    mi = info.modinfo
    first: dict[str, str] = {}
    aliases: list[str] = []
    for k, v in mi:
        first.setdefault(k, v)
        if k == "alias":
            aliases.append(v)
    name = first.get("name") or _modname_from_path(info.path)
    depends = tuple(d for d in first.get("depends", "").split(",") if d)
    requires = tuple(s for s, weak in info.undefined if not weak)
    try:
        params = _param_specs(mi)
    except ImportError:  # kernel params not available (tools without a machine)
        params = ()
    return ModuleDecl(
        name=name,
        description=first.get("description", ""),
        license=first.get("license", ""),
        author=first.get("author", ""),
        version=first.get("version", ""),
        params=params,
        aliases=tuple(aliases),
        softdeps=first.get("softdep", ""),
        depends=depends,
        exports=tuple(info.exports),
        requires=requires,
        staging=first.get("staging") == "Y",
        out_of_tree=first.get("intree") != "Y",
        init=_noop if "init_module" in info.defined else None,
        exit=_noop if "cleanup_module" in info.defined else None,
        modinfo=tuple(mi),
        origin=info.path,
        plugin=info.plugin,
        size=_core_size(info),
    )


def _core_size(info: ElfInfo) -> int:
    """A page-rounded size, like the kernel's core layout of a small module."""
    return max(4096, (info.size + 4095) // 4096 * 4096)


def _modname_from_path(path: str) -> str:
    """``.../xen-tmem.ko.xz`` -> ``xen_tmem`` (kbuild's KBUILD_MODNAME)."""
    return Path(path).name.split(".", 1)[0].replace("-", "_")


def read_module(path: str | Path) -> ModuleDecl:
    """The declaration of a module file (plain, .xz or .zst)."""
    return decl_from_info(read_elf(path))
