"""Boot: command line, built-in modules, boot parameters, pseudo files."""

import errno

import pytest

from kmodemu.errors import KernelError
from kmodemu.kernel.kernel import Kernel
from tests.core.helpers import BootParam, ParamSpec, StaticRegistry, booted, decl


def strip_time(log: str) -> list[str]:
    return [line.split("] ", 1)[1] for line in log.splitlines()]


def test_boot_log_and_init_vectors():
    k = booted('root=/dev/vda ro quiet foo=bar baz baz foo=qux zcache.x=1 -- single "a b"')
    assert strip_time(k.dmesg())[:3] == [
        "Linux version 3.10.0-kmodemu (kmodemu) #1 SMP",
        'Kernel command line: root=/dev/vda ro quiet foo=bar baz baz foo=qux zcache.x=1 -- single "a b"',
        'Unknown kernel command line parameters "baz baz foo=qux", will be passed to user space.',
    ]
    assert k.read("/proc/cmdline") == 'root=/dev/vda ro quiet foo=bar baz baz foo=qux zcache.x=1 -- single "a b"\n'
    assert k.read("/proc/1/cmdline") == "/sbin/init\0baz\0baz\0single\0a b\0"
    assert k.read("/proc/1/environ") == "HOME=/\0TERM=linux\0foo=qux\0"
    assert k.loglevel == 4


def test_init_equals_replaces_program_and_clears_earlier_args():
    k = booted("a b init=/bin/sh c")
    assert k.read("/proc/1/cmdline") == "/bin/sh\0c\0"
    assert strip_time(k.dmesg())[-1] == "Run /bin/sh as init process"


def test_mem_sets_ram_and_malformed_mem_is_reported():
    assert booted("mem=64M").mem_bytes == 64 << 20
    k = booted("mem")
    assert "Malformed early option 'mem'" in strip_time(k.dmesg())
    assert k.mem_bytes == 256 << 20


def test_too_many_init_args_panics():
    words = " ".join(f"a{i}" for i in range(1, 34))
    k = Kernel(cmdline=words)
    with pytest.raises(KernelError) as e:
        k.boot()
    assert "Too many boot init vars at `a33'" in str(e.value)
    assert strip_time(k.dmesg())[-1] == "Kernel panic - not syncing: Too many boot init vars at `a33'"


def test_module_blacklist_and_nomodule():
    k = booted("module_blacklist=bad-mod,other")
    with pytest.raises(KernelError) as e:
        k.modules.load(decl("bad_mod"))
    assert e.value.errno == errno.EPERM
    assert strip_time(k.dmesg())[-1] == "Module bad_mod is blacklisted"
    k2 = booted("nomodule")
    with pytest.raises(KernelError) as e:
        k2.modules.load(decl("any"))
    assert e.value.errno == errno.EPERM


def _builtin_kernel(cmdline: str, **kw):
    calls = []

    def setup_on(rest, ctx):
        calls.append(("on", rest))
        ctx.state.enabled = True
        return 1

    def setup_name(rest, ctx):
        calls.append(("name=", rest))
        ctx.state.name = rest
        return 1

    def init(ctx):
        calls.append(("init", getattr(ctx.state, "enabled", False), ctx.params.level))
        return 0

    d = decl("tmemx", params=(ParamSpec("level", "int", perm=0o644, default=1),),
             boot_params=(BootParam("tmemx", setup_on), BootParam("tmemx=", setup_name)),
             initcall="late", init=init)
    other = decl("early_one", initcall="core",
                 init=lambda ctx: calls.append(("core-init",)) or 0)
    k = Kernel(cmdline=cmdline, registry=StaticRegistry(d, other), builtin=["tmemx", "early_one"], **kw)
    k.boot()
    return k, calls


def test_builtin_setup_prefix_matching_and_initcall_order():
    k, calls = _builtin_kernel("tmemx=lz4 tmemx.level=5")
    # "tmemx" is a prefix of "tmemx=lz4": the first handler in table order wins
    assert calls == [("on", "=lz4"), ("core-init",), ("init", True, 5)]
    assert k.read("/sys/module/tmemx/parameters/level") == "5\n"
    assert not k.vfs.exists("/sys/module/tmemx/initstate")  # built-ins have no initstate
    assert k.read("/proc/modules") == ""
    assert k.modules.is_builtin("tmemx")


def test_builtin_bad_param_value_keeps_default():
    k, calls = _builtin_kernel("tmemx.level=x")
    assert "Booting kernel: `x' invalid for parameter `tmemx.level'" in strip_time(k.dmesg())
    assert calls[-1] == ("init", False, 1)


def test_builtin_cannot_be_loaded_again():
    k, _ = _builtin_kernel("")
    with pytest.raises(KernelError) as e:
        k.modules.load(decl("tmemx"))
    assert e.value.errno == errno.EEXIST


def test_request_module_without_modprobe():
    k = booted()
    assert k.request_module("x" * 56) == -errno.ENAMETOOLONG
    assert k.request_module("zcache") == -errno.ENOENT  # no user-mode helper attached
    seen = []
    k.usermodehelper_modprobe = lambda argv: seen.append(argv) or 0
    assert k.request_module("zcache") == 0
    assert seen == [["-q", "--", "zcache"]]
    k.write("/proc/sys/kernel/modprobe", "\n")
    assert k.request_module("zcache") == -errno.ENOENT


def test_kernels_share_nothing():
    a, b = booted("mem=32M"), booted()
    a.modules.load(decl("only_a"))
    assert b.modules.get("only_a") is None
    assert a.mem_bytes != b.mem_bytes


def test_pseudo_fs_errors():
    k = booted()
    with pytest.raises(KernelError) as e:
        k.read("/proc/nothing")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(KernelError) as e:
        k.read("/proc")
    assert e.value.errno == errno.EISDIR
    with pytest.raises(KernelError) as e:
        k.write("/proc/cmdline", "x")
    assert e.value.errno == errno.EACCES


def test_dmesg_timestamps_come_from_the_virtual_clock():
    k = booted()
    k.clock.advance(1_234_567_000)
    k.printk("hello")
    assert k.dmesg().splitlines()[-1] == "[    1.484567] hello"


@pytest.mark.parametrize("cmdline, value, logged", [
    ("panic=5", "5", []),
    ("panic=-1", "-1", []),
    ("panic=abc", "0", ["Booting kernel: `abc' invalid for parameter `panic'"]),
    ("panic", "0", ["Booting kernel: `' invalid for parameter `panic'"]),
])
def test_panic_is_a_core_param_as_in_kernel_panic_c(cmdline, value, logged):
    # core_param(panic, panic_timeout, int, 0644): parsed by parse_args, so a bad
    # value is reported, never handed to init; sysfs under the module "kernel"
    k = Kernel(cmdline=cmdline)
    k.boot()
    lines = strip_time(k.dmesg())
    assert [ln for ln in lines if "panic" in ln and not ln.startswith("Kernel command line")] == logged
    assert k.init_args.argv == ["init"] and k.init_args.unknown_notice is None
    assert k.read("/sys/module/kernel/parameters/panic") == value + "\n"
    assert k.read("/proc/sys/kernel/panic") == value + "\n"
    k.write("/sys/module/kernel/parameters/panic", "7")
    assert k.read("/proc/sys/kernel/panic") == "7\n"
    with pytest.raises(KernelError):
        k.write("/proc/sys/kernel/panic", "x")
    assert k.read("/proc/sys/kernel/panic") == "7\n"


def test_a_panic_with_panic_timeout_says_it_reboots():
    k = Kernel(cmdline="panic=10 " + " ".join(f"a{i}" for i in range(40)))
    with pytest.raises(KernelError):
        k.boot()
    assert strip_time(k.dmesg())[-2:] == ["Kernel panic - not syncing: Too many boot init vars at `a32'",
                                          "Rebooting in 10 seconds.."]
