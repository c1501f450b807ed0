"""The backend contract (kmodemu.tmem): each service does what it says and is undone at cleanup."""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import kmodemu.tmem as tmem
from kmodemu.errors import KernelError
from kmodemu.tmem import NSEC_PER_MSEC, ModuleContext, ModuleDecl, Page

from .helpers import booted


class RecordingCleancache:
    def __init__(self) -> None:
        self.pools = 0
        self.pages: dict[tuple[int, bytes, int], bytes] = {}

    def init_fs(self, pagesize: int) -> int:
        self.pools += 1
        return self.pools - 1

    def init_shared_fs(self, uuid: bytes, pagesize: int) -> int:
        return self.init_fs(pagesize)

    def get_page(self, pool_id: int, key: bytes, index: int, page: Page) -> int:
        data = self.pages.pop((pool_id, key, index), None)
        if data is None:
            return -1
        page.data = data
        return 0

    def put_page(self, pool_id: int, key: bytes, index: int, page: Page) -> None:
        self.pages[(pool_id, key, index)] = page.data

    def invalidate_page(self, pool_id: int, key: bytes, index: int) -> None:
        self.pages.pop((pool_id, key, index), None)

    def invalidate_inode(self, pool_id: int, key: bytes) -> None:
        pass

    def invalidate_fs(self, pool_id: int) -> None:
        pass


@dataclass
class State:
    fired: list[int] = field(default_factory=list)
    ops: RecordingCleancache | None = None


def test_contract_is_versioned_and_exports_everything_it_documents():
    assert tmem.CONTRACT_VERSION == (1, 1)
    for name in tmem.__all__:
        assert getattr(tmem, name) is not None, name
    # docs/modules.md's table of the contract names exactly what __all__ exports
    doc = (Path(__file__).resolve().parents[2] / "docs" / "modules.md").read_text()
    table = doc[doc.index("## The contract: `kmodemu.tmem`"):doc.index("### The services")]
    documented = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            documented |= set(re.findall(r"`(\w+)`", row.split(" | ")[0]))
    levels = {n for n in tmem.__all__ if n.startswith("KERN_")}
    assert documented - levels == set(tmem.__all__) - levels - {"CONTRACT_VERSION"}
    assert {"KERN_EMERG", "KERN_DEBUG"} <= documented


def test_register_through_the_exported_symbol_replays_lazy_init():
    k = booted()
    k.mm.fs.mount("/dev/sda1", "/mnt", "ext4")

    def init(ctx: ModuleContext) -> int:
        st = ctx.private(State)
        st.ops = RecordingCleancache()
        assert ctx.cleancache_has_lazy_init and ctx.frontswap_has_lazy_init
        assert ctx.cleancache_register_ops(st.ops) is None
        return 0

    k.load_module(ModuleDecl(name="rec", init=init, requires=("cleancache_register_ops",)))
    ctx = k.module_context("rec")
    assert ctx is not None
    st = ctx.private(State)
    assert st is ctx.private(State)          # one object per module and kernel
    assert st.ops is not None and st.ops.pools == 1   # the mount was replayed
    assert k.cleancache.ops is st.ops


def test_lazy_init_capability_is_the_profile():
    k = booted(profile="3.9")
    seen = []
    k.load_module(ModuleDecl(name="probe", init=lambda ctx: seen.append(
        (ctx.cleancache_has_lazy_init, ctx.frontswap_has_lazy_init)) or 0))
    assert seen == [(False, False)]


def test_timers_and_delayed_work_run_on_the_virtual_clock_and_die_with_the_module():
    k = booted()

    def init(ctx: ModuleContext) -> int:
        st = ctx.private(State)
        ctx.add_timer(lambda: st.fired.append(ctx.now_ns), 5 * NSEC_PER_MSEC)
        work = ctx.delayed_work(lambda: (st.fired.append(-ctx.now_ns), work.schedule(
            10 * NSEC_PER_MSEC)))
        assert work.schedule(10 * NSEC_PER_MSEC) is True
        assert work.schedule(1) is False    # already pending: unchanged
        return 0

    k.load_module(ModuleDecl(name="tick", init=init, exit=lambda ctx: None))
    ctx = k.module_context("tick")
    assert ctx is not None
    start = k.clock.ns
    k.clock.advance(25 * NSEC_PER_MSEC)
    fired = ctx.private(State).fired
    assert fired == [start + 5 * NSEC_PER_MSEC, -(start + 10 * NSEC_PER_MSEC),
                     -(start + 20 * NSEC_PER_MSEC)]
    k.modules.unload("tick")
    assert k.clock.pending_timers() == []   # the rearmed work was cancelled at unload
    k.clock.advance(100 * NSEC_PER_MSEC)
    assert len(fired) == 3


def test_failed_init_undoes_files_shrinkers_and_timers():
    k = booted()
    shrinkers_before = list(k.mm.shrinkers)

    def init(ctx: ModuleContext) -> int:
        ctx.debugfs_create_file("bad/x", lambda: "1\n")
        ctx.sysfs_create_file("kernel/mm/bad/enabled", lambda: "Y\n", lambda t: None, 0o644)
        ctx.register_shrinker(lambda n: 0)
        ctx.add_timer(lambda: None, NSEC_PER_MSEC)
        assert k.read("/sys/kernel/debug/bad/x") == "1\n"
        assert k.read("/sys/kernel/mm/bad/enabled") == "Y\n"
        return -errno.ENOMEM

    with pytest.raises(KernelError) as e:
        k.load_module(ModuleDecl(name="bad", init=init))
    assert e.value.errno == errno.ENOMEM
    assert k.mm.shrinkers == shrinkers_before
    assert k.clock.pending_timers() == []
    for path in ("/sys/kernel/debug/bad/x", "/sys/kernel/mm/bad/enabled"):
        with pytest.raises(KernelError):
            k.read(path)


def test_frames_and_lru_sizes_are_the_kernels():
    k = booted()
    out = {}

    def init(ctx: ModuleContext) -> int:
        pfn = ctx.frames.alloc()
        assert pfn is not None
        out["used"] = k.mm.frames.used["tmem"]
        ctx.frames.free(pfn)
        out["lru"] = ctx.lru_sizes()
        return 0

    k.load_module(ModuleDecl(name="fr", init=init))
    assert out == {"used": 1, "lru": k.mm.lru_sizes()}


def test_a_module_reaches_another_through_exported_symbols():
    k = booted()
    k.load_module(ModuleDecl(name="lib", exports=("lib_answer",), exit=lambda ctx: None,
                             init=lambda ctx: ctx.export("lib_answer", lambda: 42) or 0))
    got = []
    k.load_module(ModuleDecl(name="user", requires=("lib_answer",), exit=lambda ctx: None,
                             init=lambda ctx: got.append(ctx.symbol_value("lib_answer")()) or 0))
    assert got == [42]
    assert k.modules.get("lib").holders == ["user"]


def test_missing_frontend_symbol_is_a_lookup_error():
    k = booted()
    del k.modules.core_symbols["frontswap_writethrough"]
    errors = []

    def init(ctx: ModuleContext) -> int:
        try:
            ctx.frontswap_writethrough(True)
        except LookupError as e:
            errors.append(str(e))
        return 0

    k.load_module(ModuleDecl(name="ws", init=init))
    assert errors == ["ws: kernel does not export frontswap_writethrough"]
