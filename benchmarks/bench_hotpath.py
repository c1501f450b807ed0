"""Hot path of zcache: put+get per page through the frontends, and through its ops alone.

Measures, on a deterministic corpus of real pages of this machine (page-aligned
4 KiB cuts of shared libraries, docs, Python sources and bytecode, gzipped
files, plus zero and same-filled pages, chosen by a seed):

* (a) the full stack: ``kernel.cleancache.put_page(inode, index, page)`` +
  ``get_page`` and ``kernel.frontswap.store(type, offset, page)`` + ``load``
  on a booted 3.10 machine with ``insmod zcache`` done (zbud and zsmalloc),
  as a RATIO to raw zstd-3 compress+decompress of the same pages, timed just
  before and just after the row in each repeat (goal: a ratio <= 1.25); beside
  it the backend-only rows, which call ``zcache.cleancache_ops`` /
  ``zcache.frontswap_ops`` directly;
* the same with lz4 against raw lz4 (G2: overhead <= 0.25 x raw zstd-3, shown
  for information);
* (b) density: zbud frames against an independent simulation of kernel zbud
  (exactly equal), zsmalloc against ideal packing (the sum of the compressed
  sizes of the pages it holds / 4096: >= 0.95);
* (c) Python bookkeeping bytes per stored page, by tracemalloc (G9: <= 128 B);
* (d) zero and same-filled pages put+get through cleancache with the
  metadata-only shortcut, as a ratio to the same pages put+get through the
  same stack with the shortcut off (``zero_filled=False, same_filled=False``:
  compressed like any page), both timed in the same repeat (<= 0.25).

Each timed window also counts minor page faults (``faults/page``), and glibc's
heap trimming is turned off first (``--trim`` keeps it), so that neither side of
a ratio faults memory in while the other does not (see ``steady_heap``).
It ends with one line per goal: the measured figure and "met" / "NOT met".
Run: ``.venv/bin/python benchmarks/bench_hotpath.py [--pages 4096] [--repeats 9]``.
No assertion is made; ``--json`` prints the figures for machines.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import glob
import importlib
import json
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc

from kmodemu.machine import Machine, MachineDef
from kmodemu.mm.filesystem import Inode
from kmodemu.mm.page import Page
from kmodemu.modules.discovery import plugin_package

PAGE = 4096


def load_plugin():
    """zcache's modules, imported through the installed entry point (kmodemu's one plugin loader)."""
    pkg = plugin_package("zcache").__name__
    return (importlib.import_module(f"{pkg}.main"), importlib.import_module(f"{pkg}.zbud"),
            importlib.import_module(f"{pkg}.compress"))


# ------------------------------------------------------------------ corpus

CLASSES = (  # name, share, file patterns
    ("elf", 0.35, ["/usr/lib/x86_64-linux-gnu/*.so*", "/usr/lib/*/*.so*"]),
    ("doc", 0.15, ["/usr/share/doc/*/*", "/usr/share/doc/*/*/*"]),
    ("py", 0.15, ["/usr/lib/python3*/*.py", "/usr/lib/python3*/*/*.py"]),
    ("pyc", 0.15, ["/usr/lib/python3*/__pycache__/*.pyc", "/usr/lib/python3*/*/__pycache__/*.pyc"]),
    ("gz", 0.10, ["/usr/share/doc/*/*.gz", "/usr/share/man/man1/*.gz"]),
)
ZERO_SHARE = 0.08
SAME_SHARE = 0.02


def _files(patterns, text_only=False):
    seen = set()
    out = []
    for pat in patterns:
        for path in sorted(glob.glob(pat)):
            if path in seen or not os.path.isfile(path) or os.path.islink(path):
                continue
            if text_only and path.endswith(".gz"):
                continue
            seen.add(path)
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            if size:
                out.append((path, size))
    return out


def build_corpus(n: int, seed: int) -> tuple[list[bytes], list[str]]:
    """``n`` distinct pages and their class names, reproducible from ``seed`` on this machine."""
    rng = random.Random(seed)
    pages: list[bytes] = []
    kinds: list[str] = []
    seen: set[bytes] = set()
    for name, share, patterns in CLASSES:
        files = _files(patterns, text_only=(name == "doc"))
        if not files:
            continue
        want = round(n * share)
        weights = [(size + PAGE - 1) // PAGE for _, size in files]
        tries = 0
        got = 0
        while got < want and tries < want * 20:
            tries += 1
            path, size = rng.choices(files, weights=weights)[0]
            off = rng.randrange((size + PAGE - 1) // PAGE) * PAGE
            try:
                with open(path, "rb") as fh:
                    fh.seek(off)
                    data = fh.read(PAGE)
            except OSError:
                continue
            data = data.ljust(PAGE, b"\0")
            if data in seen or data == bytes(PAGE):
                continue
            seen.add(data)
            pages.append(data)
            kinds.append(name)
            got += 1
    for _ in range(round(n * ZERO_SHARE)):
        pages.append(bytes(PAGE))
        kinds.append("zero")
    while len(pages) < n:
        word = rng.getrandbits(64).to_bytes(8, "little")
        pages.append(word * (PAGE // 8))
        kinds.append("same")
    order = list(range(len(pages)))
    rng.shuffle(order)
    return [pages[i] for i in order][:n], [kinds[i] for i in order][:n]


# -------------------------------------------------------------- targets

def _minflt() -> int:
    """Minor page faults of this process so far: each is fresh host memory touched
    (about 2 us apiece on the development VM), which the timings include."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Frames:
    """Unbounded frame allocator (RAM is not the point here)."""

    __slots__ = ("next", "free_list")

    def __init__(self):
        self.next = 0
        self.free_list = []

    def alloc(self):
        if self.free_list:
            return self.free_list.pop()
        self.next += 1
        return self.next

    def free(self, pfn):
        self.free_list.append(pfn)


def raw_roundtrip(comp, pages):
    c = comp.compress
    d = comp.decompress
    f0 = _minflt()
    t0 = time.perf_counter()
    packed = [c(p) for p in pages]
    t1 = time.perf_counter()
    for b in packed:
        d(b)
    t2 = time.perf_counter()
    faults = _minflt() - f0
    return t1 - t0, t2 - t1, faults


def dict_store_roundtrip(comp, pages):
    """The thinnest zcache: packed int keys, compressed bytes in a dict."""
    c = comp.compress
    d = comp.decompress
    store = {}
    f0 = _minflt()
    t0 = time.perf_counter()
    for i, p in enumerate(pages):
        store[(1 << 48) | i] = c(p)
    t1 = time.perf_counter()
    pop = store.pop
    for i in range(len(pages)):
        d(pop((1 << 48) | i))
    t2 = time.perf_counter()
    faults = _minflt() - f0
    return t1 - t0, t2 - t1, faults


def make_cleancache(main_m, comp_name, zpool, npages, **flags):
    zcache = main_m.Zcache(Frames(), comp_name, zpool=zpool, **flags)
    ops = zcache.cleancache_ops
    pid = ops.init_fs(PAGE)
    keys = [(i // 16).to_bytes(8, "little") + bytes(16) for i in range(npages)]
    return zcache, ops, pid, keys, Page


def cleancache_roundtrip(main_m, comp_name, zpool, pages, check=False, **flags):
    zcache, ops, pid, keys, Page = make_cleancache(main_m, comp_name, zpool, len(pages), **flags)
    page_objs = [Page(p) for p in pages]
    scratch = Page()
    put = ops.put_page
    get = ops.get_page
    gc.collect()
    f0 = _minflt()
    t0 = time.perf_counter()
    for i, pg in enumerate(page_objs):
        put(pid, keys[i], i & 15, pg)
    t1 = time.perf_counter()
    misses = 0
    for i in range(len(page_objs)):
        if get(pid, keys[i], i & 15, scratch):
            misses += 1
        elif check and scratch.data != pages[i]:
            raise AssertionError(f"cleancache returned wrong data for page {i}")
    t2 = time.perf_counter()
    faults = _minflt() - f0
    return t1 - t0, t2 - t1, misses, faults


def frontswap_roundtrip(main_m, comp_name, zpool, pages, check=False):
    zcache = main_m.Zcache(Frames(), comp_name, zpool=zpool)
    ops = zcache.frontswap_ops
    ops.init(0)
    page_objs = [Page(p) for p in pages]
    scratch = Page()
    store = ops.store
    load = ops.load
    gc.collect()
    f0 = _minflt()
    t0 = time.perf_counter()
    for i, pg in enumerate(page_objs):
        store(0, i, pg)
    t1 = time.perf_counter()
    misses = 0
    for i in range(len(page_objs)):
        if load(0, i, scratch):
            misses += 1
        elif check and scratch.data != pages[i]:
            raise AssertionError(f"frontswap returned wrong data for page {i}")
    t2 = time.perf_counter()
    faults = _minflt() - f0
    return t1 - t0, t2 - t1, misses, faults


# ---------------------------------------------- the full stack: through the frontends

#: pages per file of the full-stack rows (as the backend-only rows: one object per 16 pages)
FILE_PAGES = 16


def stack_machine(comp_name, zpool, npages):
    """A booted 3.10 machine with ext4 on /mnt, swap on, and ``insmod zcache`` done.

    zcache is loaded as a module from its entry point, so its ops are the ones
    registered with ``kernel.cleancache`` / ``kernel.frontswap``; the files are
    the memory model's own inodes on the mounted superblock.
    """
    m = Machine(MachineDef(profile="3.10", mem="1G"))
    swap_mb = max(16, (npages + 1) * PAGE // (1 << 20) + 1)
    for argv in (["mount", "/dev/sda1", "/mnt", "-t", "ext4"],
                 ["mkswap", "/dev/sdb1", f"{swap_mb}M"], ["swapon", "/dev/sdb1"],
                 ["insmod", "zcache", f"zcache_comp_name={comp_name}", f"zpool={zpool}"]):
        rc, _, err = m.capture(argv)
        if rc:
            raise RuntimeError(f"{' '.join(argv)}: exit {rc}: {err.strip()}")
    k = m.kernel
    sb = k.mm.fs.find_mount("/mnt")
    inodes = []
    for i in range((npages + FILE_PAGES - 1) // FILE_PAGES):
        inode = Inode(1000 + i, f"/mnt/f{i}", FILE_PAGES * PAGE, None, 0)
        inode.attach(sb)
        inodes.append(inode)
    return m, k, inodes


def stack_cleancache_roundtrip(comp_name, zpool, pages, check=False):
    """put_page + get_page per page through ``kernel.cleancache``, as the page cache calls them."""
    m, k, inodes = stack_machine(comp_name, zpool, len(pages))
    cc = k.cleancache
    calls = [(inodes[i // FILE_PAGES], i % FILE_PAGES, Page(p)) for i, p in enumerate(pages)]
    scratch = Page()
    put = cc.put_page
    get = cc.get_page
    gc.collect()
    f0 = _minflt()
    t0 = time.perf_counter()
    for inode, index, pg in calls:
        put(inode, index, pg)
    t1 = time.perf_counter()
    misses = 0
    for i, (inode, index, _) in enumerate(calls):
        if get(inode, index, scratch):
            misses += 1
        elif check and scratch.data != pages[i]:
            raise AssertionError(f"kernel.cleancache returned wrong data for page {i}")
    t2 = time.perf_counter()
    faults = _minflt() - f0
    if check and cc.succ_gets != len(pages) - misses:
        raise AssertionError(f"kernel.cleancache counted {cc.succ_gets} hits, not {len(pages) - misses}")
    m.close()
    return t1 - t0, t2 - t1, misses, faults


def stack_frontswap_roundtrip(comp_name, zpool, pages, check=False):
    """store + load per page through ``kernel.frontswap`` (swap type 0, offsets from 1)."""
    m, k, _ = stack_machine(comp_name, zpool, len(pages))
    fs = k.frontswap
    calls = [(off, Page(p)) for off, p in enumerate(pages, start=1)]
    scratch = Page()
    store = fs.store
    load = fs.load
    gc.collect()
    f0 = _minflt()
    t0 = time.perf_counter()
    for off, pg in calls:
        store(0, off, pg)
    t1 = time.perf_counter()
    misses = 0
    for i, (off, _) in enumerate(calls):
        if load(0, off, scratch):
            misses += 1
        elif check and scratch.data != pages[i]:
            raise AssertionError(f"kernel.frontswap returned wrong data for page {i}")
    t2 = time.perf_counter()
    faults = _minflt() - f0
    if check and fs.loads != len(pages) - misses:
        raise AssertionError(f"kernel.frontswap counted {fs.loads} loads, not {len(pages) - misses}")
    m.close()
    return t1 - t0, t2 - t1, misses, faults


# -------------------------------------------------------------- density

def zbud_frames(sizes: list[int]) -> int:
    """Kernel zbud frames for these compressed sizes (independent simulation).

    Sizes include nothing: 32 bytes of tmem handle are added here; 64 chunks of
    64 bytes per frame; a zpage goes to the unbuddied frame with the most
    chunks used that still fits, else to a new frame; sizes above 4000 are
    refused (not stored, no frame).  No frees happen, so which frame of a list
    is picked does not change the count.
    """
    unbuddied = [0] * 65  # frames by chunks used
    frames = 0
    for size in sizes:
        if size > 4000:
            continue
        need = (size + 32 + 63) // 64
        for used in range(64 - need, 0, -1):
            if unbuddied[used]:
                unbuddied[used] -= 1
                break
        else:
            frames += 1
            unbuddied[need] += 1
    return frames


def density(main_m, comp, pages):
    """Store every page ephemerally (no mean rule) and count frames.

    The pages that reach the allocator are those the zcache does not keep as
    metadata only (zero- and same-filled pages) and whose compressed size the
    allocator accepts; the ideal is the sum of their compressed sizes / 4096.
    """
    out = {}
    for zpool in ("zbud", "zsmalloc"):
        zcache, ops, pid, keys, Page = make_cleancache(main_m, comp.name, zpool, len(pages))
        for i, p in enumerate(pages):
            ops.put_page(pid, keys[i], i & 15, Page(p))
        zc = zcache.counters.zcache
        frames = zcache.zpool.pageframes
        stored = zc.eph_zpages
        filled = zc.zero_filled_pages + zc.same_filled_pages
        sizes = [len(comp.compress(p)) for p in pages if zcache.filled_pampd(p) is None]
        kept = [s for s in sizes if s <= zcache.zpool.max_size]
        ideal = sum(kept) / PAGE
        out[zpool] = {
            "stored": stored,
            "metadata_only": filled,
            "in_frames": stored - filled,
            "refused": zc.failed_eph_puts,
            "frames": frames,
            "pages_per_frame": stored / frames,
            "frame_pages_per_frame": (stored - filled) / frames,
            "ideal_frame_pages_per_frame": len(kept) / ideal,
            "ideal_frames": ideal,
            "density_vs_ideal": ideal / frames,
        }
        if zpool == "zbud":
            out[zpool]["kernel_sim_frames"] = zbud_frames(sizes)
    return out


def bookkeeping(main_m, comp_name, pages, zpool):
    """Python bytes per stored page that are not frame contents (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    zcache = main_m.Zcache(Frames(), comp_name, zpool=zpool)
    ops = zcache.cleancache_ops
    pid = ops.init_fs(PAGE)
    # distinct handles for many copies of the corpus: one object per 16 pages
    n = len(pages)
    for rep in range(4):
        for i, p in enumerate(pages):
            j = rep * n + i
            ops.put_page(pid, (j >> 4).to_bytes(8, "little") + bytes(16), j & 15, Page(p))
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    payload = zcache.zpool.arena_bytes
    stored = zcache.counters.zcache.eph_zpages
    return {"stored": stored, "traced_bytes": used, "frame_bytes": payload,
            "bookkeeping_per_page": (used - payload) / stored}


# ------------------------------------------------------------------ main

#: glibc's mallopt parameter number for the heap-top trim threshold
M_TRIM_THRESHOLD = -1


def steady_heap() -> bool:
    """Stop glibc from trimming the heap top for this process; True if it took.

    Why: raw zstd-3 keeps the whole corpus compressed in a list, frees it, and
    glibc gives the heap top back to the kernel, so the next raw run faults its
    memory in again (about 1 fault a page, 2 us apiece here), while zcache reuses
    the memory it freed. The baseline then carries costs the stack does not, and
    the ratio flatters the stack by 0.05-0.1. With trimming off neither side
    faults (the faults/page column shows it).
    """
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):  # not glibc: the column still shows the faults
        return False


def median_range(xs):
    return statistics.median(xs), min(xs), max(xs)


#: goal limits (ratios against the raw baseline timed in the same run)
G_A = 1.25   # cleancache put+get / raw zstd-3
G_B = 0.95   # zsmalloc frames vs ideal packing
G_C = 128    # bytes of Python bookkeeping per stored page
G_D = 0.25   # metadata-only put+get / compressed put+get of the same pages
#: zero / same-filled page sets are grown to at least this many pages per timing
MIN_SET = 1024
#: the reference of the 4096-page rows
RAW = "raw zstd-3 compress+decompress"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--trim", action="store_true",
                    help="leave glibc's heap trimming on (the baseline then faults; see steady_heap)")
    args = ap.parse_args(argv)
    steady = False if args.trim else steady_heap()

    main_m, zbud_m, compress_m = load_plugin()
    pages, kinds = build_corpus(args.pages, args.seed)
    n = len(pages)
    zstd = compress_m.get_compressor("zstd")
    have_lz4 = "lz4" in compress_m.available()
    lz4 = compress_m.get_compressor("lz4") if have_lz4 else None
    mix = {k: kinds.count(k) for k in sorted(set(kinds))}
    ratio = n * PAGE / sum(len(zstd.compress(p)) for p in pages)
    sets = {
        "zero": [p for p, k in zip(pages, kinds) if k == "zero"],
        "same-filled": [p for p, k in zip(pages, kinds) if k == "same"],
    }
    # both sets are grown to MIN_SET distinct page objects (as cold in the CPU
    # caches as the corpus pages): more zero pages, and same-filled pages of
    # more random words (none repeats, so no cache of recent words could help)
    if sets["zero"]:
        sets["zero"] += [bytes(PAGE) for _ in range(MIN_SET - len(sets["zero"]))]
    rng = random.Random(args.seed + 1)
    words = {p[:8] for p in sets["same-filled"]}
    while len(sets["same-filled"]) < MIN_SET:
        word = rng.getrandbits(64).to_bytes(8, "little")
        if word not in words and word != bytes(8):
            words.add(word)
            sets["same-filled"].append(word * (PAGE // 8))
    sets = {k: v for k, v in sets.items() if v}
    off = {"zero_filled": False, "same_filled": False}

    # correctness once, outside the timings
    for z in ("zbud", "zsmalloc"):
        cc_miss = cleancache_roundtrip(main_m, "zstd", z, pages, check=True)[2]
        cleancache_roundtrip(main_m, "zstd", z, pages, check=True, **off)
        fs_miss = frontswap_roundtrip(main_m, "zstd", z, pages, check=True)[2]
        # the frontends miss exactly the pages zcache refuses (too big for the allocator)
        if stack_cleancache_roundtrip("zstd", z, pages, check=True)[2] != cc_miss:
            raise AssertionError("kernel.cleancache and zcache's ops disagree on misses")
        if stack_frontswap_roundtrip("zstd", z, pages, check=True)[2] != fs_miss:
            raise AssertionError("kernel.frontswap and zcache's ops disagree on misses")

    targets = {
        RAW: (n, None, lambda: raw_roundtrip(zstd, pages)),
        "dict + zstd-3 (thinnest store)": (n, None, lambda: dict_store_roundtrip(zstd, pages)),
        "cleancache zbud zstd-3": (
            n, None, lambda: cleancache_roundtrip(main_m, "zstd", "zbud", pages)),
        "frontswap zbud zstd-3": (
            n, None, lambda: frontswap_roundtrip(main_m, "zstd", "zbud", pages)),
        "cleancache zsmalloc zstd-3": (
            n, None, lambda: cleancache_roundtrip(main_m, "zstd", "zsmalloc", pages)),
        "frontswap zsmalloc zstd-3": (
            n, None, lambda: frontswap_roundtrip(main_m, "zstd", "zsmalloc", pages)),
        "kernel.cleancache + zcache zbud zstd-3": (
            n, None, lambda: stack_cleancache_roundtrip("zstd", "zbud", pages)),
        "kernel.frontswap + zcache zbud zstd-3": (
            n, None, lambda: stack_frontswap_roundtrip("zstd", "zbud", pages)),
        "kernel.cleancache + zcache zsmalloc zstd-3": (
            n, None, lambda: stack_cleancache_roundtrip("zstd", "zsmalloc", pages)),
        "kernel.frontswap + zcache zsmalloc zstd-3": (
            n, None, lambda: stack_frontswap_roundtrip("zstd", "zsmalloc", pages)),
    }
    if have_lz4:
        targets["raw lz4 compress+decompress"] = (n, None, lambda: raw_roundtrip(lz4, pages))
        targets["cleancache zbud lz4"] = (
            n, None, lambda: cleancache_roundtrip(main_m, "lz4", "zbud", pages))
    for kind, ps in sets.items():
        ref = f"raw zstd-3, {kind} pages"
        targets[ref] = (len(ps), ref, lambda ps=ps: raw_roundtrip(zstd, ps))
        for z in ("zbud", "zsmalloc"):
            slow = f"cleancache {z}, {kind} pages compressed"
            targets[slow] = (len(ps), ref, lambda ps=ps, z=z: cleancache_roundtrip(
                main_m, "zstd", z, ps, **off))
            targets[f"cleancache {z}, {kind} pages metadata only"] = (
                len(ps), ref, lambda ps=ps, z=z: cleancache_roundtrip(main_m, "zstd", z, ps))

    # Each target is bracketed by its reference, timed just before and just
    # after it, and divided by their mean: this host's speed drifts over
    # seconds (raw zstd-3 read 22 us a page one minute, 29 the next), so a
    # reference timed at the start of a repeat, several targets earlier,
    # mixed the drift into the ratio (per-repeat ratios spread 0.9-1.8).
    times = {name: [] for name in targets}
    refs = {name: [] for name in targets}
    for _ in range(args.repeats):
        for name, (_, refname, fn) in targets.items():
            ref_fn = targets[refname or RAW][2]
            if ref_fn is fn:  # a reference itself
                times[name].append(fn())
                refs[name].append(times[name][-1])
                continue
            before = ref_fn()
            times[name].append(fn())
            after = ref_fn()
            refs[name].append(((before[0] + after[0]) / 2, (before[1] + after[1]) / 2))

    rows = []
    for name, ts in times.items():
        count, refname, _ = targets[name]
        rows.append({
            "target": name,
            "pages": count,
            "put_us": median_range([t[0] / count * 1e6 for t in ts]),
            "get_us": median_range([t[1] / count * 1e6 for t in ts]),
            "put_get_us": median_range([(t[0] + t[1]) / count * 1e6 for t in ts]),
            "faults_per_page": median_range([t[-1] / count for t in ts]),
            "reference": refname or RAW,
            "ratio_to_reference": median_range(
                [(t[0] + t[1]) / (r[0] + r[1]) for t, r in zip(ts, refs[name])]),
        })
    by_name = {r["target"]: r for r in rows}
    if have_lz4:
        raw_lz4 = times["raw lz4 compress+decompress"]
        lz = times["cleancache zbud lz4"]
        overhead = [((a[0] + a[1]) - (b[0] + b[1])) / (r[0] + r[1])
                    for a, b, r in zip(lz, raw_lz4, refs["cleancache zbud lz4"])]
        lz4_overhead = median_range(overhead)
    else:
        lz4_overhead = None
    shortcut = {}
    for kind in sets:
        for z in ("zbud", "zsmalloc"):
            fast = times[f"cleancache {z}, {kind} pages metadata only"]
            slow = times[f"cleancache {z}, {kind} pages compressed"]
            shortcut[f"{kind} {z}"] = median_range(
                [(a[0] + a[1]) / (b[0] + b[1]) for a, b in zip(fast, slow)])

    dens = density(main_m, zstd, pages)
    books = {z: bookkeeping(main_m, "zstd", pages, z) for z in ("zbud", "zsmalloc")}

    goals = []

    def goal(label, value, ok):
        goals.append({"goal": label, "value": value, "met": bool(ok)})

    for z in ("zbud", "zsmalloc"):
        for front, verb in (("cleancache", "put+get"), ("frontswap", "store+load")):
            m = by_name[f"kernel.{front} + zcache {z} zstd-3"]["ratio_to_reference"][0]
            goal(f"(a) kernel.{front} + zcache {z} {verb} / raw zstd-3 <= {G_A}", f"{m:.3f}",
                 m <= G_A)
    dz = dens["zbud"]
    goal("(b) zbud frames == kernel zbud rules", f"{dz['frames']} vs {dz['kernel_sim_frames']}",
         dz["frames"] == dz["kernel_sim_frames"])
    ds = dens["zsmalloc"]["density_vs_ideal"]
    goal(f"(b) zsmalloc density / ideal >= {G_B}", f"{ds:.3f}", ds >= G_B)
    for z in ("zbud", "zsmalloc"):
        v = books[z]["bookkeeping_per_page"]
        goal(f"(c) {z} bookkeeping per stored page <= {G_C} B", f"{v:.0f} B", v <= G_C)
    for key, (m, lo, hi) in shortcut.items():
        goal(f"(d) {key}: metadata only / compressed <= {G_D}", f"{m:.3f} ({lo:.2f}-{hi:.2f})",
             m <= G_D)

    result = {
        "pages": n, "seed": args.seed, "repeats": args.repeats, "mix": mix,
        "zstd3_corpus_ratio": ratio, "steady_heap": steady, "rows": rows,
        "lz4_stack_overhead_vs_raw_zstd3": lz4_overhead,
        "metadata_only_vs_compressed": shortcut,
        "density": dens, "bookkeeping": books, "goals": goals,
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    print(f"corpus: {n} pages, seed {args.seed}, mix {mix}, zstd-3 ratio {ratio:.2f}; "
          f"{args.repeats} repeats, median (min-max); heap trimming "
          f"{'off' if steady else 'on'}")
    print()
    print(f"| {'target':52} | pages | put us | get us | put+get us | faults/page "
          "| ratio to reference |")
    print(f"|{'-' * 54}|-------|--------|--------|------------|-------------|--------------------|")
    for r in rows:
        m, lo, hi = r["ratio_to_reference"]
        print(f"| {r['target']:52} | {r['pages']:5} | {r['put_us'][0]:6.2f} | {r['get_us'][0]:6.2f} | "
              f"{r['put_get_us'][0]:10.2f} | {r['faults_per_page'][0]:11.2f} | "
              f"{m:5.2f} ({lo:.2f}-{hi:.2f})   |")
    print("\nreference: raw zstd-3 compress+decompress of the same pages, timed just before and "
          "just after each row (their mean)")
    print("faults/page: minor page faults in the timed window (fresh host memory touched), "
          "median; they move with the heap's state and weigh on both sides of a ratio")
    if lz4_overhead:
        m, lo, hi = lz4_overhead
        print(f"lz4 stack overhead (zcache lz4 - raw lz4) / raw zstd-3: {m:.3f} ({lo:.3f}-{hi:.3f})")
    print("\nmetadata-only shortcut, put+get / the same pages compressed through the same stack:")
    for key, (m, lo, hi) in shortcut.items():
        print(f"  {key:22}: {m:.2f} ({lo:.2f}-{hi:.2f})")
    print("\ndensity (ephemeral puts of the whole corpus):")
    for z, d in dens.items():
        extra = f"; kernel zbud simulation {d['kernel_sim_frames']} frames" \
            if "kernel_sim_frames" in d else ""
        print(f"  {z:8}: {d['stored']} stored ({d['metadata_only']} metadata only, "
              f"{d['in_frames']} in frames), {d['refused']} refused, {d['frames']} frames: "
              f"{d['frame_pages_per_frame']:.2f} pages/frame in frames "
              f"(ideal {d['ideal_frame_pages_per_frame']:.2f}, {d['ideal_frames']:.0f} frames) = "
              f"{d['density_vs_ideal']:.3f} of ideal; {d['pages_per_frame']:.2f} counting all"
              f"{extra}")
    print("\nPython bookkeeping per stored page (tracemalloc, frame contents excluded):")
    for z, b in books.items():
        print(f"  {z:8}: {b['bookkeeping_per_page']:.0f} B over {b['stored']} pages "
              f"({b['traced_bytes'] / 1e6:.1f} MB traced, {b['frame_bytes'] / 1e6:.1f} MB frames)")
    print("\ngoals:")
    for g in goals:
        print(f"  {g['goal']:58} {g['value']:>18}  {'met' if g['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
