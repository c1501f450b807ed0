"""Xen tmem hot path: a page's put+get through the shim and the hypervisor vs a dict store.

The shim's cleancache ops (``plugins/xen_tmem/shim.py``: one ``struct
tmem_op`` filled per call, hypercall 38) over the emulated hypervisor's tmem
(``kmodemu/xen/tmem.py``: client, pool, object, radix accounting, LRU lists,
frame billing, the 1 MB free target), on a private ephemeral pool, against a
plain ``dict`` doing the same put and exclusive get on the same keys and
pages, interleaved in the same repeat. Issue 11's goal: ratio <= 6x.

A floor row shows what the goal is up against: the real shim ops and
hypercall struct over a "hypervisor" that is one dict store/pop keyed by
(pool, oid, index) and nothing else — the fewest Python calls a put+get
through these layers can make.

Also shown: the same through a persistent pool (frontswap's store+load, no
LRU), and put+get with ``tmem_compress`` (zstd-1 on each put, decompress on
each get: the compressor dominates).

Run: ``.venv/bin/python benchmarks/bench_xen.py [--pages 4096] [--repeats 7] [--json]``.
No assertion is made on times; this prints a table.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kmodemu.kernel.fault_inject import FaultAttr  # noqa: E402
from kmodemu.mm.page import PAGE_SIZE, Page  # noqa: E402
from kmodemu.modules.discovery import plugin_package  # noqa: E402
from kmodemu.xen.hypervisor import Hypervisor  # noqa: E402

shim = plugin_package("xen_tmem").shim


def pages(n: int) -> list[Page]:
    out = []
    for i in range(n):
        word = (i * 0x9E3779B97F4A7C15 & (2**64 - 1)).to_bytes(8, "little")
        out.append(Page((word + bytes(range(256)) * 15 + word * 32)[:PAGE_SIZE]))
    assert all(len(p.data) == PAGE_SIZE for p in out)   # a short frame is -EFAULT
    return out


def dict_round(keys, data) -> float:
    store: dict = {}
    t = time.perf_counter()
    for k, p in zip(keys, data):
        store[k] = p.data
    for k, p in zip(keys, data):
        p.data = store.pop(k)
    return time.perf_counter() - t


def setup(cmdline: str, persistent: bool):
    hv = Hypervisor(1 << 30, cmdline + " dom0_mem=64M")
    dom = hv.domain_create("g", 1 << 16, 1 << 18)
    # as platform.attach does: the guest kernel's fail_hypervisor point, armed with nothing
    point = FaultAttr("fail_hypervisor", None, random.Random(0))  # type: ignore[arg-type]
    dom.fail_hypervisor = point.should_fail
    hc = shim.Hypercalls(functools.partial(hv.tmem.do_tmem_op, dom))   # what platform.py exports
    if persistent:
        ops = shim.TmemFrontswapOps(hc)
        ops.init(0)
        return ops, None
    cc = shim.TmemCleancacheOps(hc)
    return cc, cc.init_fs(PAGE_SIZE)


def floor_setup():
    """The real shim over the least a hypervisor can be: a dict, no client, pool or counters."""
    store: dict = {}

    def tmem_op(op) -> int:
        if op.cmd == shim._PUT:
            store[op.pool_id, op.oid, op.index] = op.gmfn.data
            return 1
        data = store.pop((op.pool_id, op.oid, op.index), None)
        if data is None:
            return 0
        op.gmfn.data = data
        return 1

    return shim.TmemCleancacheOps(shim.Hypercalls(tmem_op)), 0


def shim_round(ops, pool, data, persistent: bool) -> float:
    key = (7).to_bytes(24, "little")
    t = time.perf_counter()
    if persistent:
        for i, p in enumerate(data):
            ops.store(0, i, p)
        for i, p in enumerate(data):
            ops.load(0, i, p)
        for i in range(len(data)):
            ops.invalidate_page(0, i)
    else:
        for i, p in enumerate(data):
            ops.put_page(pool, key, i, p)
        for i, p in enumerate(data):
            ops.get_page(pool, key, i, p)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data = pages(args.pages)
    keys = [((7, 0, 0), i) for i in range(args.pages)]
    rows = []
    for label, cmdline, persistent in (("cleancache put+get (private ephemeral)", "tmem", False),
                                       ("frontswap store+load+flush (persistent)", "tmem", True),
                                       ("cleancache put+get, tmem_compress", "tmem tmem_compress",
                                        False),
                                       ("floor: the shim over a dict 'hypervisor'", None, False)):
        ratios, ns = [], []
        for _ in range(args.repeats):
            ops, pool = floor_setup() if cmdline is None else setup(cmdline, persistent)
            base = dict_round(keys, data)
            took = shim_round(ops, pool, data, persistent)
            ratios.append(took / base)
            ns.append(took / args.pages * 1e9)
        rows.append({"path": label, "ratio_vs_dict": round(statistics.median(ratios), 2),
                     "ns_per_page": round(statistics.median(ns))})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'path':<44} {'ratio vs dict':>14} {'ns/page':>9}")
    for r in rows:
        print(f"{r['path']:<44} {r['ratio_vs_dict']:>13}x {r['ns_per_page']:>9}")
    print("goal (issue 11): put+get through shim and hypervisor <= 6x a dict store")
    return 0


if __name__ == "__main__":
    sys.exit(main())
