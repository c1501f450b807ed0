"""The tmem hypercall ABI (Xen ``public/tmem.h``, Linux ``include/xen/interface``).

Numbers and layouts a guest and the hypervisor agree on: hypercall 38, the
``struct tmem_op`` commands, the pool flag bits, the control sub-ops of the
toolstack, and tmem's two private error values. Kept apart from the
implementation so the guest shim and the hypervisor share one definition.
"""

from __future__ import annotations

__HYPERVISOR_tmem_op = 38
HYPERVISOR_TMEM_OP = __HYPERVISOR_tmem_op

TMEM_SPEC_VERSION = 1

# struct tmem_op.cmd
TMEM_CONTROL = 0
TMEM_NEW_POOL = 1
TMEM_DESTROY_POOL = 2
TMEM_NEW_PAGE = 3
TMEM_PUT_PAGE = 4
TMEM_GET_PAGE = 5
TMEM_FLUSH_PAGE = 6
TMEM_FLUSH_OBJECT = 7
TMEM_READ = 8
TMEM_WRITE = 9
TMEM_XCHG = 10
TMEM_AUTH = 101
TMEM_RESTORE_NEW = 102

CMD_NAMES = {
    TMEM_CONTROL: "TMEM_CONTROL", TMEM_NEW_POOL: "TMEM_NEW_POOL",
    TMEM_DESTROY_POOL: "TMEM_DESTROY_POOL", TMEM_NEW_PAGE: "TMEM_NEW_PAGE",
    TMEM_PUT_PAGE: "TMEM_PUT_PAGE", TMEM_GET_PAGE: "TMEM_GET_PAGE",
    TMEM_FLUSH_PAGE: "TMEM_FLUSH_PAGE", TMEM_FLUSH_OBJECT: "TMEM_FLUSH_OBJECT",
    TMEM_READ: "TMEM_READ", TMEM_WRITE: "TMEM_WRITE", TMEM_XCHG: "TMEM_XCHG",
    TMEM_AUTH: "TMEM_AUTH", TMEM_RESTORE_NEW: "TMEM_RESTORE_NEW",
}

# TMEM_NEW_POOL flags
TMEM_POOL_PERSIST = 1
TMEM_POOL_SHARED = 2
TMEM_POOL_PRECOMPRESSED = 4
TMEM_POOL_PAGESIZE_SHIFT = 4
TMEM_POOL_PAGESIZE_MASK = 0xF
TMEM_POOL_VERSION_SHIFT = 24
TMEM_POOL_VERSION_MASK = 0xFF
TMEM_POOL_RESERVED_BITS = 0x00FFFF00

# TMEM_CONTROL sub-ops
TMEMC_THAW = 0
TMEMC_FREEZE = 1
TMEMC_FLUSH = 2
TMEMC_DESTROY = 3
TMEMC_LIST = 4
TMEMC_SET_WEIGHT = 5
TMEMC_SET_CAP = 6
TMEMC_SET_COMPRESS = 7
TMEMC_QUERY_FREEABLE_MB = 8

# tmem's own return values (negated on return, like errnos)
EFROZEN = 1000
EEMPTY = 1001

#: cli_id meaning "every client" in TMEM_CONTROL and TMEM_AUTH
CLI_ID_NULL = 0xFFFF

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT


def pool_flags(persistent: bool, shared: bool, pageshift: int = PAGE_SHIFT,
               version: int = TMEM_SPEC_VERSION) -> int:
    """The flags word Linux's ``xen_tmem_new_pool`` builds."""
    flags = (TMEM_POOL_PERSIST if persistent else 0) | (TMEM_POOL_SHARED if shared else 0)
    flags |= ((pageshift - 12) & TMEM_POOL_PAGESIZE_MASK) << TMEM_POOL_PAGESIZE_SHIFT
    flags |= (version & TMEM_POOL_VERSION_MASK) << TMEM_POOL_VERSION_SHIFT
    return flags


def uuid_halves(uuid: bytes) -> tuple[int, int]:
    """A 16-byte uuid as the two u64 of ``u.new.uuid`` (lo = bytes 0-7, hi = 8-15)."""
    if len(uuid) != 16:
        raise ValueError("a tmem uuid is 16 bytes")
    return int.from_bytes(uuid[:8], "little"), int.from_bytes(uuid[8:], "little")


class TmemOp:
    """``struct tmem_op``: the one argument of the tmem hypercall.

    ``u.new`` (uuid, flags, arg1), ``u.gen`` (oid, index, offsets, len, the
    frame) and ``u.ctrl`` (subop, cli_id, arg1, arg2, buf) are flattened into
    one object, since Python needs no union; each command reads only its arm.
    The frame is the page's bytes in (``gmfn`` on a put) and a ``bytearray``
    the hypervisor fills on a get.
    """

    __slots__ = ("cmd", "pool_id", "uuid", "flags", "arg1", "oid", "index",
                 "tmem_offset", "pfn_offset", "len", "gmfn",
                 "subop", "cli_id", "arg2", "buf")

    def __init__(self, cmd: int, pool_id: int = 0, *, uuid: tuple[int, int] = (0, 0),
                 flags: int = 0, arg1: int = 0, oid: tuple[int, int, int] = (0, 0, 0),
                 index: int = 0, tmem_offset: int = 0, pfn_offset: int = 0,
                 len: int = PAGE_SIZE, gmfn=None, subop: int = 0,
                 cli_id: int = CLI_ID_NULL, arg2: int = 0, buf=None):
        self.cmd = cmd
        self.pool_id = pool_id
        self.uuid = uuid
        self.flags = flags
        self.arg1 = arg1
        self.oid = oid
        self.index = index
        self.tmem_offset = tmem_offset
        self.pfn_offset = pfn_offset
        self.len = len
        self.gmfn = gmfn
        self.subop = subop
        self.cli_id = cli_id
        self.arg2 = arg2
        self.buf = buf
