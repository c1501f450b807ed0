"""The ``workload`` command's report: per-filesystem hit rates, swap I/O, avoided disk I/O,
/proc/kmodemu/workload, and a progress bar only on a terminal for a long run."""

from __future__ import annotations

import io
import re

import pytest

from kmodemu.mm import commands

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
    from kmodemu.mm.workload import WorkloadSpec

    assert WorkloadSpec().estimated_pages() == 4 * (8 * 1024 + 4096)
    assert WorkloadSpec(files=0, anon=0).estimated_pages() == 4 * 1024
    assert WorkloadSpec(directories=("/a", "/b")).dirs() == ("/a", "/b")
    assert WorkloadSpec(directory="/x").dirs() == ("/x",)
    assert commands.LONG_RUN_PAGES == 500_000
