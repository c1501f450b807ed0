"""Frontend overhead: cleancache and frontswap in front of a trivial dict backend.

Measures, with a backend that keeps pages in a dict (so the frontend's own
work is what shows):

* put+get per page through cleancache (``put_page``/``get_page`` on an
  inode: inline guard, fake-id translation, key lookup, counters) and
  store+load per page through frontswap (map byte, counts, counters), each as
  a RATIO to calling the same backend ops directly on the same pages in the
  same repeat (goal <= 2x); both profiles, targets interleaved per repeat;
  plus a frontswap "frontend" that only forwards each call: the cost of one
  Python call layer, the floor any Python frontend starts from;
* replay cost at registration: 8+8 vs 32+32 recorded filesystems (private +
  shared) and 8 vs 29 swap types, on frontends of a booted kernel (so the
  per-entry ``kmodemu_tmem_replay`` event is included). Goal: linear, i.e.
  the same cost per entry at both sizes.

Run: ``.venv/bin/python benchmarks/bench_frontends.py [--pages 4096] [--repeats 9]``.
No assertion is made on times; this prints a table (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kmodemu.kernel.kernel import Kernel  # noqa: E402
from kmodemu.mm.cleancache import Cleancache  # noqa: E402
from kmodemu.mm.filesystem import FS_TYPES, BlockDevice, Inode, Superblock  # noqa: E402
from kmodemu.mm.frontswap import MAX_SWAPFILES, Frontswap, new_map  # noqa: E402
from kmodemu.mm.page import PAGE_SIZE, Page  # noqa: E402
from kmodemu.mm.swap import SwapDevice  # noqa: E402

PAGES_PER_FILE = 256


class DictBackend:
    """Both ops tables over dicts: the cheapest backend there can be."""

    def __init__(self):
        self.pools: dict = {}
        self.swap: dict = {}
        self.next_pool = 0

    def init_fs(self, pagesize):
        pool = self.next_pool
        self.next_pool += 1
        return pool

    def init_shared_fs(self, uuid, pagesize):
        return self.init_fs(pagesize)

    def put_page(self, pool, key, index, page):
        self.pools[(pool, key, index)] = page.data

    def get_page(self, pool, key, index, page):
        data = self.pools.pop((pool, key, index), None)  # ephemeral: a hit removes it
        if data is None:
            return -1
        page.data = data
        return 0

    def invalidate_page(self, pool, key, index):
        self.pools.pop((pool, key, index), None)

    def invalidate_inode(self, pool, key):
        pass

    def invalidate_fs(self, pool):
        pass

    def init(self, type):
        pass

    def store(self, type, offset, page):
        self.swap[(type, offset)] = page.data
        return 0

    def load(self, type, offset, page):
        data = self.swap.get((type, offset))
        if data is None:
            return -1
        page.data = data
        return 0

    def invalidate_area(self, type):
        pass


class FrontswapBackend(DictBackend):
    """frontswap's ``invalidate_page(type, offset)`` has its own signature."""

    def invalidate_page(self, type, offset):
        self.swap.pop((type, offset), None)


def make_pages(n: int, seed: int) -> list[Page]:
    rng = random.Random(seed)
    return [Page(rng.randbytes(64) * (PAGE_SIZE // 64)) for _ in range(n)]


# ------------------------------------------------------------ per-page targets

def cleancache_setup(n: int, lazy_init: bool):
    """A frontend with a registered dict backend and one mounted ext4 of n/256 files.

    The superblock and inodes are the memory model's own classes, so attribute
    access costs what it costs in a machine.
    """
    backend = DictBackend()
    cc = Cleancache(lazy_init=lazy_init)
    cc.register_ops(backend)
    dev = BlockDevice("/dev/sda1")
    sb = Superblock(FS_TYPES["ext4"], dev.path, "/mnt", dev, "rw", None)
    cc.init_fs(sb)
    inodes = []
    for i in range((n + PAGES_PER_FILE - 1) // PAGES_PER_FILE):
        inode = Inode(12 + i, f"/mnt/f{i}", PAGES_PER_FILE * PAGE_SIZE, None, 0)
        inode.attach(sb)
        inodes.append(inode)
    return backend, cc, sb, inodes


def cleancache_direct(pages, lazy_init):
    backend, cc, sb, inodes = cleancache_setup(len(pages), lazy_init)
    pool = cc.real_poolid(sb)
    calls = [(inodes[i // PAGES_PER_FILE].cleancache_key, i % PAGES_PER_FILE, p)
             for i, p in enumerate(pages)]
    put, get, scratch = backend.put_page, backend.get_page, Page()
    gc.collect()
    t0 = time.perf_counter()
    for key, index, page in calls:
        put(pool, key, index, page)
    for key, index, _ in calls:
        get(pool, key, index, scratch)
    return time.perf_counter() - t0


def cleancache_frontend(pages, lazy_init):
    backend, cc, sb, inodes = cleancache_setup(len(pages), lazy_init)
    calls = [(inodes[i // PAGES_PER_FILE], i % PAGES_PER_FILE, p) for i, p in enumerate(pages)]
    put, get, scratch = cc.put_page, cc.get_page, Page()
    gc.collect()
    t0 = time.perf_counter()
    for inode, index, page in calls:
        put(inode, index, page)
    for inode, index, _ in calls:
        get(inode, index, scratch)
    elapsed = time.perf_counter() - t0
    assert cc.succ_gets == len(pages), "the frontend lost pages"
    return elapsed


def frontswap_setup(n: int, lazy_init: bool):
    backend = FrontswapBackend()
    sis = SwapDevice(BlockDevice("/dev/sdb1"), 0, -1, n + 1)   # the swap layer's own class
    fs = Frontswap(lazy_init=lazy_init, swap_info=[sis] + [None] * (MAX_SWAPFILES - 1))
    fs.register_ops(backend)
    fs.init(0, new_map(n + 1))
    return backend, fs


def frontswap_direct(pages, lazy_init):
    backend, _ = frontswap_setup(len(pages), lazy_init)
    store, load, scratch = backend.store, backend.load, Page()
    calls = list(enumerate(pages, start=1))
    gc.collect()
    t0 = time.perf_counter()
    for offset, page in calls:
        store(0, offset, page)
    for offset, _ in calls:
        load(0, offset, scratch)
    return time.perf_counter() - t0


class PassThrough:
    """Forwards store/load and does nothing else: one Python call layer, no bookkeeping."""

    def __init__(self, ops):
        self.ops = ops

    def store(self, type, offset, page):
        return self.ops.store(type, offset, page)

    def load(self, type, offset, page):
        return self.ops.load(type, offset, page)


def frontswap_passthrough(pages):
    backend, _ = frontswap_setup(len(pages), True)
    front = PassThrough(backend)
    store, load, scratch = front.store, front.load, Page()
    calls = list(enumerate(pages, start=1))
    gc.collect()
    t0 = time.perf_counter()
    for offset, page in calls:
        store(0, offset, page)
    for offset, _ in calls:
        load(0, offset, scratch)
    return time.perf_counter() - t0


def frontswap_frontend(pages, lazy_init):
    backend, fs = frontswap_setup(len(pages), lazy_init)
    store, load, scratch = fs.store, fs.load, Page()
    calls = list(enumerate(pages, start=1))
    gc.collect()
    t0 = time.perf_counter()
    for offset, page in calls:
        store(0, offset, page)
    for offset, _ in calls:
        load(0, offset, scratch)
    elapsed = time.perf_counter() - t0
    assert fs.loads == len(pages), "the frontend lost pages"
    return elapsed


# ------------------------------------------------------------------ replay

def replay_cleancache(kernel, nfs: int, rounds: int) -> float:
    """Seconds per ``register_ops`` that replays ``nfs`` private + ``nfs`` shared slots."""
    uuid = bytes(16)
    fronts = []
    for _ in range(rounds):
        cc = Cleancache(kernel)
        for _ in range(nfs):
            cc.init_fs(SimpleNamespace(cleancache_poolid=-1))
            cc.init_shared_fs(uuid, SimpleNamespace(cleancache_poolid=-1))
        fronts.append((cc, DictBackend()))
    gc.collect()
    t0 = time.perf_counter()
    for cc, backend in fronts:
        cc.register_ops(backend)
    return (time.perf_counter() - t0) / rounds


def replay_frontswap(kernel, ntypes: int, rounds: int) -> float:
    """Seconds per ``register_ops`` that replays ``ntypes`` recorded swap types."""
    fronts = []
    for _ in range(rounds):
        info = [None] * MAX_SWAPFILES
        fs = Frontswap(kernel, swap_info=info)
        for t in range(ntypes):
            info[t] = SimpleNamespace(max=64, frontswap_map=None, frontswap_pages=0)
            fs.init(t, new_map(64))
        fronts.append((fs, FrontswapBackend()))
    gc.collect()
    t0 = time.perf_counter()
    for fs, backend in fronts:
        fs.register_ops(backend)
    return (time.perf_counter() - t0) / rounds


# -------------------------------------------------------------------- main

def median_range(xs):
    return statistics.median(xs), min(xs), max(xs)


def measure(pages, repeats: int, rounds: int) -> dict:
    per_page = {}
    for profile, lazy in (("3.10", True), ("3.9", False)):
        per_page[f"cleancache put+get ({profile})"] = (
            lambda lazy=lazy: cleancache_direct(pages, lazy),
            lambda lazy=lazy: cleancache_frontend(pages, lazy))
        per_page[f"frontswap store+load ({profile})"] = (
            lambda lazy=lazy: frontswap_direct(pages, lazy),
            lambda lazy=lazy: frontswap_frontend(pages, lazy))
    per_page["frontswap call layer only"] = (lambda: frontswap_direct(pages, True),
                                             lambda: frontswap_passthrough(pages))
    kernel = Kernel(profile="3.10")
    kernel.boot()
    replay = {
        "cleancache 8+8 fs": (16, lambda: replay_cleancache(kernel, 8, rounds)),
        "cleancache 32+32 fs": (64, lambda: replay_cleancache(kernel, 32, rounds)),
        "frontswap 8 types": (8, lambda: replay_frontswap(kernel, 8, rounds)),
        "frontswap 29 types": (29, lambda: replay_frontswap(kernel, 29, rounds)),
    }
    t_page = {name: ([], []) for name in per_page}
    t_replay = {name: [] for name in replay}
    for _ in range(repeats):  # every target once per repeat, so drift hits them alike
        for name, (direct, front) in per_page.items():
            t_page[name][0].append(direct())
            t_page[name][1].append(front())
        for name, (_, fn) in replay.items():
            t_replay[name].append(fn())
    n = len(pages)
    rows = [{"target": name, "direct_ns": median_range([t / n * 1e9 for t in d]),
             "frontend_ns": median_range([t / n * 1e9 for t in f]),
             "ratio": median_range([b / a for a, b in zip(d, f)])}
            for name, (d, f) in t_page.items()]
    replay_rows = [{"case": name, "entries": entries,
                    "us_per_register": median_range([t * 1e6 for t in t_replay[name]]),
                    "ns_per_entry": median_range([t / entries * 1e9 for t in t_replay[name]])}
                   for name, (entries, _) in replay.items()]
    return {"pages": n, "repeats": repeats, "replay_rounds": rounds, "per_page": rows,
            "replay": replay_rows, "python": sys.version.split()[0]}


def print_table(result: dict) -> None:
    print(f"{result['pages']} pages, {result['repeats']} repeats, median (min-max); "
          f"goal: frontend <= 2x the direct backend calls")
    print()
    print(f"| {'target':30} | direct ns/page | frontend ns/page | overhead ns/page | ratio            |")
    print(f"|{'-' * 32}|----------------|------------------|------------------|------------------|")
    for r in result["per_page"]:
        m, lo, hi = r["ratio"]
        direct, front = r["direct_ns"][0], r["frontend_ns"][0]
        print(f"| {r['target']:30} | {direct:14.0f} | {front:16.0f} | {front - direct:16.0f} | "
              f"{m:4.2f} ({lo:.2f}-{hi:.2f}) |")
    print()
    print(f"replay at registration ({result['replay_rounds']} registrations per repeat, "
          "kmodemu_tmem_replay event included); goal: linear")
    print()
    print(f"| {'case':22} | entries | us per register_ops | ns per entry       |")
    print(f"|{'-' * 24}|---------|---------------------|--------------------|")
    for r in result["replay"]:
        us, ns = r["us_per_register"], r["ns_per_entry"]
        cell = f"{ns[0]:.0f} ({ns[1]:.0f}-{ns[2]:.0f})"
        print(f"| {r['case']:22} | {r['entries']:7} | {us[0]:19.1f} | {cell:18} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=200, help="registrations timed per repeat")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    result = measure(make_pages(args.pages, args.seed), args.repeats, args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
