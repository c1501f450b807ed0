"""Every order of mount, swapon and backend registration, on both profiles.

Each ordering is a list of console steps that ends with /mnt mounted and
/dev/sdb1 swapped on; a small workload then shows whether they benefit: a
file read again after ``drop-caches`` (cleancache hits) and a process pushed
to swap and touched again (frontswap loads). Three backends:

- ``insmod zcache``: 3.10 replays whatever is still mounted or enabled at
  load; 3.9 refuses the module unless ``disable_*`` are set, and then it
  registers nothing;
- built-in zcache (``zcache`` on the command line): registers at
  late_initcall, before user space, so every ordering works on both;
- ``insmod tmem_dict`` (tests/mm/plugins), which loads on 3.9 too: a late
  registration there serves only what is mounted or enabled after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kmodemu.modules.discovery import plugin_package

from .machines import PROFILES, boot, debugfs, dmesg_of, run, sb, sh, stat_lines

COMMANDS = {
    "mount": "mount /dev/sda1 /mnt -t ext4",
    "mount2": "mount /dev/sdc1 /srv -t ext4",
    "umount": "umount /mnt",
    "swapon": "swapon /dev/sdb1",
    "swapoff": "swapoff /dev/sdb1",
}
MOUNTPOINT = {"mount": "/mnt", "mount2": "/srv"}


@dataclass(frozen=True)
class Ordering:
    """Steps, and the zcache pool ids expected at the end: module (3.10) and built in."""

    name: str
    steps: tuple[str, ...]
    module_pools: dict[str, int]
    builtin_pools: dict[str, int]

    def __str__(self) -> str:
        return self.name


def o(name: str, steps: str, module: tuple, builtin: tuple) -> Ordering:
    keys = ("/srv", "/mnt", "swap") if len(module) == 3 else ("/mnt", "swap")
    return Ordering(name, tuple(steps.split()), dict(zip(keys, module)), dict(zip(keys, builtin)))


ORDERINGS = [
    # pools: (/mnt's cleancache pool, the frontswap pool), or (/srv, /mnt, frontswap)
    o("both-before", "mount swapon backend", (0, 1), (0, 1)),
    o("both-after", "backend mount swapon", (0, 1), (0, 1)),
    o("mount-before-swapon-after", "mount backend swapon", (0, 1), (0, 1)),
    o("swapon-before-mount-after", "swapon backend mount", (1, 0), (1, 0)),
    # the replay registers cleancache first: the fs gets the low id although swap came first
    o("swapon-then-mount-before", "swapon mount backend", (0, 1), (1, 0)),
    o("umount-remount-before", "mount umount mount swapon backend", (0, 1), (0, 1)),
    o("umount-before-remount-after", "mount umount backend mount swapon", (0, 1), (0, 1)),
    o("umount-remount-after", "mount swapon backend umount mount", (0, 1), (0, 1)),
    o("swapoff-swapon-before", "swapon swapoff swapon mount backend", (0, 1), (1, 0)),
    o("swapoff-before-swapon-after", "swapon swapoff backend swapon mount", (1, 0), (1, 0)),
    o("swapoff-swapon-after", "mount swapon backend swapoff swapon", (0, 1), (0, 1)),
    o("all-removed-before", "mount swapon umount swapoff backend mount swapon", (0, 1), (0, 1)),
    o("second-fs-before-first-after", "mount2 backend mount swapon", (0, 1, 2), (0, 1, 2)),
]


def live_at_backend(steps) -> tuple[set[str], bool]:
    """What is mounted and whether swap is on when the backend registers."""
    mounted: set[str] = set()
    swap = False
    for step in steps[:steps.index("backend")]:
        if step in MOUNTPOINT:
            mounted.add(MOUNTPOINT[step])
        elif step == "umount":
            mounted.discard("/mnt")
        else:
            swap = step == "swapon"
    return mounted, swap


def enabled_after_backend(steps, step: str) -> bool:
    """Was the last ``step`` (a mount or swapon) made after the backend registered?"""
    last = len(steps) - 1 - steps[::-1].index(step)
    return last > steps.index("backend")


def mountpoints(ordering: Ordering) -> list[str]:
    return [MOUNTPOINT[s] for s in ("mount2", "mount") if s in ordering.steps]


def play(m, steps, backend: str) -> None:
    sh(m, "mkswap /dev/sdb1 16M")
    for step in steps:
        sh(m, backend if step == "backend" else COMMANDS[step])


def workload(m, mounts: list[str]) -> tuple[str, dict[str, str]]:
    """Swap a process out and back; read a file per fs, drop the caches, read again."""
    sh(m, "alloc app 64K --content text --seed 2")
    # (the frames freed depend on what the backend keeps; the pages swapped do not)
    assert ": 0 file pages evicted, 16 anon pages swapped, " in sh(m, "pressure 16")
    touched = sh(m, "touch-anon app")
    for mp in mounts:
        sh(m, f"mkfile {mp}/f --size 64K --content text --seed 1")
        sh(m, f"read {mp}/f")
    sh(m, "drop-caches")
    return touched, {mp: sh(m, f"read {mp}/f") for mp in mounts}


def check_workload(m, ordering: Ordering, benefits: dict[str, bool], swap: str,
                   exclusive: bool = True) -> None:
    """``swap``: "frontswap" (stored and loaded), "refused" (the backend said no) or "off".

    Without exclusive gets (tmem_dict) a loaded page stays in frontswap until
    its slot is freed, which invalidates it.
    """
    mounts = mountpoints(ordering)
    touched, reads = workload(m, mounts)
    source = ("16 from frontswap, 0 from swap disk" if swap == "frontswap"
              else "0 from frontswap, 16 from swap disk")
    assert touched == f"app: 16 pages, 0 resident, {source}\n"
    for mp in mounts:
        hits = 16 if benefits[mp] else 0
        assert reads[mp] == f"{mp}/f: 16 pages, 0 cached, {hits} from cleancache, {16 - hits} from disk\n"
    n = 16 * sum(benefits.values())
    assert debugfs(m, "cleancache") == {"succ_gets": n, "failed_gets": n, "puts": n, "invalidates": 0}
    invalidates = 16 if swap == "frontswap" and not exclusive else 0
    stores = {"frontswap": {"loads": 16, "succ_stores": 16, "failed_stores": 0},
              "refused": {"loads": 0, "succ_stores": 0, "failed_stores": 16},
              "off": {"loads": 0, "succ_stores": 0, "failed_stores": 0}}[swap]
    assert debugfs(m, "frontswap") == {**stores, "invalidates": invalidates}


@pytest.fixture
def machine():
    made = []

    def make(profile: str, **kw):
        m = boot(profile, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def pools_of(m, ordering: Ordering) -> dict[str, int]:
    """Each fs's real pool id (through the fake id on 3.10) and zcache's frontswap pool."""
    k = m.kernel
    out = {mp: k.cleancache.real_poolid(sb(m, mp)) for mp in mountpoints(ordering)}
    out["swap"] = plugin_package("zcache").main.zcache_of(k.module_context("zcache")).frontswap_poolid
    return out


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("ordering", ORDERINGS, ids=str)
def test_zcache_module(machine, profile, ordering):
    m = machine(profile)
    mounted, swap_on = live_at_backend(ordering.steps)
    if profile == "3.10":
        play(m, ordering.steps, "insmod zcache")
        lines = dmesg_of(m, "zcache: c", "zcache: f")
        # the replay happens inside each registration, before its "enabled" line
        replayed = lines[:lines.index("zcache: cleancache enabled using kernel transcendent "
                                      "memory and compression buddies")]
        assert replayed == [f"zcache: created ephemeral local tmem pool, id={i}"
                            for i in range(len(mounted))]
        after = lines[len(replayed) + 1:]
        assert (after[0] == "zcache: created persistent local tmem pool, id="
                f"{len(mounted)}") is swap_on
        assert pools_of(m, ordering) == ordering.module_pools
        assert m.kernel.frontswap.pending_types() == []
        check_workload(m, ordering, {mp: True for mp in mountpoints(ordering)}, "frontswap")
        return
    # 3.9: refused for lack of lazy init; with both frontends disabled it loads, uselessly
    play(m, [s for s in ordering.steps if s != "backend"], "")
    assert run(m, "insmod zcache") == (
        1, "", "insmod: ERROR: could not insert module zcache: Invalid parameters\n")
    assert dmesg_of(m, "zcache")[-1] == "zcache module requires frontswap lazy init"
    sh(m, "insmod zcache disable_cleancache=1 disable_frontswap=1")
    assert dmesg_of(m, "zcache")[-1] == "zcache: using zstd compressor"
    assert "cleancache: backend none, lazy init no" in stat_lines(m)
    assert "frontswap: backend none, lazy init no" in stat_lines(m)
    assert all(sb(m, mp).cleancache_poolid == -1 for mp in mountpoints(ordering))
    assert m.kernel.mm.swap.swap_info[0].frontswap_map is None
    check_workload(m, ordering, {mp: False for mp in mountpoints(ordering)}, "off")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("ordering", ORDERINGS, ids=str)
def test_zcache_builtin(machine, profile, ordering):
    m = machine(profile, builtin=["zcache"], cmdline="zcache")
    # registered at late_initcall, before init runs
    log = dmesg_of(m, "zcache: frontswap enabled", "Run /sbin/init")
    assert log[0].startswith("zcache: frontswap enabled") and log[1].startswith("Run /sbin/init")
    play(m, [s for s in ordering.steps if s != "backend"], "")
    assert pools_of(m, ordering) == ordering.builtin_pools
    if profile == "3.9":   # the pool id sits in the superblock itself
        assert sb(m, "/mnt").cleancache_poolid == ordering.builtin_pools["/mnt"]
    check_workload(m, ordering, {mp: True for mp in mountpoints(ordering)}, "frontswap")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("ordering", ORDERINGS, ids=str)
def test_late_backend(machine, profile, ordering):
    m = machine(profile)
    play(m, ordering.steps, "insmod tmem_dict")
    mounted, swap_on = live_at_backend(ordering.steps)
    replay = [x for x in dmesg_of(m, "tmem_dict: init_fs", "tmem_dict: frontswap init")
              if "published: yes" not in x]
    swap_after = enabled_after_backend(ordering.steps, "swapon")
    if swap_after:   # the swapon after registration inits the device directly
        replay.remove("tmem_dict: frontswap init: swap type 0")
    if profile == "3.10":
        assert replay == [f"tmem_dict: init_fs: pool {i} (ops published: no)"
                          for i in range(len(mounted))] + (
            ["tmem_dict: frontswap init: swap type 0"] if swap_on else [])
        benefits = {mp: True for mp in mountpoints(ordering)}
        swap = "frontswap"
    else:            # 3.9: nothing recorded, nothing replayed
        assert replay == []
        benefits = {mp: enabled_after_backend(ordering.steps, step)
                    for step, mp in MOUNTPOINT.items() if step in ordering.steps}
        assert all((sb(m, mp).cleancache_poolid >= 0) is b for mp, b in benefits.items())
        # a device enabled before has no map; its stores still reach the backend (refused here)
        assert (m.kernel.mm.swap.swap_info[0].frontswap_map is None) is not swap_after
        swap = "frontswap" if swap_after else "refused"
    check_workload(m, ordering, benefits, swap, exclusive=False)
