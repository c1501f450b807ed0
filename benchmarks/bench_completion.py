"""What one TAB costs: shell completion through the real ``kmodemu`` executable, vs ``python3 -c pass``.

A TAB is a whole ``kmodemu`` start (click's completion entry point), so its
cost is mostly interpreter start-up and imports; what completion adds is
reading the module tree or one question to the running machine. Three kinds:
module names of a stopped machine (modules.dep), ``param=`` keys (the .ko's
modinfo), and pseudo paths of a running machine (``ls -p`` over its socket).
Ratios of medians in one run, interleaved so drift hits all alike.

    .venv/bin/python benchmarks/bench_completion.py [--repeat 9]
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
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def tab(words: list[str], env: dict[str, str]) -> dict[str, str]:
    return dict(env, _KMODEMU_COMPLETE="bash_complete", COMP_WORDS=" ".join(["kmodemu", *words]),
                COMP_CWORD=str(len(words)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stopped, running = Path(tmp) / "stopped", Path(tmp) / "running"
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # what users get: bytecode cached
        for path in (stopped, running):
            subprocess.run([str(BIN), "--machine", str(path), "boot"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run([str(BIN), "--machine", str(stopped), "poweroff"], env=env, check=True)
        cases = {
            "module names (stopped machine)": tab(["--machine", str(stopped), "insmod", "zc"], env),
            "param= keys (the .ko's modinfo)": tab(["--machine", str(stopped), "insmod", "zcache",
                                                    "z"], env),
            "pseudo paths (running machine)": tab(["--machine", str(running), "cat", "/proc/"], env),
        }
        base: list[float] = []
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeat):
            base.append(timed([sys.executable, "-c", "pass"], env))
            for name, e in cases.items():
                times[name].append(timed([str(BIN)], e))
        subprocess.run([str(BIN), "--machine", str(running), "poweroff"], env=env, check=True)
    b = statistics.median(base)
    print(f"python3 -c pass                      {b * 1000:8.1f} ms (median of {args.repeat})")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"TAB: {name:<32}{m * 1000:8.1f} ms  ratio {m / b:5.2f}x  (goal <= 5x)")


if __name__ == "__main__":
    main()
