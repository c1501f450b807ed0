"""RAMster over loopback TCP: a remote get, and remotify throughput, against raw sockets.

Two nodes in this process (two kernels, real r2net connections between
127.0.0.1 and 127.0.0.2). Figures are ratios to raw baselines timed in the
same run, so a busy host cancels out:

* remote get of one page (request, the peer's raw get, data reply, localify,
  zstd decompress) vs raw zstd decompress of the same zpage + a raw TCP round
  trip (a 72-byte request answered with 4 KiB, server in a thread) — goal ≤ 1.3×;
* remotify throughput in pages/s (the worker's synchronous PUT per zpage with
  a status reply) vs a raw TCP loop sending 4 KiB messages one at a time with a
  24-byte reply each — goal ≥ 0.5×.

Run: ``.venv/bin/python benchmarks/bench_ramster.py [--pages 2000] [--repeats 5]``.
The zcache side is the fake of tests/ramster/fakes.py with zstd as its codec.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import zstandard

ROOT = Path(__file__).resolve().parents[1]
PAGE = 4096


def load():
    sys.path.insert(0, str(ROOT))
    from kmodemu.modules.discovery import import_plugin_dir
    import_plugin_dir(ROOT / "plugins" / "ramster")
    spec = importlib.util.spec_from_file_location("ramster_fakes", ROOT / "tests/ramster/fakes.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pages(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    words = [bytes(rng.getrandbits(8) for _ in range(8)) for _ in range(64)]
    return [b"".join(rng.choice(words) for _ in range(PAGE // 8)) for _ in range(n)]


def raw_server(ip: str, reply_size: int) -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind((ip, 0))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reply = b"r" * reply_size
        while True:
            head = conn.recv(4, socket.MSG_WAITALL)
            if len(head) < 4:
                return
            need = int.from_bytes(head, "big")
            body = conn.recv(need, socket.MSG_WAITALL)
            if len(body) < need:
                return
            conn.sendall(reply)
    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def raw_round_trips(n: int, request: int, reply: int, zpages: list[bytes] | None) -> float:
    srv, port = raw_server("127.0.0.1", reply)
    c = socket.create_connection(("127.0.0.1", port))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = (request - 4).to_bytes(4, "big") + b"q" * (request - 4)
    dctx = zstandard.ZstdDecompressor()
    t0 = time.perf_counter()
    for i in range(n):
        c.sendall(msg)
        c.recv(reply, socket.MSG_WAITALL)
        if zpages is not None:
            dctx.decompress(zpages[i])
    dt = time.perf_counter() - t0
    c.close()
    srv.close()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    fakes = load()
    cctx = zstandard.ZstdCompressor(level=3)
    dctx = zstandard.ZstdDecompressor()
    data = pages(args.pages)
    zpages = [cctx.compress(p) for p in data]
    gets, raw_gets, puts, raw_puts = [], [], [], []
    for rep in range(args.repeats):
        port = fakes.free_port("127.0.0.1", "127.0.0.2")
        nodes = [fakes.Node(i, f"127.0.0.{i + 1}", port) for i in range(2)]
        n0, n1 = nodes
        for n in nodes:
            n.zc.decompress = dctx.decompress
            n.configure("c", nodes)
        for n in nodes:
            for m in nodes:
                n.write("/sys/kernel/mm/ramster/manual_node_up", str(m.num))
        n0.write("/sys/kernel/mm/ramster/remote_target_nodenum", "1")
        n0.zc.new_pool(1, False)
        for i, z in enumerate(zpages):     # zcache stores zstd zpages, two per pageframe
            n0.zc.put(1, (7, 0, 0), i, b"")
            n0.zc.entries[(1, (7, 0, 0), i)].data = z
        with n0.kernel.bkl:
            n0.rs.pers_remotify_enable = 1
            t0 = time.perf_counter()
            while n0.rs.remotify_pageframe(False):
                pass
            puts.append(args.pages / (time.perf_counter() - t0))
            assert n1.rs.counters.foreign_pers_pages == args.pages
            t0 = time.perf_counter()
            for i in range(args.pages):
                page = n0.zc.get(1, (7, 0, 0), i)
                assert page is not None
            gets.append((time.perf_counter() - t0) / args.pages)
            assert page == data[-1]
        for n in nodes:
            n.close()
        reply = 24 + 48 + max(len(z) for z in zpages)
        raw_gets.append(raw_round_trips(args.pages, 72, 4096, zpages) / args.pages)
        raw_puts.append(args.pages / raw_round_trips(args.pages, 4096, 24, None))
        del reply
    get_us, raw_get_us = statistics.median(gets) * 1e6, statistics.median(raw_gets) * 1e6
    put_ps, raw_put_ps = statistics.median(puts), statistics.median(raw_puts)
    get_ratio = get_us / raw_get_us
    put_ratio = put_ps / raw_put_ps
    if args.json:
        print(json.dumps({"remote_get_us": get_us, "raw_get_us": raw_get_us,
                          "get_ratio": get_ratio, "remotify_pages_s": put_ps,
                          "raw_pages_s": raw_put_ps, "remotify_ratio": put_ratio}))
        return
    print(f"remote get          {get_us:8.1f} us/page   raw zstd+TCP RTT {raw_get_us:8.1f} us")
    print(f"remotify            {put_ps:8.0f} pages/s  raw 4 KiB req/reply {raw_put_ps:8.0f} /s")
    print(f"goal remote get <= 1.3x raw: {get_ratio:.3f} "
          f"{'met' if get_ratio <= 1.3 else 'NOT met'}")
    print(f"goal remotify >= 0.5x raw:   {put_ratio:.3f} "
          f"{'met' if put_ratio >= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
