"""Hypothesis state machines: the frontends against small reference models.

The cleancache model tracks, per mounted superblock, its slot and whether a
backend pool exists, and predicts fake pool ids, backend calls and every
counter; a get hit must return the last page put for that mount, file and
index since it was last invalidated. The frontswap model tracks the pages in
frontswap per device and checks bits, counts and loaded bytes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kmodemu.mm.cleancache import Cleancache
from kmodemu.mm.frontswap import Frontswap, is_err, new_map
from kmodemu.mm.page import Page

from .fakes import FakeBackend, SisStub, inode_stub, sb_stub

SETTINGS = settings(max_examples=int(__import__("os").environ.get("MM_EXAMPLES", 40)), stateful_step_count=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
INOS = st.integers(min_value=1, max_value=3)
INDEXES = st.integers(min_value=0, max_value=3)


class CleancacheMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.cc = Cleancache(None, lazy_init=True)
        self.mounts: list[dict] = []         # mounted superblocks with model state
        self.next_id = 0
        self.backends: list[FakeBackend] = []
        self.model_data: dict[tuple, bytes] = {}   # (mount id, ino, index) -> bytes
        self.expect = {"succ_gets": 0, "failed_gets": 0, "puts": 0, "invalidates": 0}
        self.stamp = 0
        self.free_slots = {"private": set(range(32)), "shared": set(range(32))}

    @property
    def backend(self) -> FakeBackend | None:
        return self.backends[-1] if self.backends else None

    # -- mount / umount / register ----------------------------------------------------
    @rule(kind=st.sampled_from(["private", "shared", "none"]), fail=st.booleans())
    def mount(self, kind, fail):
        sb = sb_stub()
        m = {"id": self.next_id, "sb": sb, "kind": kind, "slot": None, "pool": None}
        self.next_id += 1
        b = self.backend
        will_init = kind != "none" and bool(self.free_slots[kind])
        fail = fail and will_init and b is not None
        if fail:
            b.fail_init.add(b.init_calls)
        if will_init:
            slot = min(self.free_slots[kind])
            self.free_slots[kind].discard(slot)
            m["slot"] = slot
            if b is not None:
                m["pool"] = "failed" if fail else "ok"
        if kind == "private":
            self.cc.init_fs(sb)
        elif kind == "shared":
            self.cc.init_shared_fs(b"u" * 16, sb)
        if m["slot"] is None:
            assert sb.cleancache_poolid == -1
        else:
            base = 1000 if kind == "private" else 2000
            assert sb.cleancache_poolid == base + m["slot"]
        self.mounts.append(m)

    @precondition(lambda self: self.mounts)
    @rule(data=st.data())
    def umount(self, data):
        m = self.mounts.pop(data.draw(st.integers(0, len(self.mounts) - 1)))
        b = self.backend
        n = len(b.calls("invalidate_fs")) if b else 0
        real = self._real(m)
        self.cc.invalidate_fs(m["sb"])
        assert m["sb"].cleancache_poolid == -1
        if m["slot"] is not None:
            self.free_slots[m["kind"]].add(m["slot"])
        if b is not None:
            call = b.calls("invalidate_fs")[n:]
            assert len(call) == 1
            if m["pool"] != "ok":
                assert call[0][1] == -1
        if real is not None:  # the backend dropped that pool, for every sb that maps to it
            for k in [k for k in self.model_data if k[0] == real]:
                del self.model_data[k]

    @rule(fail_first=st.booleans())
    def register(self, fail_first):
        # replay: exactly the slots without a pool, in slot order, private before shared
        expected = sorted((m["slot"], m["kind"] == "shared") for m in self.mounts
                          if m["slot"] is not None and m["pool"] in (None, "failed"))
        fail_first = fail_first and bool(expected)
        new = FakeBackend(f"b{len(self.backends)}", fail_init={0} if fail_first else ())
        old = self.cc.register_ops(new)
        assert old is self.backend
        got = [c for c in new.log if c[0] in ("init_fs", "init_shared_fs")]
        assert [c[0] == "init_shared_fs" for c in got] == [e[1] for e in expected]
        order = {e: i for i, e in enumerate(expected)}
        for m in self.mounts:
            key = (m["slot"], m["kind"] == "shared")
            if key in order:
                m["pool"] = "failed" if (fail_first and order[key] == 0) else "ok"
        self.backends.append(new)
        # pages held by older backends are unreachable from now on
        self.model_data.clear()

    # -- per-page calls ---------------------------------------------------------------
    def _mount(self, data):
        return self.mounts[data.draw(st.integers(0, len(self.mounts) - 1))]

    def _real(self, m) -> int | None:
        """The pool id the current backend is sent for this sb, if it holds such a pool.

        Pages are modelled per (real pool id, ino, index), not per mount: after a
        second registration two superblocks can map to the same pool (edge case 6 of docs/frontends.md).
        """
        b = self.backend
        if b is None or m["slot"] is None or m["pool"] != "ok":
            return None
        real = self.cc.real_poolid(m["sb"])
        return real if real in b.pools else None

    @precondition(lambda self: self.mounts)
    @rule(data=st.data(), ino=INOS, index=INDEXES, keyless=st.booleans())
    def put(self, data, ino, index, keyless):
        m = self._mount(data)
        self.stamp += 1
        page = Page(self.stamp.to_bytes(4, "little") * 1024)
        self.cc.put_page(inode_stub(m["sb"], ino, None if keyless else "ino"), index, page)
        if m["slot"] is None:
            return
        if self.backend is None:
            self.expect["puts"] += 1
        elif m["pool"] == "ok" and not keyless:
            self.expect["puts"] += 1
            real = self._real(m)
            if real is not None:
                self.model_data[(real, ino, index)] = page.data

    @precondition(lambda self: self.mounts)
    @rule(data=st.data(), ino=INOS, index=INDEXES)
    def get(self, data, ino, index):
        m = self._mount(data)
        p = Page()
        real = self._real(m)
        ret = self.cc.get_page(inode_stub(m["sb"], ino), index, p)
        want = self.model_data.pop((real, ino, index), None) if real is not None else None
        if ret == 0:
            assert want is not None and p.data == want, "wrong page returned"
            self.expect["succ_gets"] += 1
        else:
            assert want is None
            if m["slot"] is not None:
                self.expect["failed_gets"] += 1

    @precondition(lambda self: self.mounts)
    @rule(data=st.data(), ino=INOS, index=INDEXES)
    def invalidate_page(self, data, ino, index):
        m = self._mount(data)
        real = self._real(m)
        self.cc.invalidate_page(inode_stub(m["sb"], ino), index)
        self.model_data.pop((real, ino, index), None)
        if m["slot"] is not None and self.backend is not None and m["pool"] == "ok":
            self.expect["invalidates"] += 1

    @precondition(lambda self: self.mounts)
    @rule(data=st.data(), ino=INOS)
    def invalidate_inode(self, data, ino):
        m = self._mount(data)
        real = self._real(m)
        self.cc.invalidate_inode(inode_stub(m["sb"], ino))
        for k in [k for k in self.model_data if k[0] == real and k[1] == ino]:
            del self.model_data[k]

    @invariant()
    def counters_match(self):
        assert self.cc.counters() == self.expect

    @invariant()
    def slots_match(self):
        used = {("private", i) for i in range(32) if self.cc.fs_poolid_map[i] != -2}
        used |= {("shared", i) for i in range(32) if self.cc.shared_fs_poolid_map[i] != -2}
        assert used == {(m["kind"], m["slot"]) for m in self.mounts if m["slot"] is not None}


class FrontswapMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.fs = Frontswap(None, lazy_init=True)
        self.backends: list[FakeBackend] = []
        self.on: set[int] = set()
        self.held: dict[tuple[int, int], bytes] = {}   # what frontswap says it holds
        self.stamp = 0
        self.expect = {"loads": 0, "succ_stores": 0, "failed_stores": 0, "invalidates": 0}

    @rule(type=st.integers(0, 3))
    def swapon(self, type):
        if type in self.on:
            return
        self.fs.swap_info[type] = SisStub(16)
        self.fs.init(type, new_map(16))
        self.on.add(type)

    @precondition(lambda self: self.on)
    @rule(data=st.data())
    def swapoff(self, data):
        type = data.draw(st.sampled_from(sorted(self.on)))
        self.fs.invalidate_area(type)
        sis = self.fs.swap_info[type]
        assert sis.frontswap_pages == 0 and not any(sis.frontswap_map)
        sis.frontswap_map = None
        self.fs.swap_info[type] = None
        self.on.discard(type)
        for k in [k for k in self.held if k[0] == type]:
            del self.held[k]

    @rule(excl=st.booleans())
    def register(self, excl):
        b = FakeBackend(f"b{len(self.backends)}")
        pending = self.fs.pending_types()
        old = self.fs.register_ops(b)
        assert not is_err(old) and old is (self.backends[-1] if self.backends else None)
        assert b.log == [("init", t) for t in pending]
        self.backends.append(b)
        self.fs.tmem_exclusive_gets(excl)
        b.fs_exclusive = excl

    @precondition(lambda self: self.on)
    @rule(data=st.data(), offset=st.integers(1, 15), reject=st.booleans())
    def store(self, data, offset, reject):
        type = data.draw(st.sampled_from(sorted(self.on)))
        self.stamp += 1
        page = Page(self.stamp.to_bytes(4, "little") * 1024)
        b = self.backends[-1] if self.backends else None
        if b is not None:
            b.reject_stores = reject
        ret = self.fs.store(type, offset, page)
        if b is None:
            assert ret == -1
            return
        if reject:
            assert ret == -1
            self.expect["failed_stores"] += 1
            self.held.pop((type, offset), None)
        else:
            assert ret == 0
            self.expect["succ_stores"] += 1
            self.held[(type, offset)] = page.data

    @precondition(lambda self: self.on)
    @rule(data=st.data(), offset=st.integers(1, 15))
    def load(self, data, offset):
        type = data.draw(st.sampled_from(sorted(self.on)))
        p = Page()
        ret = self.fs.load(type, offset, p)
        want = self.held.get((type, offset))
        if ret == 0:
            assert p.data == want, "wrong page returned"
            self.expect["loads"] += 1
            if self.fs.exclusive_gets_enabled:
                del self.held[(type, offset)]
        else:
            # a stale backend (replaced) may have lost it; the current one must not
            assert want is None or self.backends[-1].swap.get((type, offset)) is None

    @precondition(lambda self: self.on)
    @rule(data=st.data(), offset=st.integers(1, 15))
    def invalidate_page(self, data, offset):
        type = data.draw(st.sampled_from(sorted(self.on)))
        self.fs.invalidate_page(type, offset)
        if self.held.pop((type, offset), None) is not None:
            self.expect["invalidates"] += 1

    @invariant()
    def consistent(self):
        assert self.fs.counters() == self.expect
        total = 0
        for t in self.on:
            sis = self.fs.swap_info[t]
            nbits = sum(bin(b).count("1") for b in sis.frontswap_map)
            assert nbits == sis.frontswap_pages == sum(1 for k in self.held if k[0] == t)
            total += nbits
        assert self.fs.curr_pages() == total


TestCleancacheMachine = CleancacheMachine.TestCase
TestCleancacheMachine.settings = SETTINGS
TestFrontswapMachine = FrontswapMachine.TestCase
TestFrontswapMachine.settings = SETTINGS
