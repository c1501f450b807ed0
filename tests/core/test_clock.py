"""The virtual clock's timers, ``kmodemu sleep`` and ``/proc/uptime``."""

from __future__ import annotations

import hashlib

import pytest

from kmodemu.kernel.clock import NSEC_PER_SEC, VirtualClock
from kmodemu.machine import Machine, MachineDef


def test_timers_fire_in_expiry_order_with_the_clock_at_expiry():
    c = VirtualClock()
    seen: list = []
    rearm = c.add_timer(lambda: (seen.append(("r", c.ns)), c.mod_timer(rearm, c.ns + 5)), 10)
    c.add_timer(lambda: seen.append(("once", c.ns)), 12)
    assert c.advance(27) == 27
    assert seen == [("r", 10), ("once", 12), ("r", 15), ("r", 20), ("r", 25)]
    assert [t.expires for t in c.pending_timers()] == [30]


def test_del_and_mod_timer_return_whether_pending():
    c = VirtualClock()
    hits: list[int] = []
    t = c.add_timer(lambda: hits.append(c.ns), 100)
    assert c.mod_timer(t, 50) is True  # re-armed earlier: the old entry never fires
    c.advance(200)
    assert hits == [50]
    assert c.del_timer(t) is False
    t2 = c.add_timer(lambda: hits.append(-1), 10)
    assert c.del_timer(t2) is True
    c.advance(100)
    assert hits == [50] and c.pending_timers() == []


def test_time_never_runs_backwards():
    with pytest.raises(ValueError):
        VirtualClock().advance(-1)


@pytest.fixture
def m():
    with Machine(MachineDef(mem="64M")) as machine:
        yield machine


def test_sleep_advances_uptime_and_runs_timers(m):
    k = m.kernel
    before = k.clock.ns
    fired: list[int] = []
    k.clock.add_timer(lambda: fired.append(k.clock.ns), 90 * NSEC_PER_SEC)
    assert m.capture(["sleep", "1m", "30"]) == (0, "", "")
    assert fired == [before + 90 * NSEC_PER_SEC]
    up = m.capture(["cat", "/proc/uptime"])[1]
    secs = float(up.split()[0])
    assert secs == pytest.approx(k.clock.ns / 1e9, abs=0.01)
    assert up.count(".") == 2 and up.endswith("\n")


@pytest.mark.parametrize("arg", ["x", "-1", "1y", "1.2.3"])
def test_sleep_bad_interval(m, arg):
    ns = m.kernel.clock.ns
    rc, out, err = m.capture(["sleep", arg])
    assert (rc, out) == (1, "")
    assert err == f"sleep: invalid time interval '{arg}'\nTry 'sleep --help' for more information.\n"
    assert m.kernel.clock.ns == ns  # a failed command that logged nothing changed nothing


def test_sleep_refuses_absurd_spans(m):
    rc, _, err = m.capture(["sleep", "400d"])
    assert rc == 1 and "at most 365 days" in err


def test_sha256sum_matches_the_file_bytes(m):
    assert m.capture(["mount", "/dev/sda1", "/mnt", "-t", "ext4"])[0] == 0
    assert m.capture(["mkfile", "/mnt/f", "--size", "10000", "--seed", "3"])[0] == 0
    inode = m.kernel.mm.fs.lookup("/mnt/f")
    want = hashlib.sha256(b"".join(inode.disk_page(i) for i in range(inode.nr_pages))[:10000]).hexdigest()
    assert m.capture(["sha256sum", "/mnt/f"]) == (0, f"{want}  /mnt/f\n", "")
    m.capture(["drop-caches"])
    assert m.capture(["sha256sum", "/mnt/f"]) == (0, f"{want}  /mnt/f\n", "")
    assert m.capture(["sha256sum", "/mnt/nope", "/mnt"]) == (
        1, "", "sha256sum: /mnt/nope: No such file or directory\nsha256sum: /mnt: Is a directory\n")
