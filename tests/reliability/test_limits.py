"""Absurd sizes and names get the kernel's error, fast, in host memory bounded by what is used."""

from __future__ import annotations

import gzip
import lzma
import time
import tracemalloc

import pytest

from kmodemu.kernel.kernel import Kernel
from kmodemu.machine import Machine, MachineDef
from kmodemu.scenario import Session


@pytest.fixture
def sh():
    m = Machine(MachineDef())
    s = Session(m)
    assert s.run("mount /dev/sda1 /mnt -t ext4").rc == 0
    yield lambda line: (lambda o: (o.rc, o.stdout + o.stderr))(s.run(line))
    m.close()


def _boot(mem: str):
    tracemalloc.start()
    t = time.perf_counter()
    m = Machine(MachineDef(mem=mem))
    elapsed = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return m, peak, elapsed


def test_declared_ram_costs_nothing_until_used():
    small, small_peak, _ = _boot("256M")
    small.close()
    m, peak, elapsed = _boot("64T")
    f = m.kernel.mm.frames
    assert m.kernel.mem_bytes == 64 << 40 and f.total == (64 << 40) // 4096
    assert f.nr_free == f.total - sum(f.used.values())
    assert peak < small_peak * 1.5, (peak, small_peak)   # was ~10 GB for mem=1T
    assert elapsed < 30                                    # a generous bound; was 46 s for 1T
    m.close()


@pytest.mark.parametrize("mem,msg", [
    ("0", "mem 0: below the 16M a kmodemu kernel needs to boot"),
    ("1K", "mem 1K: below the 16M a kmodemu kernel needs to boot"),
    ("1P", "mem 1P: above the 64T an x86-64 kernel addresses (MAX_PHYSMEM_BITS 46)"),
    ("99999999999999999999", "mem 99999999999999999999: above the 64T an x86-64 kernel addresses "
                             "(MAX_PHYSMEM_BITS 46)"),
])
def test_impossible_machine_sizes_are_refused(mem, msg):
    with pytest.raises(ValueError) as e:
        MachineDef(mem=mem).validate()
    assert str(e.value) == msg


def test_boot_cli_refuses_mem_0(tmp_path):
    from click.testing import CliRunner

    from kmodemu.cli import main
    r = CliRunner().invoke(main, ["--machine", str(tmp_path / "m"), "boot", "--mem", "0"])
    assert r.exit_code != 0 and "below the 16M" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("value", ["0", "1P", "99999999999999999999"])
def test_mem_option_out_of_range_is_malformed(value):
    k = Kernel(cmdline=f"mem={value}")
    k.boot()
    assert "Malformed early option 'mem'" in k.dmesg()
    assert k.mem_bytes == 256 << 20


def test_memparse_wraps_like_simple_strtoull():
    from kmodemu.kernel.cmdline import memparse
    assert memparse("99999999999999999999") == 99999999999999999999 % (1 << 64)
    assert memparse("16E") == 0


def test_file_sizes(sh):
    assert sh("mkfile /mnt/big --size 1T") == (1, "mkfile: /mnt/big: No space left on device\n")
    assert sh("mkfile /mnt/huge --size 99999999999999999999") == (1, "mkfile: /mnt/huge: File too large\n")
    assert sh("mkfile /mnt/f --size 4K")[0] == 0
    assert sh("truncate -s 99999999999999999999 /mnt/f")[1].endswith("File too large\n")
    assert sh("truncate -s 9G /mnt/f")[1].endswith("No space left on device\n")


def test_names_and_paths(sh):
    assert sh("mkfile /mnt/f --size 4K")[0] == 0
    assert sh("mkfile /mnt/f/g --size 4K") == (1, "mkfile: /mnt/f/g: Not a directory\n")
    long = "/mnt/" + "n" * 256
    assert sh(f"mkfile {long} --size 4K") == (1, f"mkfile: {long}: File name too long\n")
    assert sh("mkfile /mnt/" + "n" * 255 + " --size 4K")[0] == 0
    deep = "/mnt/" + "/".join(["d"] * 3000)
    assert sh(f"mkfile {deep} --size 4K") == (1, f"mkfile: {deep}: File name too long\n")
    deep = "/mnt/" + "/".join(["d"] * 2000)          # under PATH_MAX: made without recursion
    assert sh(f"mkfile {deep} --size 4K")[0] == 0


def test_mount_point_with_a_space_is_escaped(sh):
    assert sh("mkdir '/mnt/a b'")[0] == 0
    assert sh("mount /dev/sdc1 '/mnt/a b' -t ext4")[0] == 0
    assert sh("cat /proc/mounts")[1].splitlines()[-1] == "/dev/sdc1 /mnt/a\\040b ext4 rw 0 0"


def test_mkswap_past_the_device(sh):
    assert sh("mkswap /dev/sdb 99999999999999999999") == (
        1, "mkswap: error: size 99999999999999999996 KiB is larger than device size 8388608 KiB\n")
    assert sh("swapon /dev/sdb") == (255, "swapon: /dev/sdb: read swap header failed\n")


def test_dmesg_lines_are_capped_and_the_command_line_truncated():
    k = Kernel(cmdline="x" * 5000)
    k.boot()
    assert k.saved_command_line == "x" * 2047
    k.printk("y" * 3000)
    assert max(len(r.text) for r in k.log._records) == 991


def test_module_images_are_bounded(tmp_path):
    from kmodemu.modules.elf import MAX_MODULE_BYTES, load_bytes
    with pytest.raises(OSError) as e:
        load_bytes("/dev/zero")
    assert e.value.errno == 27  # EFBIG
    bomb = tmp_path / "bomb.ko.xz"
    bomb.write_bytes(lzma.compress(bytes(MAX_MODULE_BYTES + 4096)))
    with pytest.raises(OSError):
        load_bytes(bomb)
    ok = tmp_path / "ok.ko.gz"
    ok.write_bytes(gzip.compress(b"\x7fELF" + bytes(100)))
    assert load_bytes(ok) == b"\x7fELF" + bytes(100)


def test_write_takes_a_value_that_starts_with_a_dash(sh):
    assert sh("insmod zcache")[0] == 0
    # echo -5 > …/disable_cleancache: the value reaches the file (read-only: EACCES), not click
    assert sh("write /sys/module/zcache/parameters/disable_cleancache -5") == (
        1, "write: /sys/module/zcache/parameters/disable_cleancache: Permission denied\n")
    assert sh("write /proc/sys/vm/drop_caches -5")[1].endswith("Invalid argument\n")


@pytest.mark.parametrize("name", ["", "a b", "tab\there", "bell\a"])
def test_alloc_refuses_a_name_ps_and_kill_cannot_show(name):
    with Machine(MachineDef()) as m:
        rc, out, err = m.capture(["alloc", name, "4M"])
        assert (rc, out) == (2, "")
        assert err.endswith("Error: Invalid value for 'NAME': a process name is one word of "
                            "printable characters\n")
        assert m.capture(["ps"])[1] == "NAME               PAGES     RES    SWAP  CONTENT\n"


def test_a_duration_cut_short_by_the_round_limit_says_so(monkeypatch):
    from kmodemu.console import mm as commands
    monkeypatch.setattr(commands, "MAX_ROUNDS", 5)
    import kmodemu.workloads.workload as wl
    monkeypatch.setattr(wl, "MAX_ROUNDS", 5)
    with Machine(MachineDef()) as m:
        m.capture(["mount", "-t", "ext4", "/dev/sda1", "/mnt"])
        rc, out, err = m.capture(["workload", "--duration", "1000h", "--files", "1",
                                  "--file-size", "64k"])
    assert rc == 0
    assert "time: 5 rounds in " in out
    assert err.startswith("workload: stopped at the limit of 5 rounds, after ")
    assert err.endswith(" s of the 3.6e+06 s asked\n")


def test_an_image_whose_version_is_true_is_refused(tmp_path):
    import json
    from kmodemu.machine import MachineError
    m = Machine.create(tmp_path / "m", MachineDef())
    m.close()
    image = tmp_path / "m" / "machine.json"
    data = json.loads(image.read_text())
    data["version"] = True
    image.write_text(json.dumps(data))
    with pytest.raises(MachineError) as e:
        Machine.open(tmp_path / "m")
    assert str(e.value) == (f"{image}: machine image version true is not supported "
                            "(this kmodemu reads version 1)")
