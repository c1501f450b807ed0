"""Isolation between domains (Xen's rules after XSA-15): what a guest that is not dom0 cannot do.

The toolstack's commands (TMEM_CONTROL, TMEM_AUTH, TMEM_RESTORE_NEW) are
dom0's: from another guest they return -EPERM and change nothing but the two
hypercall counters every call moves (Tt, and Te for an error). A put or get
whose guest frame is missing or not a whole page is a copy fault, -EFAULT,
counted in Cf. Pool ids are per client: a guest's pool 0 is its own, never
another guest's.
"""

from __future__ import annotations

import errno
import hashlib
import io

import pytest

from kmodemu.xen import abi
from kmodemu.xen.abi import CLI_ID_NULL, EEMPTY
from kmodemu.xen.xl import Xl

from .helpers import Frame, balanced, flush, flush_obj, get, host, new_pool, page, put

OA = (11, 22, 33)


def listing(hv) -> str:
    """``xl tmem-list -l -a`` as dom0's toolstack prints it."""
    out, err = io.StringIO(), io.StringIO()
    assert Xl(hv).run(["tmem-list", "-l", "-a"], out, err) == 0, err.getvalue()
    return out.getvalue()


def globals_of(text: str) -> dict[str, int]:
    line = next(l for l in text.splitlines() if l.startswith("G="))
    return {k: int(v) for k, v in (f.split(":") for f in line[2:].split(","))}


def without_op_counts(text: str) -> str:
    """The listing with the G line's Tt/Te (moved by every hypercall) blanked."""
    out = []
    for line in text.splitlines():
        if line.startswith("G="):
            line = ",".join(f for f in line.split(",")
                            if not f.startswith(("G=Tt:", "Te:")))
        out.append(line)
    return "\n".join(out)


def sha(data: bytes | None) -> str:
    assert data is not None
    return hashlib.sha256(data).hexdigest()


def two_guests():
    """Guest a with an ephemeral pool (0) and a persistent one (1) holding pages, and guest b."""
    hv = host(256, "tmem dom0_mem=64M")
    a = hv.domain_create("a", 4096, 4096 + 64)
    b = hv.domain_create("b", 4096, 4096 + 64)
    assert new_pool(hv, a) == 0
    assert new_pool(hv, a, persistent=True) == 1
    for i in range(8):
        assert put(hv, a, 0, OA, i, page(100 + i)) == 1
        assert put(hv, a, 1, OA, i, page(200 + i)) == 1
    return hv, a, b


def a_pages_intact(hv, a) -> None:
    """Every page a stored comes back with its sha256 (persistent first, it keeps them)."""
    for i in range(8):
        rc, data = get(hv, a, 1, OA, i)
        assert rc == 1 and sha(data) == sha(page(200 + i))
    for i in range(8):
        rc, data = get(hv, a, 0, OA, i)
        assert rc == 1 and sha(data) == sha(page(100 + i))


CONTROL_FROM_A_GUEST = [
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_FREEZE, cli_id=1),
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_FREEZE, cli_id=CLI_ID_NULL),
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_THAW, cli_id=CLI_ID_NULL),
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_DESTROY, cli_id=1),
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_FLUSH, cli_id=CLI_ID_NULL, arg1=1 << 20),
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_LIST, cli_id=CLI_ID_NULL, arg1=32768, arg2=1),
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_SET_WEIGHT, cli_id=1, arg1=1000),
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_SET_CAP, cli_id=1, arg1=5),
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_SET_COMPRESS, cli_id=1, arg1=1),
    abi.TmemOp(abi.TMEM_CONTROL, subop=abi.TMEMC_QUERY_FREEABLE_MB),
    abi.TmemOp(abi.TMEM_AUTH, uuid=(7, 8), flags=1, arg1=2),
    abi.TmemOp(abi.TMEM_AUTH, uuid=(7, 8), flags=1, arg1=CLI_ID_NULL),
    abi.TmemOp(abi.TMEM_RESTORE_NEW, 3, uuid=(0, 0), flags=abi.pool_flags(True, False), arg1=1),
]


def test_toolstack_commands_from_a_guest_are_eperm_and_change_nothing():
    hv, a, b = two_guests()
    before = listing(hv)
    g0 = globals_of(before)
    free0, acc0 = hv.heap.free_pages, hv.accounting()
    console0 = hv.console.read()
    for op in CONTROL_FROM_A_GUEST:
        assert hv.tmem_op(b, op) == -errno.EPERM, abi.CMD_NAMES[op.cmd]
        assert op.buf is None                      # TMEMC_LIST wrote no listing for b
    after = listing(hv)
    g1 = globals_of(after)
    n = len(CONTROL_FROM_A_GUEST)
    # two listings by dom0 in between are TMEM_CONTROLs too: +1 each
    assert (g1["Tt"] - g0["Tt"], g1["Te"] - g0["Te"]) == (n + 1, n)
    assert without_op_counts(after) == without_op_counts(before)
    assert "C=CI:2" not in after and b.tmem is None   # b's refused calls made it no client
    assert "fr:0" in after and "ww:0" in after and "co:0" in after
    assert hv.heap.free_pages == free0 and hv.accounting() == acc0
    assert hv.console.read() == console0          # refused silently, as tmem.c does
    a_pages_intact(hv, a)
    assert balanced(hv)


def test_dom0_keeps_the_toolstack_commands():
    hv, a, b = two_guests()
    assert hv.tmem_control(abi.TMEMC_FREEZE, a.domid) == (0, None)
    assert put(hv, a, 0, OA, 50, page(1)) == -abi.EFROZEN
    assert hv.tmem_control(abi.TMEMC_THAW, a.domid) == (0, None)
    assert hv.tmem_op(hv.dom0, abi.TmemOp(abi.TMEM_AUTH, uuid=(7, 8), flags=1, arg1=1)) == 1
    assert (7, 8) in a.tmem.auth_uuids
    # b has made no hypercall: no client to authorize
    assert hv.tmem_op(hv.dom0, abi.TmemOp(abi.TMEM_AUTH, uuid=(7, 8), flags=1, arg1=2)) \
        == -errno.EINVAL
    restore = abi.TmemOp(abi.TMEM_RESTORE_NEW, 3, flags=abi.pool_flags(True, False), arg1=1)
    assert hv.tmem_op(hv.dom0, restore) == -errno.EOPNOTSUPP   # privileged, but not modelled
    rc, text = hv.tmem_control(abi.TMEMC_LIST, CLI_ID_NULL, 32768, 0)
    assert rc == 0 and text is not None and text.startswith("G=Tt:")


@pytest.mark.parametrize("frame", [None, Frame(None), Frame(b""), Frame(page(1)[:4095]),
                                   Frame(page(1) + b"\0"), Frame("x" * 4096), object()],
                         ids=["no-frame", "empty", "0-bytes", "4095-bytes", "4097-bytes",
                              "not-bytes", "no-data"])
def test_a_put_without_a_whole_guest_frame_is_efault_and_counted_cf(frame):
    hv, a, b = two_guests()
    before = listing(hv)
    g0 = globals_of(before)
    free0 = hv.heap.free_pages
    op = abi.TmemOp(abi.TMEM_PUT_PAGE, 0, oid=OA, index=99, gmfn=frame)
    assert hv.tmem_op(a, op) == -errno.EFAULT
    op = abi.TmemOp(abi.TMEM_PUT_PAGE, 1, oid=OA, index=99, gmfn=frame)
    assert hv.tmem_op(a, op) == -errno.EFAULT
    g1 = globals_of(listing(hv))
    assert g1["Cf"] - g0["Cf"] == 2
    assert g1["Te"] - g0["Te"] == 2
    assert (g1["Pc"], g1["Fc"], g1["Oc"]) == (g0["Pc"], g0["Fc"], g0["Oc"])
    pools = [dom_pool for dom_pool in a.tmem.pools[:2]]
    assert [(p.puts, p.good_puts, p.no_mem_puts, p.pgp_count) for p in pools] == [(9, 8, 1, 8)] * 2
    assert hv.heap.free_pages == free0 and a.tmem_pages == 8
    assert get(hv, a, 1, OA, 99) == (0, None)
    a_pages_intact(hv, a)
    assert balanced(hv)


def test_a_get_into_a_bad_frame_is_efault_and_keeps_the_page():
    hv, a, b = two_guests()
    g0 = globals_of(listing(hv))
    for pool in (0, 1):
        for frame in (None, Frame(b"short"), object()):
            op = abi.TmemOp(abi.TMEM_GET_PAGE, pool, oid=OA, index=3, gmfn=frame)
            assert hv.tmem_op(a, op) == -errno.EFAULT
    # a miss copies nothing: no fault
    assert hv.tmem_op(a, abi.TmemOp(abi.TMEM_GET_PAGE, 0, oid=OA, index=77, gmfn=None)) == 0
    g1 = globals_of(listing(hv))
    assert g1["Cf"] - g0["Cf"] == 6 and g1["Te"] - g0["Te"] == 6
    eph, pers = a.tmem.pools[0], a.tmem.pools[1]
    assert (eph.gets, eph.found_gets, pers.gets, pers.found_gets) == (4, 0, 3, 0)
    assert a.tmem.succ_eph_gets == 0 and a.tmem.succ_pers_gets == 0
    a_pages_intact(hv, a)                       # the exclusive get still finds page 3
    # and a frame holding a whole page (bytes or bytearray) is written
    assert put(hv, a, 0, OA, 5, page(9)) == 1
    f = Frame(bytearray(abi.PAGE_SIZE))
    assert hv.tmem_op(a, abi.TmemOp(abi.TMEM_GET_PAGE, 0, oid=OA, index=5, gmfn=f)) == 1
    assert sha(f.data) == sha(page(9))


def test_a_duplicate_put_from_a_bad_frame_flushes_the_old_copy():
    hv, a, b = two_guests()
    g0 = globals_of(listing(hv))
    op = abi.TmemOp(abi.TMEM_PUT_PAGE, 1, oid=OA, index=2, gmfn=Frame(b"tiny"))
    assert hv.tmem_op(a, op) == -errno.EFAULT
    assert get(hv, a, 1, OA, 2) == (0, None)     # never the old data after a failed dup put
    pool = a.tmem.pools[1]
    assert (pool.dup_puts_flushed, pool.dup_puts_replaced, pool.pgp_count) == (1, 0, 7)
    assert globals_of(listing(hv))["Cf"] - g0["Cf"] == 1
    assert a.tmem_pages == 7 and balanced(hv)


def test_a_bytearray_frame_is_copied_not_aliased():
    hv, a, b = two_guests()
    buf = bytearray(page(5))
    assert hv.tmem_op(a, abi.TmemOp(abi.TMEM_PUT_PAGE, 1, oid=OA, index=40, gmfn=Frame(buf))) == 1
    buf[:4] = b"XXXX"                            # the guest reuses its frame
    rc, data = get(hv, a, 1, OA, 40)
    assert rc == 1 and sha(data) == sha(page(5))


def test_a_guest_cannot_reach_another_guests_private_pools():
    hv, a, b = two_guests()
    before = listing(hv)
    a_lines = [l for l in before.splitlines() if "CI:1" in l]
    # b has no pools: a's ids mean nothing to it
    for pool in (0, 1, 15, 16, -1, 2**31, 2**32):
        assert put(hv, b, pool, OA, 0, page(666)) == -errno.ENODEV
        assert get(hv, b, pool, OA, 0) == (-errno.ENODEV, None)
        assert flush(hv, b, pool, OA, 0) == -errno.ENODEV
        assert flush_obj(hv, b, pool, OA) == -errno.ENODEV
        assert hv.tmem_op(b, abi.TmemOp(abi.TMEM_DESTROY_POOL, pool)) == 0
    # b's own pools get b's own ids 0 and 1: same numbers, other pools
    assert new_pool(hv, b) == 0
    assert new_pool(hv, b, persistent=True) == 1
    assert get(hv, b, 0, OA, 3) == (-EEMPTY, None)
    assert get(hv, b, 1, OA, 3) == (-EEMPTY, None)
    for i in range(8):
        assert put(hv, b, 1, OA, i, page(666 + i)) == 1     # same oid and index as a's
        assert flush(hv, b, 0, OA, i) == 1
    assert flush_obj(hv, b, 0, OA) == 1
    assert hv.tmem_op(b, abi.TmemOp(abi.TMEM_DESTROY_POOL, 0)) == 1
    rc, data = get(hv, b, 1, OA, 3)
    assert rc == 1 and sha(data) == sha(page(669))           # b reads b's page, never a's
    # an index past 32 bits is the u32 the struct holds: b's own page, and no hang
    rc, data = get(hv, b, 1, OA, (1 << 32) + 3)
    assert rc == 1 and sha(data) == sha(page(669))
    assert put(hv, b, 1, OA, -1, page(1)) == 1 and get(hv, b, 1, OA, 0xFFFFFFFF)[0] == 1
    after = listing(hv)
    assert [l for l in after.splitlines() if "CI:1" in l] == a_lines
    assert a.tmem_pages == 8 and b.tmem_pages == 9
    a_pages_intact(hv, a)
    assert balanced(hv)


def test_a_shared_pool_is_reached_by_uuid_only_and_auth_gates_it():
    """Shared pools are the one way between guests: the uuid is the key; with
    tmem_shared_auth a guest dom0 has not authorized gets a private pool instead."""
    hv = host(256, "tmem dom0_mem=64M tmem_shared_auth")
    a = hv.domain_create("a", 4096, 4096)
    b = hv.domain_create("b", 4096, 4096)
    uuid = (0x1234, 0x5678)
    for d in (a, b):
        assert hv.tmem_op(d, abi.TmemOp(abi.TMEM_FLUSH_PAGE, 0)) == -errno.ENODEV  # client made
    auth = abi.TmemOp(abi.TMEM_AUTH, uuid=uuid, flags=1, arg1=a.domid)
    assert hv.tmem_op(b, auth) == -errno.EPERM            # b cannot authorize anyone
    assert hv.tmem_op(hv.dom0, auth) == 1
    assert new_pool(hv, a, shared=True, uuid=uuid) == 0
    assert put(hv, a, 0, OA, 0, page(1)) == 1
    assert new_pool(hv, b, shared=True, uuid=uuid) == 0   # not authorized: private
    assert get(hv, b, 0, OA, 0) == (-EEMPTY, None)
    text = listing(hv)
    assert "P=CI:2,PI:0,PT:EP" in text and "SC:2" not in text
    rc, data = get(hv, a, 0, OA, 0)
    assert rc == 1 and sha(data) == sha(page(1))


def test_an_op_struct_that_cannot_be_read_is_efault():
    hv, a, b = two_guests()
    g0 = globals_of(listing(hv))
    assert hv.tmem_op(b, None) == -errno.EFAULT          # type: ignore[arg-type]
    assert hv.tmem_op(b, "op") == -errno.EFAULT          # type: ignore[arg-type]
    g1 = globals_of(listing(hv))
    assert (g1["Tt"] - g0["Tt"], g1["Te"] - g0["Te"]) == (3, 2) and b.tmem is None
