"""sys_swapon's "FS" flag and sys_swapoff's frontswap order, as mm/swapfile.c has them in 3.9 and 3.10."""

from __future__ import annotations

import pytest

from kmodemu.mm.corpus import Content

from .fakes import FakeBackend, boot

LINE = "Adding 16380k swap on /dev/sdb1.  Priority:-1 extents:1 across:16380k"


def _swapon(k):
    k.mm.swap.mkswap("/dev/sdb1", 4096)
    return k.mm.swap.swapon("/dev/sdb1")


def _last_adding(k):
    return [ln.split("] ", 1)[1] for ln in k.dmesg().splitlines() if "Adding" in ln][-1]


def test_sys_swapon_310_always_allocates_the_map_and_says_fs():
    """frontswap_enabled is the constant 1 in 3.10: the map and "FS" come without a backend."""
    k = boot("3.10")
    sis = _swapon(k)
    assert sis.frontswap_map is not None
    assert _last_adding(k) == LINE + " FS"


def test_sys_swapon_310_without_a_map_prints_no_fs():
    k = boot("3.10")
    k.mm.swap.fail_next_map_alloc = True         # vzalloc of frontswap_map returned NULL
    sis = _swapon(k)
    assert sis.frontswap_map is None and _last_adding(k) == LINE + " "


def test_sys_swapon_39_says_fs_once_frontswap_register_ops_enabled_it():
    k = boot("3.9")
    _swapon(k)
    assert _last_adding(k) == LINE + " "          # frontswap_enabled still false: no map
    k.mm.swap.swapoff("/dev/sdb1")
    k.frontswap.register_ops(FakeBackend())       # sets frontswap_enabled = true
    sis = _swapon(k)
    assert sis.frontswap_map is not None and _last_adding(k) == LINE + " FS"


@pytest.mark.parametrize("profile", ["3.10", "3.9"])
def test_sys_swapoff_detaches_the_map_before_frontswap_invalidate_area(profile):
    """frontswap_map_set(p, NULL) precedes frontswap_invalidate_area: the backend is never told."""
    k = boot(profile, "32M")
    b = FakeBackend()
    k.frontswap.register_ops(b)
    sis = _swapon(k)
    proc = k.mm.anon.alloc("p", 2000, Content(k.mm.corpus, "mixed", 9))
    k.mm.reclaim(1200)
    stored = sum(1 for c in b.log if c[0] == "store")
    assert stored > 0
    b.log.clear()
    k.mm.swap.swapoff("/dev/sdb1")
    assert [c for c in b.log if c[0] == "invalidate_area"] == []
    assert sum(1 for c in b.log if c[0] == "load") == stored        # pages come back one by one
    assert proc.swapped() == 0 and sis.frontswap_map is None
    assert all(ap.data == proc.content.page(ap.vpn) for ap in proc.pages)
