"""The module loader: init_module/delete_module semantics, /proc/modules, sysfs."""

import errno

import pytest

from kmodemu.errors import KernelError
from tests.core.helpers import ParamSpec, booted, decl


def test_proc_modules_newest_first_with_users_and_permanent():
    k = booted()
    k.modules.load(decl("base", exports=("base_fn",), init=lambda c: 0, exit=None))
    k.modules.load(decl("user_a", requires=("base_fn",)))
    k.modules.load(decl("user_b", requires=("base_fn",)))
    assert k.read("/proc/modules") == (
        "user_b 16384 0 - Live 0x0000000000000000\n"
        "user_a 16384 0 - Live 0x0000000000000000\n"
        "base 16384 2 user_b,user_a,[permanent], Live 0x0000000000000000\n"
    )
    assert k.read("/sys/module/base/refcnt") == "2\n"
    assert k.vfs.listdir("/sys/module/base/holders") == ["user_a", "user_b"]
    assert k.read("/sys/module/base/initstate") == "live\n"


def test_already_loaded_is_eexist():
    k = booted()
    k.modules.load(decl("m"))
    with pytest.raises(KernelError) as e:
        k.modules.load(decl("m"))
    assert e.value.errno == errno.EEXIST


def test_unknown_symbols_fail_with_enoent_and_leave_nothing():
    k = booted()
    with pytest.raises(KernelError) as e:
        k.modules.load(decl("needy", requires=("nope_a", "nope_b")))
    assert e.value.errno == errno.ENOENT
    assert "needy: Unknown symbol nope_a (err -2)\n" in k.dmesg().replace("[    0.250000] ", "")
    assert k.dmesg().endswith("needy: Unknown symbol nope_b (err -2)\n")
    assert k.modules.get("needy") is None
    assert not k.vfs.exists("/sys/module/needy")
    assert k.read("/proc/modules") == ""


def test_bad_parameter_value_fails_the_load_with_the_kernel_message():
    k = booted()
    d = decl("p", params=(ParamSpec("count", "int", desc="n"),))
    with pytest.raises(KernelError) as e:
        k.modules.load(d, "count=10k")
    assert e.value.errno == errno.EINVAL
    assert k.dmesg().endswith("p: `10k' invalid for parameter `count'\n")
    assert k.modules.get("p") is None


def test_out_of_range_is_erange():
    k = booted()
    d = decl("p", params=(ParamSpec("b", "byte"),))
    with pytest.raises(KernelError) as e:
        k.modules.load(d, "b=300")
    assert e.value.errno == errno.ERANGE


def test_unknown_parameter_is_only_a_warning_and_dashes_stop():
    k = booted()
    d = decl("p", params=(ParamSpec("on", "bool", perm=0o644),))
    k.modules.load(d, "bogus=1 on -- later=2")
    log = k.dmesg()
    assert "p: unknown parameter 'bogus' ignored\n" in log
    assert "p: parameters 'later=2' after `--' ignored\n" in log
    assert k.read("/sys/module/p/parameters/on") == "Y\n"


def test_sysfs_parameters_validate_and_respect_perm():
    k = booted()
    d = decl("p", params=(ParamSpec("rw", "uint", perm=0o644, default=3),
                          ParamSpec("ro", "charp", perm=0o444, default="lzo"),
                          ParamSpec("hidden", "int", perm=0)))
    seen = {}
    d.init = lambda ctx: seen.setdefault("ctx", ctx) and 0
    k.modules.load(d, "ro=zstd")
    assert k.read("/sys/module/p/parameters/ro") == "zstd\n"
    assert not k.vfs.exists("/sys/module/p/parameters/hidden")
    k.write("/sys/module/p/parameters/rw", "7\n")
    assert k.read("/sys/module/p/parameters/rw") == "7\n"
    assert seen["ctx"].params.rw == 7
    with pytest.raises(KernelError) as e:
        k.write("/sys/module/p/parameters/rw", "-1\n")
    assert e.value.errno == errno.EINVAL
    assert k.read("/sys/module/p/parameters/rw") == "7\n"
    with pytest.raises(KernelError) as e:
        k.write("/sys/module/p/parameters/ro", "x\n")
    assert e.value.errno == errno.EACCES


def test_failing_init_unwinds_everything_it_registered():
    k = booted()
    k.modules.load(decl("base", exports=("base_fn",)))
    undone = []

    def init(ctx):
        ctx.on_cleanup(lambda: undone.append("cleanup"))
        k.vfs.add_value("/sys/kernel/debug/bad/x", "1")
        ctx.on_cleanup(lambda: k.vfs.remove("/sys/kernel/debug/bad"))
        return -errno.ENODEV

    with pytest.raises(KernelError) as e:
        k.modules.load(decl("bad", requires=("base_fn",), exports=("bad_fn",), init=init,
                            params=(ParamSpec("x", "int", perm=0o444),)))
    assert e.value.errno == errno.ENODEV
    assert undone == ["cleanup"]
    assert not k.vfs.exists("/sys/kernel/debug/bad")
    assert not k.vfs.exists("/sys/module/bad")
    assert k.modules.get("base").holders == []
    assert k.modules.owner_of("bad_fn") is None
    # and it can be loaded again once fixed
    k.modules.load(decl("bad", requires=("base_fn",)))


def test_positive_init_return_warns_and_keeps_module():
    k = booted()
    k.modules.load(decl("odd", init=lambda c: 3))
    assert k.dmesg().endswith("odd: init suspiciously returned 3, it should follow 0/-E convention\n")
    assert k.modules.get("odd").state == "live"


def test_unload_checks_in_kernel_order():
    k = booted()
    exits = []
    k.modules.load(decl("base", exports=("f",), exit=lambda c: exits.append("base")))
    k.modules.load(decl("user", requires=("f",)))
    k.modules.load(decl("perm", exit=None))
    with pytest.raises(KernelError) as e:
        k.modules.unload("nothere")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(KernelError) as e:
        k.modules.unload("base")
    assert e.value.errno == errno.EWOULDBLOCK
    with pytest.raises(KernelError) as e:
        k.modules.unload("perm")
    assert e.value.errno == errno.EBUSY
    k.modules.unload("user")
    assert k.modules.symbol_get("f") is None  # value unbound, but a reference is taken
    assert k.modules.get("base").refcnt == 1
    with pytest.raises(KernelError) as e:
        k.modules.unload("base")
    assert e.value.errno == errno.EWOULDBLOCK
    k.modules.symbol_put("f")
    k.modules.unload("base")
    assert exits == ["base"]


def test_neither_init_nor_exit_can_be_unloaded():
    k = booted()
    k.modules.load(decl("plain", init=None, exit=None))
    assert "[permanent]" not in k.read("/proc/modules")
    k.modules.unload("plain")
    assert k.modules.get("plain") is None


def test_staging_taints_with_c_and_warns():
    k = booted()
    k.modules.load(decl("stage", staging=True))
    assert k.dmesg().endswith(
        "stage: module is from the staging directory, the quality is unknown, you have been warned.\n")
    assert k.read("/proc/sys/kernel/tainted") == "1024\n"
    assert k.read("/proc/modules").endswith("Live 0x0000000000000000 (C)\n")
    assert k.read("/sys/module/stage/taint") == "C\n"


def test_proprietary_license_taints_once():
    k = booted()
    k.modules.load(decl("blob", license="Proprietary"))
    k.modules.load(decl("blob2", license="Proprietary"))
    log = k.dmesg()
    assert log.count("taints kernel.") == 1
    assert "blob: module license 'Proprietary' taints kernel.\n" in log
    assert "Disabling lock debugging due to kernel taint\n" in log
    assert k.taint.letters() == "P"


def test_exported_symbol_values_and_duplicates():
    k = booted()
    k.modules.load(decl("owner", exports=("answer",), init=lambda c: c.export("answer", 42)))
    seen = []
    k.modules.load(decl("user", requires=("answer",),
                        init=lambda c: seen.append(c.symbol_value("answer"))))
    assert seen == [42]
    with pytest.raises(KernelError) as e:
        k.modules.load(decl("again", exports=("answer",)))
    assert e.value.errno == errno.ENOEXEC


def test_name_dash_becomes_underscore_and_length_limit():
    k = booted()
    k.modules.load(decl("xen-tmem"))
    assert k.modules.get("xen_tmem") is not None
    with pytest.raises(KernelError) as e:
        k.modules.load(decl("x" * 56))
    assert e.value.errno == errno.ENAMETOOLONG


def test_init_that_raises_is_an_oops_and_unwinds():
    k = booted()

    def init(ctx):
        ctx.on_cleanup(lambda: k.printk("cleaned"))
        raise ZeroDivisionError("division by zero")

    with pytest.raises(KernelError) as e:
        k.modules.load(decl("buggy", init=init))
    assert e.value.errno == errno.EFAULT
    tail = k.dmesg().splitlines()[-3:]
    assert [line.split("] ", 1)[1] for line in tail] == [
        "BUG: buggy: exception in init: ZeroDivisionError: division by zero",
        "Modules linked in: buggy",
        "cleaned",
    ]
    assert "D" in k.taint
    assert k.modules.get("buggy") is None


def test_exporting_an_undeclared_symbol_is_a_bug():
    k = booted()
    with pytest.raises(KernelError) as e:
        k.modules.load(decl("sneaky", init=lambda c: c.export("undeclared", 1)))
    assert e.value.errno == errno.EFAULT
    assert "is not in the declaration's exports" in k.dmesg()


def test_init_returning_a_non_int():
    k = booted()
    with pytest.raises(KernelError) as e:
        k.modules.load(decl("odd", init=lambda c: "yes"))
    assert e.value.errno == errno.EINVAL
    assert k.dmesg().endswith("odd: init returned 'yes', not an int\n")


def test_exit_that_raises_still_unloads():
    k = booted()
    k.modules.load(decl("m", exit=lambda c: 1 / 0))
    k.modules.unload("m")
    assert k.modules.get("m") is None
    assert "BUG: m: exception in exit: ZeroDivisionError" in k.dmesg()


def test_forced_unload_needs_config_module_force_unload():
    k = booted()
    k.modules.load(decl("perm", exit=None))
    with pytest.raises(KernelError) as e:
        k.modules.unload("perm", force=True)
    assert e.value.errno == errno.EBUSY
    k.modules.force_unload = True
    k.modules.unload("perm", force=True)
    assert k.modules.get("perm") is None
    assert "R" in k.taint


# -- unload_exit: linked only on profile 3.10-unload (beyond Linux, docs/unloading.md) ----------

def test_an_unload_exit_is_linked_only_on_the_unload_profile():
    for profile, permanent in (("3.10", True), ("3.10-unload", False)):
        k = booted(profile=profile)
        k.modules.load(decl("b", exit=None, unload_exit=lambda c: 0))
        assert ("[permanent]" in k.read("/proc/modules")) is permanent
        if permanent:
            with pytest.raises(KernelError) as e:
                k.modules.unload("b")
            assert e.value.errno == errno.EBUSY
        else:
            k.modules.unload("b")
            assert k.modules.get("b") is None


@pytest.mark.parametrize("result, err, line", [
    (lambda c: -errno.EBUSY, errno.EBUSY, None),
    (lambda c: "no", errno.EINVAL, "b: exit returned 'no', not an int"),
    (lambda c: 1 / 0, errno.EFAULT, "BUG: b: exception in exit: ZeroDivisionError"),
])
def test_an_unload_exit_that_refuses_or_breaks_keeps_the_module_live(result, err, line):
    k = booted(profile="3.10-unload")
    k.modules.load(decl("b", exit=None, unload_exit=result))
    before = k.read("/proc/modules")
    with pytest.raises(KernelError) as e:
        k.modules.unload("b")
    assert e.value.errno == err
    assert k.read("/proc/modules") == before            # still there, still Live
    assert k.read("/sys/module/b/initstate") == "live\n"
    if line is not None:
        assert line in k.dmesg()
