"""Unloading zcache (profile 3.10-unload, beyond Linux; docs/unloading.md).

Faithful by default: on 3.10 zcache stays. On 3.10-unload ``rmmod zcache``
writes frontswap's pages back to their swap slots, lets cleancache's pages go,
and leaves every mounted filesystem and enabled swap device waiting for the
next backend, which replays them as the lazy-init patchset does.
"""

from __future__ import annotations

import pytest

from kmodemu.machine import Machine, MachineDef

from .helpers import Console, sha, swapping_into

FS = "/sys/kernel/debug/frontswap"
CC = "/sys/kernel/debug/cleancache"

#: kmod 30's two lines for a delete_module that returned EBUSY
EBUSY = ("rmmod: ERROR: ../libkmod/libkmod-module.c:856 kmod_module_remove_module() could not "
         "remove 'zcache': Device or resource busy\n"
         "rmmod: ERROR: could not remove module zcache: Device or resource busy\n")

UNLOADED = [
    "zcache: destroyed local pool id=1",
    "zcache: destroyed local pool id=0",
    "zcache: unloaded: cleancache and frontswap are free for another backend",
]


@pytest.fixture
def machine():
    made: list[Machine] = []

    def make(**kw) -> Console:
        kw.setdefault("profile", "3.10-unload")
        m = Machine(MachineDef(**kw))
        made.append(m)
        return Console(m)

    yield make
    for m in made:
        m.close()


def read(con: Console, path: str) -> str:
    return con("read", path).strip()


def file_in_cleancache(con: Console, path: str) -> str:
    """Drop the page cache and read ``path`` again: what the backend gave back."""
    con("drop-caches")
    return read(con, path)


def test_the_faithful_profile_keeps_zcache(machine):
    con = machine(profile="3.10")
    con("insmod", "zcache")
    out = con("rmmod", "zcache", rc=1)
    assert out == ""
    assert con.err == EBUSY
    assert con("lsmod").splitlines()[1].split() == ["zcache", "122880", "0"]
    assert con.m.kernel.frontswap.registered and con.m.kernel.cleancache.registered


def test_modinfo_and_release_name_the_profile(machine):
    con = machine()
    assert con("uname", "-r") == "3.10.0-kmodemu-unload\n"
    con("insmod", "zcache")
    assert "[permanent]" not in con("cat", "/proc/modules")


@pytest.mark.parametrize("when", ["before-load", "between", "after-unload"])
def test_cleancache_round_trip_for_each_mount_ordering(machine, when):
    """Mounted before the first load, while loaded, or after the unload: the filesystem
    is served from cleancache again once the next zcache (another compressor) is loaded."""
    con = machine()
    con("mkdir", "-p", "/data")
    mount = ("mount", "/dev/sda1", "/data", "-t", "ext4")
    if when == "before-load":
        con(*mount)
    con("insmod", "zcache")
    if when == "between":
        con(*mount)
    if when != "after-unload":
        con("mkfile", "/data/f", "--size", "1M", "--content", "text", "--seed", "1")
        before = con("sha256sum", "/data/f")
        read(con, "/data/f")
        assert file_in_cleancache(con, "/data/f") == \
            "/data/f: 256 pages, 0 cached, 256 from cleancache, 0 from disk"
    con("rmmod", "zcache")
    log = con.log()
    waiting = 0 if when == "after-unload" else 1
    assert f"cleancache: backend unregistered, {waiting} filesystem(s) wait for the next one" in log
    assert log[-1] == UNLOADED[-1]
    assert not con.m.kernel.cleancache.registered
    assert con("lsmod") == "Module                  Size  Used by\n"
    if when == "after-unload":
        con(*mount)
        con("mkfile", "/data/f", "--size", "1M", "--content", "text", "--seed", "1")
        before = con("sha256sum", "/data/f")
    # no backend: the pages the old one held are gone; 3.10 still counts the puts
    gets = con.num(f"{CC}/succ_gets")
    assert file_in_cleancache(con, "/data/f") == \
        "/data/f: 256 pages, 0 cached, 0 from cleancache, 256 from disk"
    assert con.num(f"{CC}/succ_gets") == gets
    con("insmod", "zcache", "zcache_comp_name=lz4")
    assert "zcache: using lz4 compressor" in con.log()
    read(con, "/data/f")
    assert file_in_cleancache(con, "/data/f") == \
        "/data/f: 256 pages, 0 cached, 256 from cleancache, 0 from disk"
    assert con("sha256sum", "/data/f") == before


def test_unload_writes_frontswap_pages_back_and_the_next_backend_takes_new_ones(machine):
    con = machine(mem="64M")
    digest = swapping_into(con, "zcache", 3)
    k = con.m.kernel
    held = k.frontswap.curr_pages()
    assert held > 1000
    writes = k.mm.swap.swap_writes
    con("rmmod", "zcache")
    assert f"frontswap: backend unregistered, {held} page(s) written back to swap, " \
           "1 swap device(s) wait for the next one" in con.log()
    assert k.mm.swap.swap_writes == writes + held
    assert k.frontswap.curr_pages() == 0 and not k.frontswap.registered
    assert not k.vfs.exists("/sys/kernel/debug/zcache")   # its debugfs went with it
    assert sha(con, "p") == digest   # every page from the swap device now
    out = con("touch-anon", "p")
    assert " 0 from frontswap" in out
    # the swap device waits for the next backend, which replays its init
    con("insmod", "zcache", "zcache_comp_name=lz4")
    assert con.log()[-2:] == [
        "zcache: created persistent local tmem pool, id=0",   # the replayed swapon
        "zcache: frontswap enabled using kernel transcendent memory and compression buddies"]
    stores = con.num(f"{FS}/succ_stores")
    con("alloc", "q", "40M", "--content", "mixed", "--seed", "4")
    assert con.num(f"{FS}/succ_stores") > stores
    assert k.frontswap.curr_pages() > 0
    assert sha(con, "p") == digest


def test_swapon_after_unload_waits_and_is_initialised_by_the_next_backend(machine):
    con = machine(mem="64M")
    con("insmod", "zcache")
    con("rmmod", "zcache")
    con("mkswap", "/dev/sdb", "128M")
    con("swapon", "/dev/sdb")
    con("alloc", "p", "80M", "--content", "mixed", "--seed", "5")
    digest = sha(con, "p")
    assert con.num(f"{FS}/succ_stores") == 0
    con("insmod", "zcache")
    con("alloc", "q", "40M", "--content", "mixed", "--seed", "6")
    assert con.num(f"{FS}/succ_stores") > 0
    assert sha(con, "p") == digest


def test_no_frame_for_the_writeback_is_ebusy_and_changes_nothing(machine):
    con = machine(mem="64M", cmdline="fail_page_alloc=1,0,0,-1")
    digest = swapping_into(con, "zcache", 7)
    k = con.m.kernel
    held = k.frontswap.curr_pages()
    lsmod = con("lsmod")
    proc = con("cat", "/proc/modules")
    con("write", "/sys/kernel/debug/fail_page_alloc/probability", "100")
    con("rmmod", "zcache", rc=1)
    assert con.err == EBUSY
    assert con.log()[-1] == "zcache: frontswap pages cannot be written back now: not unloading"
    assert con("lsmod") == lsmod and con("cat", "/proc/modules") == proc
    assert k.frontswap.registered and k.cleancache.registered
    assert k.frontswap.curr_pages() == held
    con("write", "/sys/kernel/debug/fail_page_alloc/probability", "0")
    assert sha(con, "p") == digest
    con("rmmod", "zcache")     # with a frame to bounce through, it goes
    assert sha(con, "p") == digest



def test_a_zcache_with_a_frontend_disabled_unloads(machine):
    """The frontend zcache never registered with answers -EINVAL: not ours, nothing to undo."""
    con = machine(mem="64M")
    con("insmod", "zcache", "disable_frontswap=1")
    con("rmmod", "zcache")
    assert con.log()[-2:] == [
        "cleancache: backend unregistered, 0 filesystem(s) wait for the next one",
        "zcache: unloaded: cleancache and frontswap are free for another backend"]
    con("mkswap", "/dev/sdb", "128M")
    con("swapon", "/dev/sdb")
    con("insmod", "zcache", "disable_cleancache=1")
    con("alloc", "p", "80M", "--content", "mixed", "--seed", "8")
    digest = sha(con, "p")
    held = con.m.kernel.frontswap.curr_pages()
    con("rmmod", "zcache")
    log = con.log()
    assert log[-3:] == [
        f"frontswap: backend unregistered, {held} page(s) written back to swap, "
        "1 swap device(s) wait for the next one",
        "zcache: destroyed local pool id=0",
        "zcache: unloaded: cleancache and frontswap are free for another backend"]
    assert sha(con, "p") == digest


def test_a_page_the_backend_cannot_give_back_stops_the_writeback_with_eio(machine, monkeypatch):
    """The pages written so far are safe on the device, the rest stay in the still-registered
    zcache, and rmmod fails: nothing is lost."""
    con = machine(mem="64M")
    digest = swapping_into(con, "zcache", 9)
    k = con.m.kernel
    held = k.frontswap.curr_pages()
    ops = k.frontswap.ops
    real_load = type(ops).load
    calls = []

    def load(self, type_, offset, page):
        calls.append(offset)
        return -1 if len(calls) == 100 else real_load(self, type_, offset, page)
    monkeypatch.setattr(type(ops), "load", load)
    con("rmmod", "zcache", rc=1)
    assert con.err.endswith("could not remove module zcache: Input/output error\n")
    assert f"frontswap_unregister_ops: type 0 offset {calls[-1]} could not be read back" in \
        con("dmesg")
    assert k.frontswap.ops is ops and k.frontswap.curr_pages() == held - 99
    assert con("lsmod").splitlines()[1].split()[0] == "zcache"
    monkeypatch.undo()
    assert sha(con, "p") == digest      # 99 pages from the device, the rest from zcache
    con("rmmod", "zcache")
    assert sha(con, "p") == digest
