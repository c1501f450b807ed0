"""The ``workload`` command's report: per-filesystem hit rates, swap I/O, avoided disk I/O,
/proc/kmodemu/workload, a progress bar only on a terminal for a long run; the file and
touch patterns, working sets larger than RAM, runs for a virtual duration, the Python API,
determinism, and bad input refused with the machine unchanged."""

from __future__ import annotations

import errno
import io
import re

import pytest

from pathlib import Path

from kmodemu.errors import KernelError
from kmodemu.console import mm as commands
from kmodemu.workloads.workload import (COUNTERS, FS_COUNTERS, PROC_WORKLOAD, WorkloadError, WorkloadSpec,
                                 parse_duration, run_workload)

from .machines import boot, run, sh, sh_all

HEADER = "filesystem                read  cached  cleancache  disk  hit rate  reads avoided"
ARGS = "workload --dir /mnt --dir /srv --files 6 --file-size 256K --anon 8M --rounds 3 --seed 3"


@pytest.fixture
def m():
    machine = boot(mem="48M")
    sh_all(machine, "mount /dev/sda1 /mnt -t ext4", "mount /dev/sdc1 /srv -t ext4",
           "mkswap /dev/sdb1 32M", "swapon /dev/sdb1")
    yield machine
    machine.close()


def proc(m) -> dict[str, int]:
    lines = sh(m, "cat /proc/kmodemu/workload").splitlines()
    assert all(re.fullmatch(r"[a-z0-9_]+ -?\d+", x) for x in lines), lines
    names = [x.split()[0] for x in lines]
    assert len(names) == len(set(names))
    return {x.split()[0]: int(x.split()[1]) for x in lines}


def numbers(line: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", line)]


def test_report_per_filesystem_and_swap_figures_add_up(m):
    sh(m, "insmod tmem_dict")
    lines = sh(m, ARGS).splitlines()
    total = numbers(lines[0])                   # pages read (page cache, cleancache, disk)
    assert lines[5].split() == HEADER.split()
    rows = [lines[6], lines[7]]
    assert rows[0].startswith("/dev/sda1 on /mnt (ext4)") and rows[1].startswith("/dev/sdc1 on /srv (ext4)")
    per_fs = []
    for row in rows:
        read, cached, hits, disk, rate, avoided = row.split()[4:]
        read, cached, hits, disk, avoided = map(int, (read, cached, hits, disk, avoided))
        assert read == cached + hits + disk and avoided == hits and hits > 0
        assert rate == f"{hits / (hits + disk):.1%}"
        per_fs.append((read, cached, hits, disk))
    assert [sum(col) for col in zip(*per_fs)] == total
    faults, from_fs, from_disk, writes = numbers(lines[1])
    out, kept, written, faults2, loads, disk_reads = numbers(lines[8])
    assert lines[8].startswith("swap: ") and out == kept + written and written == writes
    assert (faults2, loads, disk_reads) == (faults, from_fs, from_disk) and kept > 0 and loads > 0
    assert lines[9] == f"disk I/O avoided: {total[2]} file reads, {kept} swap writes, {loads} swap reads"
    assert len(lines) == 10
    # the frontends agree: every page kept was a successful store, every fs hit a cleancache hit
    assert f"succ_stores={kept} " in lines[4] and f"succ_gets={total[2]} " in lines[3]


def test_proc_workload_shows_the_last_run_vmstat_style(m):
    assert run(m, "cat /proc/kmodemu/workload")[0] == 1    # no run yet
    sh(m, "insmod tmem_dict")
    lines = sh(m, ARGS).splitlines()
    v = proc(m)
    total = numbers(lines[0])
    assert [v["pages_read"], v["pages_cached"], v["cleancache_hits"], v["disk_reads"]] == total
    assert v["disk_reads_avoided"] == v["cleancache_hits"]
    out, kept, written = numbers(lines[8])[:3]
    assert (v["swap_out"], v["swap_disk_writes_avoided"], v["swap_disk_writes"]) == (out, kept, written)
    assert v["swap_out_frontswap"] == kept
    faults, from_fs, from_disk = numbers(lines[1])[:3]
    assert (v["anon_faults"], v["anon_faults_frontswap"], v["swap_disk_reads"]) == (
        faults, from_fs, from_disk)
    assert v["swap_disk_reads_avoided"] == v["frontswap_loads"] == from_fs
    assert v["corrupt_pages"] == 0
    for key, row in (("sda1", lines[6]), ("sdc1", lines[7])):
        read, cached, hits, disk = map(int, row.split()[4:8])
        assert [v[f"{key}_{n}"] for n in ("pages_read", "pages_cached", "cleancache_hits",
                                           "disk_reads", "disk_reads_avoided")] == [
            read, cached, hits, disk, hits]
        assert v[f"{key}_cleancache_hit_permille"] == round(1000 * hits / (hits + disk))
    assert v["cleancache_succ_gets"] == v["cleancache_hits"]
    assert v["frontswap_succ_stores"] == kept
    sh(m, "workload --dir /srv --files 2 --file-size 64K --anon 0 --rounds 1")
    assert "sda1_pages_read" not in proc(m)                  # only the last run


def test_without_a_backend_nothing_is_avoided(m):
    lines = sh(m, "workload --files 4 --file-size 256K --anon 8M --rounds 2").splitlines()
    assert lines[5].split() == HEADER.split()
    assert lines[6].split()[-2:] == ["0.0%", "0"]
    assert lines[7].startswith("swap: ") and "(0 kept by frontswap, " in lines[7]
    assert lines[8] == "disk I/O avoided: 0 file reads, 0 swap writes, 0 swap reads"


def test_directories_on_one_filesystem_share_a_row_and_other_keys(m):
    sh_all(m, "mkdir /mnt/a /mnt/b", "mkdir /srv/t", "mount tmpfs /srv/t -t tmpfs")
    lines = sh(m, "workload --dir /mnt/a --dir /mnt/b --dir /srv/t --files 3 --file-size 64K "
                  "--anon 0 --rounds 1").splitlines()
    assert [x.split(" on ")[0] for x in lines[6:8]] == ["/dev/sda1", "tmpfs"]
    assert lines[8].startswith("swap: ")
    assert "srv_t_pages_read" in proc(m)


def test_a_missing_directory_is_named(m):
    assert run(m, "workload --dir /mnt --dir /nope") == (
        1, "", "workload: /nope: No such file or directory\n")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_on(m, stream, line: str) -> str:
    assert m.run(line.split(), stdout=stream, stderr=io.StringIO()) == 0
    return stream.getvalue()


SMALL = "workload --files 2 --file-size 64K --anon 1M --rounds 3"


def test_progress_bar_only_on_a_terminal_and_only_for_a_long_run(m, monkeypatch):
    # short run on a terminal: no bar
    assert "[" not in run_on(m, Terminal(), SMALL)
    monkeypatch.setattr(commands, "LONG_RUN_PAGES", 1)
    # long run, captured output: never a bar
    captured = run_on(m, io.StringIO(), SMALL)
    assert "workload" not in captured and "\r" not in captured and "[" not in captured
    assert run(m, SMALL)[1].startswith("pages read: ")
    # long run on a terminal: the bar, then the report
    shown = run_on(m, Terminal(), SMALL)
    assert "workload  [" in shown and "100%" in shown
    assert "\npages read: " in shown


def test_long_run_threshold_is_about_the_pages_touched():
    assert WorkloadSpec().estimated_pages() == 4 * (8 * 1024 + 4096)
    assert WorkloadSpec(files=0, anon=0).estimated_pages() == 4 * 1024
    assert WorkloadSpec(directories=("/a", "/b")).dirs() == ("/a", "/b")
    assert WorkloadSpec(directory="/x").dirs() == ("/x",)
    assert WorkloadSpec(working_set=64 << 20, passes=2, anon=0, rounds=1).estimated_pages() == 32768
    assert WorkloadSpec(working_set=(8 << 20) + 1).nr_files() == 3
    assert WorkloadSpec(duration=0.5).progress_total() == 500_000
    assert commands.LONG_RUN_PAGES == 500_000


# -- patterns, working sets, durations ----------------------------------------------------

SEEDED = "workload --dir /mnt --dir /srv --files 4 --file-size 128K --anon 2M --rounds 2 --seed 5"


def small_machine():
    """24 MiB of RAM, two ext4 filesystems, 16 MiB of swap, tmem_dict for both frontends."""
    machine = boot(mem="24M")
    sh_all(machine, "mount /dev/sda1 /mnt -t ext4", "mount /dev/sdc1 /srv -t ext4",
           "mkswap /dev/sdb1 16M", "swapon /dev/sdb1", "insmod tmem_dict")
    return machine


@pytest.fixture
def sm():
    machine = small_machine()
    yield machine
    machine.close()


EXPECTED = {
    "--pattern skewed": """\
pages read: 258 (page cache 198, cleancache 0, disk 60)
anon faults: 68 (frontswap 68, swap disk 0); swap disk writes: 0
corrupt pages: 0
cleancache: succ_gets=0 failed_gets=60 puts=55 invalidates=5
frontswap: loads=68 succ_stores=271 failed_stores=0 invalidates=271
filesystem                read  cached  cleancache  disk  hit rate  reads avoided
/dev/sda1 on /mnt (ext4)   231     198           0    33      0.0%              0
/dev/sdc1 on /srv (ext4)    27       0           0    27      0.0%              0
swap: 271 pages out (271 kept by frontswap, 0 written), 68 faults (68 from frontswap, 0 from disk)
disk I/O avoided: 0 file reads, 271 swap writes, 68 swap reads
""",
    "--pattern zipf": """\
pages read: 232 (page cache 142, cleancache 7, disk 83)
anon faults: 25 (frontswap 25, swap disk 0); swap disk writes: 0
corrupt pages: 0
cleancache: succ_gets=7 failed_gets=83 puts=69 invalidates=21
frontswap: loads=25 succ_stores=78 failed_stores=0 invalidates=78
filesystem                read  cached  cleancache  disk  hit rate  reads avoided
/dev/sda1 on /mnt (ext4)   196     124           7    65      9.7%              7
/dev/sdc1 on /srv (ext4)    36      18           0    18      0.0%              0
swap: 78 pages out (78 kept by frontswap, 0 written), 25 faults (25 from frontswap, 0 from disk)
disk I/O avoided: 7 file reads, 78 swap writes, 25 swap reads
""",
    "--pattern sequential": """\
pages read: 220 (page cache 64, cleancache 46, disk 110)
anon faults: 90 (frontswap 90, swap disk 0); swap disk writes: 0
corrupt pages: 0
cleancache: succ_gets=46 failed_gets=110 puts=138 invalidates=18
frontswap: loads=90 succ_stores=236 failed_stores=0 invalidates=236
filesystem                read  cached  cleancache  disk  hit rate  reads avoided
/dev/sda1 on /mnt (ext4)   130      32          33    65     33.7%             33
/dev/sdc1 on /srv (ext4)    90      32          13    45     22.4%             13
swap: 236 pages out (236 kept by frontswap, 0 written), 90 faults (90 from frontswap, 0 from disk)
disk I/O avoided: 46 file reads, 236 swap writes, 90 swap reads
""",
    "--pattern random": """\
pages read: 208 (page cache 100, cleancache 16, disk 92)
anon faults: 61 (frontswap 61, swap disk 0); swap disk writes: 0
corrupt pages: 0
cleancache: succ_gets=16 failed_gets=92 puts=98 invalidates=10
frontswap: loads=61 succ_stores=228 failed_stores=0 invalidates=228
filesystem                read  cached  cleancache  disk  hit rate  reads avoided
/dev/sda1 on /mnt (ext4)   117      68           0    49      0.0%              0
/dev/sdc1 on /srv (ext4)    91      32          16    43     27.1%             16
swap: 228 pages out (228 kept by frontswap, 0 written), 61 faults (61 from frontswap, 0 from disk)
disk I/O avoided: 16 file reads, 228 swap writes, 61 swap reads
""",
    "--anon-pattern random": """\
pages read: 258 (page cache 195, cleancache 3, disk 60)
anon faults: 113 (frontswap 113, swap disk 0); swap disk writes: 0
corrupt pages: 0
cleancache: succ_gets=3 failed_gets=60 puts=54 invalidates=9
frontswap: loads=113 succ_stores=336 failed_stores=0 invalidates=336
filesystem                read  cached  cleancache  disk  hit rate  reads avoided
/dev/sda1 on /mnt (ext4)   231     195           3    33      8.3%              3
/dev/sdc1 on /srv (ext4)    27       0           0    27      0.0%              0
swap: 336 pages out (336 kept by frontswap, 0 written), 113 faults (113 from frontswap, 0 from disk)
disk I/O avoided: 3 file reads, 336 swap writes, 113 swap reads
""",
    "--anon-pattern hot": """\
pages read: 257 (page cache 165, cleancache 0, disk 92)
anon faults: 45 (frontswap 45, swap disk 0); swap disk writes: 0
corrupt pages: 0
cleancache: succ_gets=0 failed_gets=92 puts=60 invalidates=32
frontswap: loads=45 succ_stores=207 failed_stores=0 invalidates=207
filesystem                read  cached  cleancache  disk  hit rate  reads avoided
/dev/sda1 on /mnt (ext4)   230     165           0    65      0.0%              0
/dev/sdc1 on /srv (ext4)    27       0           0    27      0.0%              0
swap: 207 pages out (207 kept by frontswap, 0 written), 45 faults (45 from frontswap, 0 from disk)
disk I/O avoided: 0 file reads, 207 swap writes, 45 swap reads
""",
}


@pytest.mark.parametrize("options", list(EXPECTED))
def test_each_pattern_gives_its_exact_report(sm, options):
    assert sh(sm, f"{SEEDED} {options}") == EXPECTED[options]


def test_the_defaults_are_the_skewed_file_pattern_and_every_page_touched(sm):
    assert sh(sm, SEEDED) == EXPECTED["--pattern skewed"]
    sh(sm, f"{SEEDED} --pattern skewed --anon-pattern sequential --passes 1")
    v = proc(sm)
    assert (v["rounds"], v["anon_pages"], v["anon_touches"]) == (2, 512, 2 * 512)


def test_touch_patterns_touch_what_they_say(sm):
    sh(sm, f"{SEEDED} --anon-pattern random")
    assert proc(sm)["anon_touches"] == 2 * 512                   # as many touches as pages
    sh(sm, f"{SEEDED} --anon-pattern hot")
    assert proc(sm)["anon_touches"] == 2 * (512 // 4 + 512 // 16)  # the hot quarter + 1/16


def test_a_working_set_larger_than_ram_read_in_passes(sm):
    """32 MiB of files on a 24 MiB machine: the page cache never holds the scan, so the
    first pass reads the disk and the second comes from cleancache."""
    out = sh(sm, "workload --working-set 32M --file-size 4M --pattern sequential --passes 2 "
                 "--rounds 1 --anon 0").splitlines()
    assert out[0] == "pages read: 16384 (page cache 0, cleancache 8192, disk 8192)"
    assert out[6].split()[-6:] == ["16384", "0", "8192", "8192", "50.0%", "8192"]
    v = proc(sm)
    assert v["working_set_pages"] == 8192 > int(sh(sm, "cat /proc/meminfo").split()[1]) // 4
    assert v["rounds"] == 1
    assert v["disk_reads_avoided"] == v["sda1_cleancache_hits"] == 8192


def test_working_set_files_are_file_size_each_and_the_last_the_rest(sm):
    sh(sm, "workload --working-set 300K --file-size 128K --anon 0 --rounds 1 --keep --seed 9")
    sizes = sorted((i.path, i.size) for i in sm.kernel.mm.fs.list_files() if "/wl9-" in i.path)
    assert sizes == [("/mnt/wl9-0", 128 << 10), ("/mnt/wl9-1", 128 << 10), ("/mnt/wl9-2", 44 << 10)]
    assert proc(sm)["working_set_pages"] == 32 + 32 + 11


def test_a_run_for_a_virtual_duration(sm):
    lines = sh(sm, "workload --files 2 --file-size 64K --anon 1M --anon-pattern hot "
                   "--duration 20ms --seed 2").splitlines()
    v = proc(sm)
    assert lines[-1] == f"time: {v['rounds']} rounds in 0.020 s (virtual)" and v["rounds"] > 10
    assert 20_000 <= v["virtual_us"] < 21_000
    assert len(lines) == 10                          # the usual report above it
    assert parse_duration("2") == parse_duration("2s") == parse_duration("2000ms") == 2.0
    assert parse_duration("1.5m") == 90.0 and parse_duration("100us") == pytest.approx(1e-4)
    for bad in ("0", "-1s", "1d", "", "s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_same_seed_same_bytes_other_seed_other_run():
    def once(seed: int) -> tuple[str, str]:
        machine = small_machine()
        try:
            out = sh(machine, f"workload --dir /mnt --dir /srv --working-set 1M --file-size 128K "
                              f"--pattern random --passes 2 --anon 2M --anon-pattern random "
                              f"--rounds 3 --seed {seed}")
            return out, sh(machine, "cat /proc/kmodemu/workload")
        finally:
            machine.close()

    first = once(7)
    assert once(7) == first
    assert once(8) != first


def test_the_python_api_returns_the_metrics_the_command_prints(sm):
    other = small_machine()
    try:
        out = sh(other, f"{SEEDED} --pattern random --anon-pattern hot")
        rep = run_workload(sm, seed=5, directories=["/mnt", "/srv"], files=4, file_size="128K",
                           anon="2M", rounds=2, pattern="random", anon_pattern="hot")
        assert "".join(f"{line}\n" for line in rep.lines()) == out
        assert rep.counters() == proc(other) == proc(sm)
        assert rep.vmstat() == sm.kernel.read(PROC_WORKLOAD)
    finally:
        other.close()
    # a kernel or its memory manager will do, and a spec with keyword overrides
    spec = WorkloadSpec(seed=5, files=2, file_size=64 << 10, anon=0, rounds=1)
    assert run_workload(sm.kernel, spec).pages_read == run_workload(sm.kernel.mm, spec).pages_read
    assert run_workload(sm.kernel.mm, spec, duration="1ms").rounds >= 1
    with pytest.raises(TypeError):
        run_workload(object())


def snapshot(m):
    """Everything a workload could change, as a user (and the kernel's RNG) sees it.

    Read-only commands only: the console charges every other command 10 ms of
    virtual time, refused or not, so the clock is compared apart.
    """
    k = m.kernel
    files = sorted(i.path for i in k.mm.fs.list_files())
    inos = {path: dev.next_ino for path, dev in k.mm.fs.devices.items()}
    try:
        last = k.read(PROC_WORKLOAD)
    except KernelError:
        last = None
    return (sh(m, "cat /proc/meminfo"), sh(m, "cat /proc/vmstat"), sh(m, "dmesg"), sh(m, "ps"),
            sh(m, "stat"), sh(m, "cat /proc/mounts"), k.rng.getstate(), files, inos, last)


BAD = [
    ("workload --dir /mnt --dir /nope", 1, "workload: /nope: No such file or directory\n"),
    ("workload --dir /mnt/file", 1, "workload: /mnt/file: Not a directory\n"),
    ("workload --anon 1G", 1,
     "workload: cannot allocate 1 GiB of anonymous memory: Cannot allocate memory\n"),
    ("workload --dir /srv/t --working-set 64M", 1, "workload: /srv/t: No space left on device\n"),
    ("workload --seed 4", 1, "workload: wl4: process exists\n"),
    ("workload --pattern zigzag", 2, "Error: Invalid value for '--pattern': 'zigzag' is not one of "
                                     "'skewed', 'zipf', 'sequential', 'random'.\n"),
    ("workload --anon-pattern cold", 2, "Error: Invalid value for '--anon-pattern': 'cold' is not "
                                        "one of 'sequential', 'random', 'hot'.\n"),
    ("workload --files 2 --working-set 1M", 2,
     "Error: --files and --working-set cannot be used together.\n"),
    ("workload --rounds 2 --duration 1s", 2,
     "Error: --rounds and --duration cannot be used together.\n"),
    ("workload --duration 3fortnights", 2,
     "Error: Invalid value for '--duration': invalid duration '3fortnights'\n"),
    ("workload --working-set 0", 2, "Error: Invalid value for '--working-set': must be at least 1 byte\n"),
    ("workload --rounds 1000001", 2,
     "Error: Invalid value for '--rounds': 1000001 is not in the range 1<=x<=1000000.\n"),
]


def test_bad_input_is_refused_and_the_machine_is_unchanged(sm):
    sh_all(sm, "mkfile /mnt/file --size 4K --seed 1", "mkdir /srv/t", "mount tmpfs /srv/t -t tmpfs",
           "workload --files 1 --file-size 4K --anon 64K --rounds 1 --seed 4 --keep")
    before = snapshot(sm)
    for line, rc, tail in BAD:
        ns = sm.kernel.clock.ns
        got_rc, out, err = run(sm, line)
        assert (got_rc, out) == (rc, ""), line
        assert err.endswith(tail) and (rc == 1) == (err == tail), (line, err)
        assert snapshot(sm) == before, line
        assert sm.kernel.clock.ns == ns, line      # refused: not even the console's charge


def test_the_api_refuses_the_same_way(sm):
    before, ns = snapshot(sm), sm.kernel.clock.ns
    with pytest.raises(WorkloadError) as e:
        run_workload(sm, directories=["/mnt", "/gone"])
    assert (e.value.errno, e.value.subject) == (errno.ENOENT, "/gone")
    with pytest.raises(WorkloadError) as e:
        run_workload(sm, anon="1G")
    assert e.value.errno == errno.ENOMEM
    for bad in ({"pattern": "zigzag"}, {"anon_pattern": "cold"}, {"rounds": 0}, {"passes": 0},
                {"anon": -1}, {"file_size": 0}, {"duration": "soon"}):
        with pytest.raises(ValueError):
            run_workload(sm, **bad)
    assert snapshot(sm) == before and sm.kernel.clock.ns == ns


def test_every_counter_is_documented(sm):
    sh(sm, SEEDED)
    names = set(proc(sm))
    fs_names = {f"{key}_{n}" for key in ("sda1", "sdc1") for n in FS_COUNTERS}
    frontends = {f"cleancache_{n}" for n in ("succ_gets", "failed_gets", "puts", "invalidates")}
    frontends |= {f"frontswap_{n}" for n in ("loads", "succ_stores", "failed_stores", "invalidates")}
    assert names == set(COUNTERS) | fs_names | frontends
    doc = (Path(__file__).resolve().parents[2] / "docs" / "memory-model.md").read_text()
    for name in list(COUNTERS) + [f"<fs>_{n}" for n in FS_COUNTERS]:
        assert f"`{name}`" in doc, name


def test_a_duration_run_shows_progress_on_a_terminal(m):
    shown = run_on(m, Terminal(), "workload --files 1 --file-size 64K --anon 256K --duration 2ms")
    assert "workload  [" in shown and "100%" in shown and "\ntime: " in shown


def test_the_console_md_example_is_real(sm):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "console.md").read_text()
    block = re.search(r"### `workload`.*?```console\n(.*?)```", doc, re.S).group(1)
    for command, expected in re.findall(r"^\$ (.*)\n((?:[^$].*\n)*)", block, re.M):
        if "|" in command:
            command, pattern = command.split(" | grep ")
            lines = sh(sm, command).splitlines()
            words = pattern.split()[1::2]
            got = "".join(f"{x}\n" for x in lines if any(w in x for w in words))
        else:
            got = sh(sm, command)
        assert got == expected, command
