"""Instructions per page of the full stack's put+get, counted by valgrind (callgrind).

Why: on a shared VM the time of the same code moves by 5-30 % from one minute
to the next, so a change worth 2 % cannot be seen in ``bench_hotpath.py``'s
ratios without many alternating runs. An instruction count does not move: it
answers "did this change make the Python path do less?" in one run, and the
timed benchmark then says whether that shows in time (cache misses are not
counted here, so fewer instructions is necessary, not sufficient).

What is counted: ``kernel.cleancache.put_page`` + ``get_page`` and
``kernel.frontswap.store`` + ``load`` on a booted machine with ``insmod
zcache``, as in ``bench_hotpath.py``, but with zstd replaced by lookups of the
pages' precomputed compressed bytes, so the count is zcache's, the frontends'
and the memory model's own work. Each case runs twice under callgrind (1 and 3
rounds of the corpus) and the difference is divided out, which cancels Python's
start-up and the machine's boot. Valgrind's own ``memcpy``/``memcmp`` count
every byte, so copies weigh more here than in time.

Run: ``.venv/bin/python benchmarks/ir_hotpath.py [--pages 1024] [--zpool zbud]``
(needs ``valgrind`` on PATH; about 20 s per case and round count).
``--by-function N`` needs no valgrind: it counts the bytecodes one round
executes (``sys.settrace`` opcode events) and prints the N busiest functions,
which says where in the Python path a page's work is.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def workload(zpool: str, kind: str, pages_n: int):
    """Boot, swap the compressor for lookups; returns (machine, one_round)."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import bench_hotpath as bh
    from kmodemu.mm.page import Page

    pages, _ = bh.build_corpus(pages_n, 1)
    _, _, compress_m = bh.load_plugin()
    zstd = compress_m.get_compressor("zstd")
    packed = {p: zstd.compress(p) for p in pages}
    m, k, inodes = bh.stack_machine("zstd", zpool, len(pages))
    zcache = k.cleancache.ops.zcache
    # the put core's and the pamops' bound codec calls; a rename must fail here,
    # not leave real zstd in the count
    if not (hasattr(zcache, "_compress") and hasattr(zcache.pamops, "_decompress")):
        raise SystemExit("ir_hotpath: zcache's codec attributes moved; update workload()")
    zcache._compress = packed.__getitem__
    zcache.pamops._decompress = bytes
    scratch = Page()
    if kind == "cleancache":
        calls = [(inodes[i // bh.FILE_PAGES], i % bh.FILE_PAGES, Page(p))
                 for i, p in enumerate(pages)]
        put, get = k.cleancache.put_page, k.cleancache.get_page
    else:
        calls = [(0, off, Page(p)) for off, p in enumerate(pages, start=1)]
        put, get = k.frontswap.store, k.frontswap.load

    def one_round() -> int:
        for a, b, page in calls:
            put(a, b, page)
        for a, b, _ in calls:
            get(a, b, scratch)  # pages zcache refused miss, as in bench_hotpath
        return len(calls)
    return m, one_round


def child(zpool: str, kind: str, pages_n: int, rounds: int) -> None:
    """The measured program: ``rounds`` put+get passes of the workload."""
    m, one_round = workload(zpool, kind, pages_n)
    for _ in range(rounds):
        one_round()
    m.close()


def by_function(zpool: str, kind: str, pages_n: int, top: int) -> list[tuple[str, float]]:
    """Bytecodes per page of one round, by function (the second round: caches warm).

    No valgrind needed: ``sys.settrace`` with opcode events counts what the
    interpreter executes, which says where in the Python path the work is.
    """
    m, one_round = workload(zpool, kind, pages_n)
    one_round()
    per: collections.Counter[str] = collections.Counter()

    def trace(frame, event, arg):
        frame.f_trace_opcodes = True
        if event == "opcode":
            per[frame.f_code.co_qualname] += 1
        return trace
    sys.settrace(trace)
    try:
        n = one_round()
    finally:
        sys.settrace(None)
    m.close()
    rows = [("(all)", sum(per.values()) / n)]
    rows += [(name, c / n) for name, c in per.most_common(top)]
    return rows


def count(zpool: str, kind: str, pages_n: int, rounds: int) -> int:
    """Instructions of one child run under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONHASHSEED="0")
        res = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out",
             sys.executable, os.path.abspath(__file__), "--child", zpool, kind,
             str(pages_n), str(rounds)],
            env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", res.stderr)
    if res.returncode or not found:
        raise SystemExit(f"ir_hotpath: valgrind run failed (exit {res.returncode}):\n"
                         f"{res.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1024)
    ap.add_argument("--zpool", choices=("zbud", "zsmalloc"), action="append")
    ap.add_argument("--by-function", type=int, metavar="N", default=0,
                    help="no valgrind: bytecodes per page, the N busiest functions")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        zpool, kind, pages_n, rounds = args.child
        child(zpool, kind, int(pages_n), int(rounds))
        return 0
    if args.by_function:
        for zpool in args.zpool or ["zbud", "zsmalloc"]:
            for kind in ("cleancache", "frontswap"):
                print(f"{kind} + {zpool}: bytecodes per page put+get")
                for name, per_page in by_function(zpool, kind, args.pages, args.by_function):
                    print(f"  {per_page:8.1f}  {name}")
        return 0
    if shutil.which("valgrind") is None:
        print("ir_hotpath: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    print(f"| {'path':48} | instructions per page put+get |")
    print(f"|{'-' * 50}|-------------------------------|")
    for zpool in args.zpool or ["zbud", "zsmalloc"]:
        for kind, label in (("cleancache", "kernel.cleancache put_page+get_page"),
                            ("frontswap", "kernel.frontswap store+load")):
            one = count(zpool, kind, args.pages, 1)
            three = count(zpool, kind, args.pages, 3)
            per_page = (three - one) / (2 * args.pages)
            print(f"| {label + ' + ' + zpool:48} | {per_page:29.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
