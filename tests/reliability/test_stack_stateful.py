"""A whole-stack state machine: files, processes, swap, tmem, modules, reboots and faults,
checked against a model by the sha256 of every file and process.

Short in the default run; ``make soak`` sets STACK_STEPS and STACK_ROUNDS for long runs.
Each round is its own Hypothesis run: Hypothesis keeps every example's choices until its
run ends (about 1.7 KB a step here), so 2 000 runs of 2 000 steps in one run would hold
~7 GB; ten rounds hold a tenth of it at a time (a soak worker peaked at 0.89 GB) and spread
over the cores.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, rule,
                                 run_state_machine_as_test)

from kmodemu.machine import Machine, MachineDef
from kmodemu.scenario import Session

STEPS = int(os.environ.get("STACK_STEPS", "25"))
ROUNDS = int(os.environ.get("STACK_ROUNDS", "1"))
NAMES = st.sampled_from(["a", "b", "c"])


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Stack(RuleBasedStateMachine):
    @initialize(builtin=st.booleans())
    def boot(self, builtin):
        cmd = "zcache fail_page_alloc=1,0,0,-1" if builtin else "fail_page_alloc=1,0,0,-1"
        self.m = Machine(MachineDef(cmdline=cmd, builtin=["zcache"] if builtin else [], mem="64M"))
        self.s = Session(self.m)
        self.files: dict[str, tuple[int, int]] = {}   # path -> (size, seed)
        self.procs: set[str] = set()
        self.mounted = False
        self.swap = False

    def run(self, line: str) -> int:
        return self.s.run(line).rc

    def teardown(self):
        if hasattr(self, "m"):
            self.m.close()

    @rule()
    def mount(self):
        rc = self.run("mount /dev/sda1 /mnt -t ext4")
        assert (rc == 0) != self.mounted
        self.mounted = True

    @rule()
    def umount(self):
        rc = self.run("umount /mnt")
        assert (rc == 0) == self.mounted
        self.mounted = False

    @rule(name=NAMES, pages=st.integers(1, 64), seed=st.integers(0, 1 << 16))
    def mkfile(self, name, pages, seed):
        rc = self.run(f"mkfile /mnt/{name} --size {pages * 4}K --content mixed --seed {seed}")
        assert rc == 0
        if self.mounted:
            self.files[name] = (pages * 4096, seed)

    @rule(name=NAMES)
    def rm(self, name):
        rc = self.run(f"rm /mnt/{name}")
        if self.mounted:
            assert (rc == 0) == (name in self.files)
            self.files.pop(name, None)

    @rule(name=NAMES, pages=st.integers(0, 64))
    def truncate(self, name, pages):
        rc = self.run(f"truncate -s {pages * 4}K /mnt/{name}")
        if self.mounted and name in self.files:
            assert rc == 0
            self.files[name] = (pages * 4096, self.files[name][1])

    @rule(name=NAMES)
    def read(self, name):
        self.run(f"read /mnt/{name}")

    @rule()
    def drop_caches(self):
        assert self.run("drop-caches") == 0

    @rule()
    def swapon(self):
        if not self.swap:
            assert self.run("mkswap /dev/sdb 128M") == 0 and self.run("swapon /dev/sdb") == 0
            self.swap = True

    @rule()
    def swapoff(self):
        rc = self.run("swapoff /dev/sdb")
        if rc == 0:
            self.swap = False

    @rule(name=NAMES, pages=st.integers(1, 2048))
    def alloc(self, name, pages):
        if name in self.procs:
            return
        if self.run(f"alloc {name} {pages * 4}K --content mixed") == 0:
            self.procs.add(name)

    @rule(name=NAMES)
    def touch(self, name):
        self.run(f"touch-anon {name}")

    @rule(name=NAMES)
    def kill(self, name):
        if self.run(f"kill {name}") == 0:
            self.procs.discard(name)

    @rule(n=st.integers(1, 4096))
    def pressure(self, n):
        self.run(f"pressure {n}")

    @rule()
    def modprobe(self):
        self.run("modprobe zcache")

    @rule(p=st.sampled_from([0, 10, 50, 100]))
    def faults(self, p):
        assert self.run(f"write /sys/kernel/debug/fail_page_alloc/probability {p}") == 0
        self.m.kernel.faults.fail_page_alloc.verbose = 0

    @rule()
    def reboot(self):
        self.m.reboot()
        self.s = Session(self.m)
        self.files.clear()   # the sda1 disk survives, but only while mounted do we model it
        self.procs.clear()
        self.mounted = self.swap = False
        self.run("write /sys/kernel/debug/fail_page_alloc/verbose 0")

    @invariant()
    def every_file_and_process_is_intact(self):
        if not hasattr(self, "m"):
            return
        fs = self.m.kernel.mm.fs
        if self.mounted:
            for name, (size, _) in self.files.items():
                inode = fs.lookup(f"/mnt/{name}")
                want = sha_of(b"".join(inode.disk_page(i) for i in range(inode.nr_pages))[:size])
                out = self.s.run(f"sha256sum /mnt/{name}").stdout
                assert out == f"{want}  /mnt/{name}\n"
        anon = self.m.kernel.mm.anon
        assert anon.corrupt_pages == 0
        for name in self.procs:
            proc = anon.processes[name]
            resident = [p for p in proc.pages if p.data is not None]
            assert all(p.data == proc.content.page(p.vpn) for p in resident)


SETTINGS = settings(max_examples=max(3, STEPS // 10), stateful_step_count=STEPS,
                    deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_stack(round_):
    run_state_machine_as_test(Stack, settings=SETTINGS)
