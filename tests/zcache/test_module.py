"""zcache as a module and built in: boot parameters, module parameters, init order, refusals."""

import pytest

from conftest import zmod
from kmodemu.machine import Machine, MachineDef

zcache_of = zmod("main").zcache_of


def lines(log: str) -> list[str]:
    return [line.split("] ", 1)[1] for line in log.splitlines()]


def zlines(m: Machine) -> list[str]:
    return [x for x in lines(m.kernel.dmesg()) if x.startswith(("zcache", "cleancache", "frontswap"))]


@pytest.fixture
def machine():
    made = []

    def make(**kw):
        m = Machine(MachineDef(**kw))
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


ENABLED = [
    "zcache: using zstd compressor",
    "zcache: cleancache enabled using kernel transcendent memory and compression buddies",
    "zcache: frontswap enabled using kernel transcendent memory and compression buddies",
]


@pytest.mark.parametrize("profile", ["3.10", "3.9"])
def test_builtin_with_boot_parameter(machine, profile):
    m = machine(builtin=["zcache"], cmdline="zcache", profile=profile)
    assert zlines(m) == ENABLED
    k = m.kernel
    assert k.cleancache.registered and k.frontswap.registered
    assert k.frontswap.exclusive_gets_enabled
    assert k.read("/sys/kernel/debug/zcache/obj_count") == "0\n"
    assert k.read("/sys/kernel/debug/zbud/eph_pageframes") == "0\n"
    assert k.read("/proc/modules") == ""          # built in: not a loaded module
    assert not k.vfs.exists("/sys/module/zcache")   # no module_params when built in
    assert k.taint.mask == 0                         # built-in staging code does not taint


def test_builtin_without_boot_parameter_registers_nothing(machine):
    m = machine(builtin=["zcache"])
    assert zlines(m) == []
    assert not m.kernel.cleancache.registered and not m.kernel.frontswap.registered
    assert m.kernel.vfs.is_dir("/sys/kernel/debug/zcache")
    assert m.kernel.vfs.is_dir("/sys/kernel/debug/zbud")


def test_prefix_matching_shadows_longer_boot_parameters(machine):
    # "zcache" is a prefix of "zcache=deflate": that handler wins, the name is ignored
    m = machine(builtin=["zcache"], cmdline="zcache=deflate")
    assert zlines(m)[0] == "zcache: using zstd compressor"
    # "nofrontswap" is a prefix of "nofrontswapexclusivegets": frontswap is disabled
    m = machine(builtin=["zcache"], cmdline="zcache nofrontswapexclusivegets")
    assert m.kernel.cleancache.registered and not m.kernel.frontswap.registered
    # "nocleancache" shadows "nocleancacheignorenonactive"
    m = machine(builtin=["zcache"], cmdline="zcache nocleancacheignorenonactive")
    assert not m.kernel.cleancache.registered and m.kernel.frontswap.registered
    assert m.kernel.read("/proc/1/cmdline") == "/sbin/init\0"  # all consumed, none reach init


def test_ramster_boot_word_enables_zcache_and_ramster(machine):
    m = machine(builtin=["zcache"], cmdline="ramster")
    assert m.kernel.cleancache.registered
    assert m.kernel.read("/proc/1/cmdline") == "/sbin/init\0"
    assert "ramster: cleancache enabled using kernel transcendent memory and compression " \
        "buddies" in m.kernel.dmesg()
    assert m.kernel.vfs.listdir("/sys/kernel/config") == ["cluster"]


def test_nofrontswap_and_nocleancache(machine):
    m = machine(builtin=["zcache"], cmdline="zcache nofrontswap nocleancache")
    assert zlines(m) == ["zcache: using zstd compressor"]


def test_module_load_replays_mounts_and_swap(machine):
    m = machine()
    for cmd in (["mount", "/dev/sda1", "/mnt", "-t", "ext4"],
                ["mount", "/dev/sdc1", "/data", "-t", "btrfs"],
                ["mkswap", "/dev/sdb1", "16M"], ["swapon", "/dev/sdb1"]):
        assert m.capture(cmd)[0] == 0, cmd
    cc, fs = m.kernel.cleancache, m.kernel.frontswap
    assert cc.fs_poolid_map[:3] == [-1, -1, -2]       # recorded, no backend
    assert fs.pending_types() == [0]
    assert m.capture(["insmod", "zcache"]) == (0, "", "")
    assert cc.fs_poolid_map[:3] == [0, 1, -2]         # replayed: low pool ids to cleancache
    assert fs.pending_types() == []
    host = zcache_of(m.kernel.module_context("zcache"))
    assert host.frontswap_poolid == 2                  # the persistent pool comes after them
    assert zlines(m) == [
        "zcache: module is from the staging directory, the quality is unknown, you have been warned.",
        "zcache: using zstd compressor",
        # the replay, in slot order, inside cleancache_register_ops
        "zcache: created ephemeral local tmem pool, id=0",
        "zcache: created ephemeral local tmem pool, id=1",
        ENABLED[1],
        "zcache: created persistent local tmem pool, id=2",
        ENABLED[2],
    ]
    assert m.capture(["umount", "/data"])[0] == 0
    assert zlines(m)[-1] == "zcache: destroyed local pool id=1"
    assert m.kernel.read("/proc/modules") == \
        "zcache 122880 0 [permanent], Live 0x0000000000000000 (C)\n"
    assert m.kernel.read("/proc/sys/kernel/tainted") == "1024\n"


def test_module_is_permanent(machine):
    m = machine()
    m.capture(["insmod", "zcache"])
    rc, out, err = m.capture(["rmmod", "zcache"])
    assert rc == 1
    assert err.endswith("rmmod: ERROR: could not remove module zcache: Device or resource busy\n")
    assert m.kernel.modules.get("zcache") is not None


def test_module_parameters_are_read_only_in_sysfs(machine):
    m = machine()
    assert m.capture(["insmod", "zcache", "disable_frontswap=1", "zcache_comp_name=deflate"])[0] == 0
    r = m.kernel.read
    assert r("/sys/module/zcache/parameters/zcache_comp_name") == "deflate\n"
    assert r("/sys/module/zcache/parameters/disable_frontswap") == "Y\n"
    assert r("/sys/module/zcache/parameters/frontswap_has_exclusive_gets") == "Y\n"
    assert r("/sys/module/zcache/parameters/disable_frontswap_selfshrink") == "0\n"
    assert r("/sys/module/zcache/parameters/zpool") == "zbud\n"
    assert r("/sys/module/zcache/parameters/same_filled") == "Y\n"
    assert zlines(m)[1:] == ["zcache: using deflate compressor", ENABLED[1]]
    rc, _, err = m.capture(["write", "/sys/module/zcache/parameters/disable_frontswap", "0"])
    assert (rc, err) == (1, "write: /sys/module/zcache/parameters/disable_frontswap: Permission denied\n")
    assert not m.kernel.frontswap.registered


def test_no_exclusive_gets_module_parameter(machine):
    m = machine()
    m.capture(["insmod", "zcache", "frontswap_has_exclusive_gets=0"])
    assert not m.kernel.frontswap.exclusive_gets_enabled


def test_unknown_compressor_fails_with_eperm_and_changes_nothing(machine):
    m = machine()
    rc, out, err = m.capture(["insmod", "zcache", "zcache_comp_name=bogus"])
    assert rc == 1
    assert err == "insmod: ERROR: could not insert module zcache: Operation not permitted\n"
    assert zlines(m)[-2:] == ["zcache: bogus not supported", "zcache: compressor initialization failed"]
    assert m.kernel.modules.get("zcache") is None
    assert not m.kernel.vfs.exists("/sys/kernel/debug/zcache")
    assert not m.kernel.cleancache.registered
    assert m.capture(["insmod", "zcache"])[0] == 0   # a good load afterwards works


def test_bad_parameter_value_fails_the_load(machine):
    m = machine()
    rc, _, err = m.capture(["insmod", "zcache", "disable_cleancache=maybe"])
    assert rc == 1 and err.endswith("Invalid parameters\n")
    assert lines(m.kernel.dmesg())[-1] == "zcache: `maybe' invalid for parameter `disable_cleancache'"
    assert m.kernel.modules.get("zcache") is None


def test_zsmalloc_and_unknown_zpool(machine):
    m = machine()
    assert m.capture(["insmod", "zcache", "zpool=zsmalloc"])[0] == 0
    assert zlines(m)[-1] == "zcache: frontswap enabled using kernel transcendent memory and zsmalloc"
    m = machine()
    rc, _, err = m.capture(["insmod", "zcache", "zpool=slab"])
    assert rc == 1 and err.endswith("Invalid parameters\n")
    assert zlines(m)[-1] == "zcache: zpool slab not supported (zbud, zsmalloc)"


def test_ramster_parameter_links_ramster(machine):
    m = machine()
    rc, _, err = m.capture(["insmod", "zcache", "ramster=1"])
    assert rc == 0, err
    assert m.kernel.modules.get("zcache") is not None
    assert m.kernel.read("/sys/module/zcache/parameters/ramster") == "Y\n"
    assert m.kernel.read("/sys/kernel/mm/ramster/interface_revision") == "5\n"


def test_pre_patch_kernel_refuses_the_module(machine):
    m = machine(profile="3.9")
    rc, _, err = m.capture(["insmod", "zcache"])
    assert rc == 1 and err.endswith("Invalid parameters\n")
    assert zlines(m)[-1] == "zcache module requires frontswap lazy init"
    rc, _, _ = m.capture(["insmod", "zcache", "disable_frontswap=1"])
    assert rc == 1 and zlines(m)[-1] == "zcache module requires cleancache lazy init"
    assert m.capture(["insmod", "zcache", "disable_frontswap=1", "disable_cleancache=1"])[0] == 0
    assert not m.kernel.cleancache.registered and not m.kernel.frontswap.registered


def test_modprobe_with_modprobe_d_options(machine):
    m = machine()
    conf = m.root / "etc" / "modprobe.d" / "zcache.conf"
    conf.write_text("options zcache zcache_comp_name=deflate zpool=zsmalloc\n")
    assert m.capture(["modprobe", "zcache"]) == (0, "", "")
    assert m.kernel.read("/sys/module/zcache/parameters/zpool") == "zsmalloc\n"
    assert "zcache: using deflate compressor" in zlines(m)


def test_modprobe_takes_options_from_the_kernel_command_line(machine):
    m = machine(cmdline="zcache.zcache_comp_name=deflate")
    assert m.capture(["modprobe", "zcache"]) == (0, "", "")
    assert m.kernel.read("/sys/module/zcache/parameters/zcache_comp_name") == "deflate\n"


def test_same_end_state_built_in_and_as_module(machine):
    """The patchset's point: boot-time and late registration see the same filesystems."""
    setup = [["mount", "/dev/sda1", "/mnt", "-t", "ext4"],
             ["mount", "/dev/sdc1", "/srv", "-t", "ocfs2", "-o", "uuid=0123456789abcdef0123456789abcdef"],
             ["mkswap", "/dev/sdb1", "8M"], ["swapon", "/dev/sdb1"]]
    built = machine(builtin=["zcache"], cmdline="zcache")
    late = machine()
    for cmd in setup:
        assert built.capture(cmd)[0] == 0 and late.capture(cmd)[0] == 0
    late.capture(["insmod", "zcache"])
    for m in (built, late):
        cc = m.kernel.cleancache
        assert (cc.fs_poolid_map[0], cc.shared_fs_poolid_map[0]) in ((0, 1), (1, 0))
        assert zcache_of(m.kernel.module_context("zcache")).frontswap_poolid == 2


def test_forced_rmmod_cannot_remove_zcache(machine):
    m = machine()
    m.capture(["insmod", "zcache"])
    rc, _, err = m.capture(["rmmod", "-f", "zcache"])
    assert rc == 1 and err.endswith("could not remove module zcache: Device or resource busy\n")
    assert m.kernel.modules.get("zcache") is not None and m.kernel.cleancache.registered


def test_same_filled_extension_can_be_turned_off(machine):
    m = machine()
    assert m.capture(["insmod", "zcache", "same_filled=0"])[0] == 0
    host = zcache_of(m.kernel.module_context("zcache"))
    assert host.same_filled is False
    m2 = machine()
    m2.capture(["insmod", "zcache"])
    assert zcache_of(m2.kernel.module_context("zcache")).same_filled is True
