"""Writing a small ELF relocatable ``.ko`` for a Python plugin's declaration.

The file carries what kmod looks at — ``.modinfo``, ``__ksymtab_strings``
for exports, a symbol table with the undefined ``requires`` symbols and
``init_module``/``cleanup_module`` when the plugin has init/exit — plus a
``.kmodemu`` section naming the plugin. So depmod, modinfo and modprobe (ours
and the real kmod) handle plugin modules like any other module, and loading
the file hands the plugin's own declaration to the loader.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from kmodemu.modules.declaration import ModuleDecl
from kmodemu.modules.elf import PLUGIN_SECTION

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
STB_GLOBAL, STT_NOTYPE, STT_FUNC = 1, 0, 2
EM_X86_64 = 62


def plugin_name(decl: ModuleDecl) -> str:
    if decl.plugin:
        return decl.plugin
    if decl.origin.startswith("plugin:"):
        return decl.origin[len("plugin:"):]
    return decl.name


class _StrTab:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.offsets: dict[str, int] = {"": 0}

    def add(self, s: str) -> int:
        if s not in self.offsets:
            self.offsets[s] = len(self.data)
            self.data += s.encode("utf-8", "surrogateescape") + b"\0"
        return self.offsets[s]


def module_bytes(decl: ModuleDecl) -> bytes:
    """The ELF image for ``decl``."""
    modinfo = b"".join(f"{k}={v}".encode("utf-8", "surrogateescape") + b"\0"
                       for k, v in decl.modinfo_entries())
    funcs = list(decl.exports)
    if decl.init is not None:
        funcs.append("init_module")
    if decl.exit is not None:
        funcs.append("cleanup_module")
    text = b"\xc3" * max(1, len(funcs))  # one `ret` per defined function
    sections: list[tuple[str, int, int, bytes]] = [  # name, type, flags, data
        (".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text),
        (".modinfo", SHT_PROGBITS, SHF_ALLOC, modinfo),
    ]
    if decl.exports:
        sections.append(("__ksymtab_strings", SHT_PROGBITS, SHF_ALLOC,
                         b"".join(s.encode() + b"\0" for s in decl.exports)))
    sections.append((PLUGIN_SECTION, SHT_PROGBITS, 0, plugin_name(decl).encode() + b"\0"))
    text_index = 1
    strtab = _StrTab()
    syms = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)]
    for i, name in enumerate(funcs):
        syms.append(struct.pack("<IBBHQQ", strtab.add(name), (STB_GLOBAL << 4) | STT_FUNC, 0,
                                text_index, i, 1))
    for name in decl.requires:
        syms.append(struct.pack("<IBBHQQ", strtab.add(name), (STB_GLOBAL << 4) | STT_NOTYPE, 0,
                                0, 0, 0))
    symtab_index = len(sections) + 1
    sections.append((".symtab", SHT_SYMTAB, 0, b"".join(syms)))
    sections.append((".strtab", SHT_STRTAB, 0, bytes(strtab.data)))
    shstr = _StrTab()
    names = [shstr.add(n) for n, *_ in sections]
    shstr_name = shstr.add(".shstrtab")
    sections.append((".shstrtab", SHT_STRTAB, 0, bytes(shstr.data)))
    names.append(shstr_name)

    body = bytearray(64)
    offsets = []
    for _, _, _, data in sections:
        while len(body) % 8:
            body.append(0)
        offsets.append(len(body))
        body += data
    while len(body) % 8:
        body.append(0)
    shoff = len(body)
    shdrs = [b"\0" * 64]
    for i, (name, typ, flags, data) in enumerate(sections):
        link = info = 0
        entsize = 0
        align = 1
        if typ == SHT_SYMTAB:
            link = symtab_index + 1  # .strtab follows .symtab
            info = 1                 # first global symbol
            entsize = 24
            align = 8
        shdrs.append(struct.pack("<IIQQQQIIQQ", names[i], typ, flags, 0, offsets[i], len(data),
                                 link, info, align, entsize))
    body += b"".join(shdrs)
    ident = b"\x7fELF" + bytes((2, 1, 1, 0)) + b"\0" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 1, EM_X86_64, 1, 0, 0, shoff, 0, 64, 0, 0,
                                 64, len(sections) + 1, len(sections))
    body[:64] = header
    return bytes(body)


def write_module(decl: ModuleDecl, path: str | os.PathLike[str]) -> None:
    """Write ``decl`` as a ``.ko`` file at ``path`` (directories created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(module_bytes(decl))
