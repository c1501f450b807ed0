"""One-shot CLI cost: ``kmodemu lsmod`` on a persistent machine vs ``python3 -c pass``.

A one-shot command pays for Python start-up, imports, plugin discovery, the
boot of a fresh kernel and the replay of the machine's journal. The figure is
the ratio of medians in the same run, so a slow or busy host cancels out.

    .venv/bin/python benchmarks/bench_cli.py [--repeat 7] [--journal 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).with_name("kmodemu")


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--journal", type=int, default=20,
                    help="state-changing commands in the machine's history before timing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, KMODEMU_MACHINE=str(Path(tmp) / "m"))
        # measure what users get: bytecode cached after the first run
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([str(BIN), "boot", "--module-path", "examples"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([str(BIN), "insmod", "params_demo"], env=env, check=True)
        for i in range(args.journal):
            subprocess.run([str(BIN), "write", "/sys/module/params_demo/parameters/level", str(i % 10)],
                           env=env, check=True)
        base, lsmod = [], []
        for _ in range(args.repeat):  # interleaved, so drift hits both alike
            base.append(timed([sys.executable, "-c", "pass"], env))
            lsmod.append(timed([str(BIN), "lsmod"], env))
    b, m = statistics.median(base), statistics.median(lsmod)
    print(f"python3 -c pass      {b * 1000:8.1f} ms (median of {args.repeat})")
    print(f"kmodemu lsmod        {m * 1000:8.1f} ms  journal={args.journal + 1} commands")
    print(f"ratio                {m / b:8.2f}x")


if __name__ == "__main__":
    main()
