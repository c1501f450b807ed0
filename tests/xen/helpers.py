"""Shared helpers for the hypervisor tests: a guest frame and a booted host."""

from __future__ import annotations

import hashlib

from kmodemu.machine.definition import MachineDef
from kmodemu.machine.machine import Machine
from kmodemu.xen import abi
from kmodemu.xen.hypervisor import Hypervisor

MB = 1 << 20


class Frame:
    """A guest page as the hypercall sees it: bytes in, bytes out."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | None = None):
        self.data = data


def page(tag: int, fill: int | None = None) -> bytes:
    """A 4 KiB page unique to ``tag`` (incompressible unless ``fill`` is given)."""
    if fill is not None:
        return bytes([fill]) * abi.PAGE_SIZE
    seed = hashlib.sha256(tag.to_bytes(8, "little")).digest()
    out = bytearray()
    while len(out) < abi.PAGE_SIZE:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[: abi.PAGE_SIZE])


def host(mem_mb: int = 256, cmdline: str = "tmem") -> Hypervisor:
    return Hypervisor(mem_mb * MB, cmdline)


def new_pool(hv: Hypervisor, dom, *, persistent: bool = False, shared: bool = False,
             uuid: tuple[int, int] = (0, 0)) -> int:
    return hv.tmem_op(dom, abi.TmemOp(abi.TMEM_NEW_POOL, uuid=uuid,
                                      flags=abi.pool_flags(persistent, shared)))


def put(hv: Hypervisor, dom, pool: int, oid, index: int, data: bytes) -> int:
    return hv.tmem_op(dom, abi.TmemOp(abi.TMEM_PUT_PAGE, pool, oid=oid, index=index,
                                      gmfn=Frame(data)))


def get(hv: Hypervisor, dom, pool: int, oid, index: int) -> tuple[int, bytes | None]:
    f = Frame()
    rc = hv.tmem_op(dom, abi.TmemOp(abi.TMEM_GET_PAGE, pool, oid=oid, index=index, gmfn=f))
    return rc, f.data


def flush(hv: Hypervisor, dom, pool: int, oid, index: int) -> int:
    return hv.tmem_op(dom, abi.TmemOp(abi.TMEM_FLUSH_PAGE, pool, oid=oid, index=index))


def flush_obj(hv: Hypervisor, dom, pool: int, oid) -> int:
    return hv.tmem_op(dom, abi.TmemOp(abi.TMEM_FLUSH_OBJECT, pool, oid=oid))


def balanced(hv: Hypervisor) -> bool:
    return hv.accounting().balanced


# -- a booted host driven by console commands --------------------------------------------

def xen_host(mem: str = "512M", xen: str = "tmem") -> Machine:
    """A Xen host machine (``boot --xen``), its hypervisor booted with ``xen``."""
    return Machine(MachineDef(mem=mem, xen=True, xen_cmdline=xen))


def ok(m: Machine, *argv: str) -> str:
    """Run a host command that must succeed; its stdout."""
    rc, out, err = m.capture(list(argv))
    assert rc == 0, (argv, out, err)
    return out


def g(m: Machine, name: str, *argv: str) -> str:
    """Run a command in guest ``name`` (``xen-guest NAME …``) that must succeed."""
    return ok(m, "xen-guest", name, *argv)
