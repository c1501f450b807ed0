"""RAMster over loopback TCP: remote gets and remotify throughput, against raw sockets.

Two nodes in this process (two kernels, real r2net connections between
127.0.0.1 and 127.0.0.2). Figures are ratios to raw baselines timed in the
same run, right after the figure they are compared with, so a busy host
cancels out:

* remote get of one page vs raw zstd decompress of the same zpage + a raw TCP
  round trip (a 72-byte request answered with 4 KiB, server in a thread) —
  goal ≤ 1.3×;
* remotify throughput in pages/s vs a raw TCP loop sending 4 KiB messages one
  at a time with a 24-byte reply each — goal ≥ 0.5×.

Two sections, both printed:

**real path** (the headline figures: the path users take). Two in-process
machines (``kmodemu.machine.Machine``) with the real zcache, driven by console
commands as tests/ramster/test_zcache_link.py does: ``insmod zcache
ramster=1``, ``service ramster start``, ``manual_node_up``,
``remote_target_nodenum``, ``eph/pers_remotify_enable``. Cleancache: a file
is read, dropped into zcache, remotified by the worker during ``sleep``, and
``read`` again — every page a remote get (checked against the counters); the
figure is the command's wall time per page. Frontswap: a process's pages are
swapped into zcache by ``pressure``, remotified, and ``touch-anon`` faults them
back — every page a remote persistent get. The raw baseline decompresses the
very zpages the peer held (taken from its foreign pools before the get). The
same command on zcache-local pages is printed for scale (what the frontend
costs without RAMster), and so is the raw get with both socket ends on one
thread (no thread to wake: the floor of a round trip between two in-process
kernels, whose waiting sender runs the peer's receive work itself).
Remotify: the wall time of the ``sleep`` that ran the worker, less that of an
equal idle ``sleep``, per page remotified.

**running machines** (two ``kmodemu boot`` processes, as tests/ramster/test_running.py
starts them): the same cleancache ``read`` and remotify ``sleep``, over the
machines' command sockets; the raw baseline decompresses the zpages plain
zcache makes of the same file in this process. Between processes no task can
run the peer's receive work; both ends poll without sleeping for a moment
instead (r2net's ``SPIN_S``), so a burst of round trips wakes no thread.

**component** (the stand-in zcache of tests/ramster/fakes.py with zstd as its
codec): RAMster and r2net alone — ``zc.get`` of remote pages and
``remotify_pageframe`` — without the page cache, frontswap or console. Kept
because it isolates RAMster's own per-message cost; the real path supersedes
it for the goals.

Run: ``.venv/bin/python benchmarks/bench_ramster.py [--pages 2000] [--repeats 5]``
(``--only real``, ``--only running`` or ``--only component`` for one section,
``--json`` for a machine-readable line).
"""

from __future__ import annotations

import argparse
import functools
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


@functools.cache
def load():
    """The RAMster plugin and tests/ramster/fakes.py (the stand-in zcache, the test helpers)."""
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


def raw_one_thread(n: int, zpages: list[bytes]) -> float:
    """The goal's raw get with no thread to wake: one thread plays both ends of the socket.

    Not a goal's baseline (that has its server in a thread); it is the floor of a round
    trip whose two ends run on one thread, as two in-process kernels' do (docs/ramster.md).
    """
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname())
    s, _ = srv.accept()
    for sock in (c, s):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = (72 - 4).to_bytes(4, "big") + b"q" * 68
    reply = b"r" * 4096
    dctx = zstandard.ZstdDecompressor()
    t0 = time.perf_counter()
    for i in range(n):
        c.sendall(msg)
        s.recv(4, socket.MSG_WAITALL)
        s.recv(68, socket.MSG_WAITALL)
        s.sendall(reply)
        c.recv(4096, socket.MSG_WAITALL)
        dctx.decompress(zpages[i])
    dt = time.perf_counter() - t0
    for sock in (c, s, srv):
        sock.close()
    return dt


CONF = """cluster:
	name = ramster
	node_count = 2
node:
	name = system1
	cluster = ramster
	number = 0
	ip_address = 127.0.0.1
	ip_port = {port}
node:
	name = system2
	cluster = ramster
	number = 1
	ip_address = 127.0.0.2
	ip_port = {port}
"""
SYS = "/sys/kernel/mm/ramster"
DBG = "/sys/kernel/debug/ramster"
#: zpages the worker remotifies per second of virtual time and kind (100 pageframes of 2)
REMOTIFY_PER_S = 200


class Console:
    """One machine, driven by console commands (what a user types after ``kmodemu``)."""

    def __init__(self, machine) -> None:
        self.m = machine

    def __call__(self, *argv: str) -> str:
        import io
        out, err = io.StringIO(), io.StringIO()
        rc = self.m.run(list(argv), stdout=out, stderr=err, save=False)
        if rc != 0:
            raise SystemExit(f"{' '.join(argv)}: exit {rc}: {err.getvalue()}")
        return out.getvalue()

    def timed(self, *argv: str) -> tuple[float, str]:
        t0 = time.perf_counter()
        out = self(*argv)
        return time.perf_counter() - t0, out

    def counter(self, name: str) -> int:
        return int(self("cat", f"{DBG}/{name}"))


class Running(Console):
    """A running machine process (``kmodemu boot``), driven the same way over its socket."""

    def __call__(self, *argv: str) -> str:
        rc, out, err = self.m.run(*argv)
        if rc != 0:
            raise SystemExit(f"{' '.join(argv)}: exit {rc}: {err}")
        return out


def foreign_zpages(node: Console, client: int) -> list[bytes]:
    """The compressed pages a node holds for ``client`` (another node), pool by pool."""
    from kmodemu_plugins.zcache.main import zcache_of
    zc = zcache_of(node.m.kernel.modules.get("zcache").ctx)
    out: list[bytes] = []
    for pool_id in range(16):
        pool = zc.tmem.get_pool(client, pool_id)
        if pool is None:
            continue
        for obj in pool.objs.values():
            out.extend(bytes(zc.zpool.read(pampd)) for pampd in obj.values())
    return out


def file_zpages(n: int, seed: int) -> list[bytes]:
    """The zpages zcache makes of the benchmark's file (``--content text --seed SEED``).

    For the running machines, whose zcache is in another process: one in-process
    machine with plain zcache reads the same file and drops it into cleancache.
    """
    from kmodemu.machine import Machine, MachineDef
    with Machine(MachineDef(cmdline="quiet", profile="3.10",
                            module_path=[str(ROOT / "plugins")])) as m:
        c = Console(m)
        c("insmod", "zcache")
        c("mount", "/dev/sda1", "/mnt", "-t", "ext4")
        c("mkfile", "/mnt/f", "--size", f"{n * 4}K", "--content", "text", "--seed", str(seed))
        c("read", "/mnt/f")
        c("drop-caches")
        zpages = foreign_zpages(c, 0xFFFF)
    assert len(zpages) == n, len(zpages)
    return zpages


def running(n: int, repeats: int) -> dict[str, list[float]]:
    """Cleancache gets and remotify between two machine processes (``kmodemu boot``)."""
    import tempfile

    from kmodemu.machine.testing import Machines
    r: dict[str, list[float]] = {k: [] for k in (
        "eph_get", "eph_local", "eph_raw", "remotify", "remotify_raw")}
    with tempfile.TemporaryDirectory() as tmp:
        machines = Machines(Path(tmp) / "machines")
        try:
            ra, rb = (machines(f"system{i}", boot=("--cmdline", "quiet")) for i in (1, 2))
            fakes = load()
            port = fakes.free_port(ra.address, rb.address)
            conf = CONF.replace("127.0.0.1", ra.address).replace("127.0.0.2", rb.address)
            fakes.write_cluster_files((ra.path / "root", rb.path / "root"), conf.format(port=port))
            a, b = Running(ra), Running(rb)
            bring_up((a, b))
            a("sleep", "61")
            for rep in range(repeats):
                cleancache_rep(a, n, rep, r, file_zpages)
        finally:
            machines.close()
    return r


def bring_up(nodes) -> None:
    """zcache with RAMster on both, the cluster up, node 0 remotifying to node 1, /mnt mounted."""
    for n in nodes:
        n("insmod", "zcache", "ramster=1", "disable_frontswap_selfshrink=1")
        n("service", "ramster", "start")
    for n in nodes:
        n("write", f"{SYS}/manual_node_up", "0")
        n("write", f"{SYS}/manual_node_up", "1")
    nodes[0]("write", f"{SYS}/remote_target_nodenum", "1")
    nodes[0]("mount", "/dev/sda1", "/mnt", "-t", "ext4")


def cleancache_rep(a: Console, n: int, rep: int, r: dict[str, list[float]], zpages) -> None:
    """One repeat of the cleancache figures: a file's pages read back from zcache, then
    remotified and read back from the peer, with the raw baselines on ``zpages(n, rep)``."""
    f = f"/mnt/f{rep}"
    a("mkfile", f, "--size", f"{n * 4}K", "--content", "text", "--seed", str(rep))
    a("read", f)
    a("write", f"{SYS}/eph_remotify_enable", "0")
    a("drop-caches")
    dt, out = a.timed("read", f)                      # zcache-local gets
    assert f"{n} from cleancache" in out, out
    r["eph_local"].append(dt / n)
    a("drop-caches")
    before = a.counter("eph_pages_remoted")
    a("write", f"{SYS}/eph_remotify_enable", "1")
    put_s = remotify(a, n)
    a("write", f"{SYS}/eph_remotify_enable", "0")
    assert a.counter("eph_pages_remoted") - before == n
    held = zpages(n, rep)
    assert len(held) == n, len(held)
    got = a.counter("remote_eph_pages_succ_get")
    dt, out = a.timed("read", f)                      # every page a remote get
    assert f"{n} from cleancache" in out, out
    assert a.counter("remote_eph_pages_succ_get") - got == n
    r["eph_get"].append(dt / n)
    r["eph_raw"].append(raw_round_trips(n, 72, 4096, held) / n)
    if "one_thread" in r:
        r["one_thread"].append(raw_one_thread(n, held) / n)
    r["remotify"].append(n / put_s)
    r["remotify_raw"].append(n / raw_round_trips(n, 4096, 24, None))
    a("rm", f)


def real_pair() -> tuple[Console, Console, list]:
    from kmodemu.machine import Machine, MachineDef
    fakes = load()
    port = fakes.free_port("127.0.0.1", "127.0.0.2")
    plugins = str(ROOT / "plugins")
    ms = [Machine(MachineDef(cmdline="quiet", profile="3.10", module_path=[plugins]))
          for _ in range(2)]
    a, b = nodes = [Console(m) for m in ms]
    fakes.write_cluster_files([m.root for m in ms], CONF.format(port=port))
    bring_up(nodes)
    a("mkswap", "/dev/sdb1", "256M")
    a("swapon", "/dev/sdb1")
    a("sleep", "61")  # the worker's first run is 60 s after init: from now on every second
    return a, b, ms


def remotify(a: Console, n: int) -> float:
    """``sleep`` long enough for the worker to remotify ``n`` pages: net wall time (s)."""
    secs = str(n // REMOTIFY_PER_S + 2)
    busy, _ = a.timed("sleep", secs)
    idle, _ = a.timed("sleep", secs)
    return max(busy - idle, 1e-9)


def real_path(n: int, repeats: int) -> dict[str, list[float]]:
    """Per repeat: cleancache and frontswap, local and remote, each with its raw baseline."""
    r: dict[str, list[float]] = {k: [] for k in (
        "eph_get", "eph_local", "eph_raw", "pers_get", "pers_local", "pers_raw",
        "remotify", "remotify_raw", "one_thread")}
    a, b, ms = real_pair()
    try:
        for rep in range(repeats):
            # -- cleancache: a file's pages go to zcache, then to node 1, then come back
            cleancache_rep(a, n, rep, r, lambda n, rep: foreign_zpages(b, 0))
            # -- frontswap: a process's pages are swapped to zcache, remotified, faulted in
            app = f"app{rep}"
            a("alloc", app, f"{n * 4}K", "--content", "text", "--seed", str(rep))
            a("write", f"{SYS}/pers_remotify_enable", "0")
            a("pressure", str(n))
            dt, out = a.timed("touch-anon", app)              # zcache-local loads
            assert f"{n} from frontswap" in out, out
            r["pers_local"].append(dt / n)
            a("pressure", str(n))
            before = a.counter("pers_pages_remoted")
            a("write", f"{SYS}/pers_remotify_enable", "1")
            remotify(a, n)
            a("write", f"{SYS}/pers_remotify_enable", "0")
            assert a.counter("pers_pages_remoted") - before == n
            zpages = foreign_zpages(b, 0)
            assert len(zpages) == n, len(zpages)
            got = a.counter("remote_pers_pages_succ_get")
            dt, out = a.timed("touch-anon", app)              # every page a remote load
            assert f"{n} from frontswap" in out and "CORRUPT" not in out, out
            assert a.counter("remote_pers_pages_succ_get") - got == n
            r["pers_get"].append(dt / n)
            r["pers_raw"].append(raw_round_trips(n, 72, 4096, zpages) / n)
            a("kill", app)
    finally:
        for m in ms:
            m.close()
    return r


def component(n: int, repeats: int) -> dict[str, list[float]]:
    """The stand-in zcache: RAMster's ``zc.get`` and ``remotify_pageframe`` alone."""
    fakes = load()
    cctx = zstandard.ZstdCompressor(level=3)
    dctx = zstandard.ZstdDecompressor()
    data = pages(n)
    zpages = [cctx.compress(p) for p in data]
    r: dict[str, list[float]] = {k: [] for k in ("get", "get_raw", "remotify", "remotify_raw")}
    for rep in range(repeats):
        port = fakes.free_port("127.0.0.1", "127.0.0.2")
        nodes = [fakes.Node(i, f"127.0.0.{i + 1}", port) for i in range(2)]
        n0, n1 = nodes
        for node in nodes:
            node.zc.decompress = dctx.decompress
            node.configure("c", nodes)
        for node in nodes:
            for m in nodes:
                node.write("/sys/kernel/mm/ramster/manual_node_up", str(m.num))
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
            r["remotify"].append(n / (time.perf_counter() - t0))
            assert n1.rs.counters.foreign_pers_pages == n
            t0 = time.perf_counter()
            for i in range(n):
                page = n0.zc.get(1, (7, 0, 0), i)
                assert page is not None
            r["get"].append((time.perf_counter() - t0) / n)
            assert page == data[-1]
        for node in nodes:
            node.close()
        r["get_raw"].append(raw_round_trips(n, 72, 4096, zpages) / n)
        r["remotify_raw"].append(n / raw_round_trips(n, 4096, 24, None))
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", choices=("real", "component", "running"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load()
    med = statistics.median
    res: dict[str, float] = {}
    lines: list[str] = []

    def goal_get(key: str, name: str, us: float, raw_us: float) -> None:
        ratio = us / raw_us
        res[f"{key}_us"], res[f"{key}_raw_us"], res[f"{key}_ratio"] = us, raw_us, ratio
        lines.append(f"  {name:20s} {us:8.1f} us/page   raw zstd+TCP RTT {raw_us:8.1f} us   "
                     f"{ratio:.3f}x (goal <= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'})")

    def goal_put(key: str, name: str, ps: float, raw_ps: float) -> None:
        ratio = ps / raw_ps
        res[f"{key}_pages_s"], res[f"{key}_raw_s"], res[f"{key}_ratio"] = ps, raw_ps, ratio
        lines.append(f"  {name:20s} {ps:8.0f} pages/s  raw 4 KiB req/reply {raw_ps:8.0f} /s  "
                     f"{ratio:.3f}x (goal >= 0.5x: {'met' if ratio >= 0.5 else 'NOT met'})")

    if args.only in (None, "real"):
        r = real_path(args.pages, args.repeats)
        lines.append(f"real path (machines, real zcache; {args.pages} pages x {args.repeats}, "
                     "medians):")
        goal_get("eph_get", "read (cleancache)", med(r["eph_get"]) * 1e6,
                 med(r["eph_raw"]) * 1e6)
        goal_get("pers_get", "touch-anon (swap)", med(r["pers_get"]) * 1e6,
                 med(r["pers_raw"]) * 1e6)
        goal_put("remotify", "remotify (sleep)", med(r["remotify"]), med(r["remotify_raw"]))
        for k in ("eph", "pers"):
            res[f"{k}_local_us"] = med(r[f"{k}_local"]) * 1e6
        res["one_thread_us"] = med(r["one_thread"]) * 1e6
        lines.append(f"  for scale, the same commands on zcache-local pages: read "
                     f"{res['eph_local_us']:.1f} us/page, touch-anon {res['pers_local_us']:.1f}")
        lines.append(f"  and the raw get with both socket ends on one thread (no wake-up): "
                     f"{res['one_thread_us']:.1f} us")
    if args.only in (None, "running"):
        r = running(args.pages, args.repeats)
        lines.append(f"running machines (two kmodemu processes, cleancache; {args.pages} pages x "
                     f"{args.repeats}, medians):")
        goal_get("running_get", "read (cleancache)", med(r["eph_get"]) * 1e6,
                 med(r["eph_raw"]) * 1e6)
        goal_put("running_remotify", "remotify (sleep)", med(r["remotify"]),
                 med(r["remotify_raw"]))
        res["running_local_us"] = med(r["eph_local"]) * 1e6
        lines.append(f"  for scale, read of zcache-local pages: {res['running_local_us']:.1f} "
                     "us/page")
    if args.only in (None, "component"):
        r = component(args.pages, args.repeats)
        lines.append(f"component (stand-in zcache, no frontend; {args.pages} pages x "
                     f"{args.repeats}, medians):")
        goal_get("component_get", "zc.get", med(r["get"]) * 1e6, med(r["get_raw"]) * 1e6)
        goal_put("component_remotify", "remotify_pageframe", med(r["remotify"]),
                 med(r["remotify_raw"]))
    if args.json:
        print(json.dumps(res))
        return
    print("\n".join(lines))


if __name__ == "__main__":
    main()
