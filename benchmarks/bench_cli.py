"""One-shot CLI cost on a running machine, and the cost of recovering it, vs ``python3 -c pass``.

A booted machine is a running process: a one-shot command is a small client
that sends its words over the machine's socket. Its cost should not depend on
the machine's history, so ``kmodemu lsmod`` is timed after 0 and after N big
workloads (the issue's ``workload --rounds 40 --files 16 --file-size 4M --anon
64M``). Then the machine process is killed and the next command recovers it
from its journal: that recovery is compared with the time the journaled
commands took to run in the first place. Ratios of medians in one run, so a
slow or busy host cancels out.

    .venv/bin/python benchmarks/bench_cli.py [--repeat 9] [--workloads 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).with_name("kmodemu")
WORKLOAD = ["workload", "--rounds", "40", "--files", "16", "--file-size", "4M", "--anon", "64M"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def one_shot(env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median of ``python3 -c pass`` and of ``kmodemu lsmod``, interleaved so drift hits both."""
    base, lsmod = [], []
    for _ in range(repeat):
        base.append(timed([sys.executable, "-c", "pass"], env))
        lsmod.append(timed([str(BIN), "lsmod"], env))
    return statistics.median(base), statistics.median(lsmod)


def machine_pid(path: Path) -> int:
    out = subprocess.run([str(BIN), "machines", "--json", str(path)], check=True,
                         capture_output=True, text=True).stdout

    return int(json.loads(out)[0]["pid"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--workloads", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m"
        env = dict(os.environ, KMODEMU_MACHINE=str(path))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # what users get: bytecode cached
        subprocess.run([str(BIN), "boot"], env=env, check=True, stdout=subprocess.DEVNULL)
        for argv in (["mount", "-t", "ext4", "/dev/sda1", "/mnt"], ["mkswap", "/dev/sdb"],
                     ["swapon", "/dev/sdb"], ["insmod", "zcache"]):
            timed([str(BIN), *argv], env)
        b0, m0 = one_shot(env, args.repeat)
        t0 = time.perf_counter()
        for _ in range(args.workloads):
            timed([str(BIN), *WORKLOAD], env)
        ran = time.perf_counter() - t0
        b1, m1 = one_shot(env, args.repeat)
        os.kill(machine_pid(path), signal.SIGKILL)
        time.sleep(0.2)
        recover = timed([str(BIN), "lsmod"], env) - m1
        subprocess.run([str(BIN), "poweroff"], env=env, check=True)
    print(f"python3 -c pass                      {b0 * 1000:8.1f} ms (median of {args.repeat})")
    print(f"kmodemu lsmod, 0 workloads           {m0 * 1000:8.1f} ms  ratio {m0 / b0:5.2f}x  (goal <= 3x)")
    print(f"kmodemu lsmod, {args.workloads} workloads          {m1 * 1000:8.1f} ms  ratio {m1 / b1:5.2f}x")
    print(f"running {args.workloads} workloads                  {ran * 1000:8.1f} ms")
    print(f"recovery from the journal            {recover * 1000:8.1f} ms  ratio {recover / ran:5.2f}x "
          "of running them (goal <= 1x)")


if __name__ == "__main__":
    main()
