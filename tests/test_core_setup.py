"""The emulated kernel's own __setup handlers, as obsolete_checksetup (init/main.c) calls them."""

from __future__ import annotations

import pytest

from kmodemu.errors import KernelError
from kmodemu.kernel.kernel import Kernel


def _boot(cmdline: str) -> Kernel:
    k = Kernel(cmdline=cmdline)
    k.boot()
    return k


def test_obsolete_checksetup_norandmaps_consumes_a_longer_word():
    """disable_randmaps (mm/memory.c) returns 1 whatever follows: norandmapsXYZ never reaches init."""
    k = _boot("norandmapsXYZ rootwaitX quietly")
    assert k.read("/proc/1/cmdline") == "/sbin/init\0rootwaitX\0quietly\0"
    assert 'Unknown kernel command line parameters "rootwaitX quietly", will be passed to user space.' \
        in k.dmesg()
    assert "norandmaps" not in k.dmesg().split("Kernel command line:")[1].split("\n", 1)[1]
    assert k.read("/proc/sys/kernel/randomize_va_space") == "0\n"


def test_randomize_va_space_default_and_sysctl_write():
    k = _boot("quiet")
    assert k.read("/proc/sys/kernel/randomize_va_space") == "2\n"
    k.write("/proc/sys/kernel/randomize_va_space", "1\n")
    assert k.read("/proc/sys/kernel/randomize_va_space") == "1\n"
    with pytest.raises(KernelError) as e:
        k.write("/proc/sys/kernel/randomize_va_space", "two\n")
    assert e.value.errno == 22
    assert k.read("/proc/sys/kernel/randomize_va_space") == "1\n"


@pytest.mark.parametrize("word", ["console=ttyS0", "root=/dev/vda1", "rootfstype=ext4", "rootwait",
                                  "ro", "rw", "init=/bin/sh", "rdinit=/init", "quiet", "debug",
                                  "loglevel=4", "ignore_loglevel", "mem=512M", "panic=10",
                                  "norandmaps", "nokaslr", "earlyprintk=ttyS0", "log_buf_len=1M"])
def test_reference_core_parameters_never_reach_init(word):
    """Every core parameter the reference lists is consumed by the kernel, as on a real one."""
    k = _boot(word)
    assert "Unknown kernel command line parameters" not in k.dmesg()
    assert k.read("/proc/1/environ") == "HOME=/\0TERM=linux\0"
