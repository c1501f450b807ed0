"""Unload cost (profile 3.10-unload, beyond Linux): ``rmmod zcache`` against the pages it holds.

An unload writes every page frontswap holds back to its swap slot (a zcache
load: decompress, then a device write), then drops cleancache's pools. This
measures ``rmmod zcache`` through the console, the path a user takes, on
machines holding more and more frontswap pages, and in the same run writes
the very same pages (read back from the device afterwards) to the same swap
device directly: the raw cost of the writes alone. Reported per size: pages
held, seconds, pages/s of each, their RATIO, and µs per page (linear means
the same µs per page at every size).

Run: ``.venv/bin/python benchmarks/bench_unload.py [--sizes 64,128,256] [--repeats 3]``.
No assertion is made on times; this prints a table (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kmodemu.machine import Machine, MachineDef  # noqa: E402


def run(m: Machine, *argv: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    rc = m.run(list(argv), stdout=out, stderr=err, save=False)
    if rc:
        raise SystemExit(f"{' '.join(argv)}: exit {rc}: {err.getvalue()}")


def one(alloc_mb: int) -> dict:
    """One machine: swap into zcache, time the rmmod, then time the same writes directly."""
    m = Machine(MachineDef(profile="3.10-unload", mem="32M"))
    try:
        run(m, "mkswap", "/dev/sdb", f"{alloc_mb * 2}M")
        run(m, "swapon", "/dev/sdb")
        run(m, "insmod", "zcache")
        run(m, "alloc", "p", f"{alloc_mb}M", "--content", "mixed", "--seed", "1")
        k = m.kernel
        sis = k.mm.swap.swap_info[0]
        held_offsets = [o for o in range(len(sis.frontswap_map)) if sis.frontswap_map[o]]
        t0 = time.perf_counter()
        run(m, "rmmod", "zcache")
        unload = time.perf_counter() - t0
        pages = [(o, sis.disk[o]) for o in held_offsets]
        write = k.mm.swap.write_slot
        t0 = time.perf_counter()
        for o, data in pages:
            write(sis, o, data)
        direct = time.perf_counter() - t0
        return {"pages": len(pages), "unload_s": unload, "direct_s": direct}
    finally:
        m.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128,256", help="MB allocated beyond a 32M machine")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = []
    for size in (int(s) for s in a.sizes.split(",")):
        runs = [one(size) for _ in range(a.repeats)]
        unload = statistics.median(r["unload_s"] for r in runs)
        direct = statistics.median(r["direct_s"] for r in runs)
        pages = runs[0]["pages"]
        rows.append({"alloc_mb": size, "pages": pages, "unload_s": unload, "direct_s": direct,
                     "unload_pages_per_s": pages / unload, "direct_pages_per_s": pages / direct,
                     "ratio": unload / direct, "unload_us_per_page": unload / pages * 1e6})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'alloc':>6} {'pages':>7} {'rmmod s':>8} {'direct s':>9} {'rmmod p/s':>10} "
          f"{'direct p/s':>11} {'ratio':>6} {'us/page':>8}")
    for r in rows:
        print(f"{r['alloc_mb']:>5}M {r['pages']:>7} {r['unload_s']:>8.3f} {r['direct_s']:>9.4f} "
              f"{r['unload_pages_per_s']:>10.0f} {r['direct_pages_per_s']:>11.0f} "
              f"{r['ratio']:>5.0f}x {r['unload_us_per_page']:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
