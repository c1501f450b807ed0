"""Boot-word hints: what the CLI says on stderr where Linux is silent."""

from __future__ import annotations

from kmodemu.hints import boot_hints
from kmodemu.kernel.params import ParamSpec
from kmodemu.modules.declaration import BootParam, ModuleDecl

from tests.core.helpers import StaticRegistry

ZC = ModuleDecl(name="zcache", boot_params=(BootParam("zcache", None), BootParam("ramster", None),
                                            BootParam("zcache=", None)),
                params=(ParamSpec("compressor", "charp"),))
EARLY = ModuleDecl(name="early_mod", boot_params=(BootParam("earlyword", None, early=True),))
REG = StaticRegistry(ZC, EARLY)


def test_word_of_a_module_that_is_not_built_in():
    (line,) = boot_hints("quiet zcache", [], REG)
    assert line == ("kmodemu: boot: 'zcache' is a boot parameter of zcache, which is a module on this "
                    "kernel, not built in, so the kernel passes the word to init. Boot with --builtin "
                    "zcache for the deprecated boot-parameter path, or load it later with "
                    "'kmodemu insmod zcache'.")


def test_once_per_module_and_prefix_matching_as_setup_does():
    lines = boot_hints("zcache=lz4 ramster zcache", [], REG)
    assert len(lines) == 1 and "'zcache=lz4'" in lines[0]


def test_nothing_when_built_in_or_unrelated():
    assert boot_hints("zcache ramster zcache.compressor=lz4", ["zcache"], REG) == []
    assert boot_hints("quiet root=/dev/sda1 foo", [], REG) == []
    assert boot_hints("zcache", [], None) == []


def test_early_params_match_exactly():
    assert boot_hints("earlywordX", [], REG) == []
    assert "early_mod" in boot_hints("earlyword=1", [], REG)[0]


def test_dotted_words():
    assert boot_hints("zcache.compressor=lz4", [], REG) == []  # modprobe reads it from /proc/cmdline
    (line,) = boot_hints("nosuch.param=1 nosuch.other=2", [], REG)
    assert line == ("kmodemu: boot: 'nosuch.param=1' sets a parameter of 'nosuch', which is neither "
                    "built in nor a module of this machine: nothing will read it.")


def test_the_module_parameter_that_does_the_same_is_named():
    zc = ModuleDecl(name="zcache", boot_params=(BootParam("zcache", None),
                                                BootParam("zcache=", None, module_param="zcache_comp_name={rest}")))
    (line,) = boot_hints("zcache=lz4", [], StaticRegistry(zc))
    assert line.endswith("or load it later with 'kmodemu insmod zcache zcache_comp_name=lz4'.")


# -- through the CLI, with the real zcache plugin and a throwaway Xen shim -------------------

import textwrap  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from kmodemu.cli import main  # noqa: E402
from kmodemu.machine import Machine, MachineDef  # noqa: E402

ZCACHE_HINT = ("kmodemu: boot: 'zcache' is a boot parameter of zcache, which is a module on this kernel, "
               "not built in, so the kernel passes the word to init. Boot with --builtin zcache for the "
               "deprecated boot-parameter path, or load it later with 'kmodemu insmod zcache'.\n")
RAMSTER_HINT = ("kmodemu: boot: 'ramster' is a boot parameter of zcache, which is a module on this kernel, "
                "not built in, so the kernel passes the word to init. Boot with --builtin zcache "
                "for the deprecated boot-parameter path, or load it later with "
                "'kmodemu insmod zcache ramster=1'.\n")


def _cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _dmesg(path):
    return _cli("--machine", str(path), "dmesg").output


def _dmesg_of(definition):
    with Machine(definition) as m:
        return m.capture(["dmesg"])[1]


def test_boot_says_it_once_on_stderr_and_changes_neither_dmesg_nor_status(tmp_path):
    res = _cli("--machine", str(tmp_path / "m"), "boot", "--cmdline", "quiet zcache zcache")
    assert res.exit_code == 0
    assert res.stderr == ZCACHE_HINT
    assert res.stdout == f"Booted 3.10.0-kmodemu (3.10) in {tmp_path / 'm'}\n"
    dmesg = _dmesg(tmp_path / "m")
    assert dmesg == _dmesg_of(MachineDef(cmdline="quiet zcache zcache"))
    assert "kmodemu:" not in dmesg and "Unknown kernel command line parameters \"zcache zcache\"" in dmesg


def test_ramster_is_a_personality_of_zcache(tmp_path):
    res = _cli("--machine", str(tmp_path / "m"), "boot", "--cmdline", "ramster")
    assert (res.exit_code, res.stderr) == (0, RAMSTER_HINT)
    # RAMster is linked into zcache (CONFIG_RAMSTER): built-in zcache takes the word itself
    res = _cli("--machine", str(tmp_path / "m"), "boot", "--force", "--builtin", "zcache",
               "--cmdline", "zcache ramster")
    assert (res.exit_code, res.stderr) == (0, "")
    assert "ramster: cleancache enabled" in _dmesg(tmp_path / "m")


def test_a_compressor_word_names_the_module_parameter(tmp_path):
    res = _cli("--machine", str(tmp_path / "m"), "boot", "--cmdline", "zcache=lz4")
    assert "'kmodemu insmod zcache zcache_comp_name=lz4'" in res.stderr and res.exit_code == 0


def test_nothing_when_the_word_works(tmp_path):
    res = _cli("--machine", str(tmp_path / "m"), "boot", "--builtin", "zcache", "--cmdline", "zcache")
    assert (res.exit_code, res.stderr) == (0, "")
    res = _cli("--machine", str(tmp_path / "n"), "boot", "--cmdline", "quiet zcache.zcache_comp_name=lz4")
    assert (res.exit_code, res.stderr) == (0, "")


def test_reboot_with_a_new_cmdline_hints_and_a_plain_reboot_does_not(tmp_path):
    m = str(tmp_path / "m")
    assert _cli("--machine", m, "boot").stderr == ""
    res = _cli("--machine", m, "reboot", "--cmdline", "zcache")
    assert (res.exit_code, res.stderr) == (0, ZCACHE_HINT)
    assert _dmesg(m) == _dmesg_of(MachineDef(cmdline="zcache"))
    res = _cli("--machine", m, "reboot")
    assert (res.exit_code, res.stderr) == (0, "")


def test_a_failed_boot_keeps_its_status_and_message(tmp_path):
    res = _cli("--machine", str(tmp_path / "m"), "boot", "--profile", "3.9", "--mem", "banana",
               "--cmdline", "zcache")
    assert res.exit_code == 1 and "zcache" not in res.stderr


def test_the_xen_shim_hint_comes_from_its_declaration(tmp_path):
    """``tmem`` is whatever module declares the word: the Xen shim (plugins/xen_tmem)."""
    m = str(tmp_path / "m")
    res = _cli("--machine", m, "boot", "--cmdline", "tmem")
    assert res.exit_code == 0
    assert res.stderr == ("kmodemu: boot: 'tmem' is a boot parameter of tmem, which is a module on this "
                          "kernel, not built in, so the kernel passes the word to init. Boot with --builtin "
                          "tmem for the deprecated boot-parameter path, or load it later with "
                          "'kmodemu insmod tmem'.\n")
    res = _cli("--machine", m, "reboot", "--cmdline", "nocleancache")
    lines = res.stderr.splitlines()
    assert [ln.split("'")[1:4:2] for ln in lines] == [["nocleancache", "kmodemu insmod tmem disable_cleancache=1"],
                                                      ["nocleancache", "kmodemu insmod zcache disable_cleancache=1"]]
    res = _cli("--machine", m, "boot", "--force", "--builtin", "tmem", "--cmdline", "tmem")
    assert (res.exit_code, res.stderr) == (0, "")


def test_mem_below_the_floor_says_what_it_boots_with(tmp_path):
    res = _cli("--machine", str(tmp_path / "m"), "boot", "--cmdline", "mem=1K")
    assert res.exit_code == 0
    assert res.stderr == ("kmodemu: boot: 'mem=1K' is below the 16M a kmodemu kernel needs: it boots "
                          "with 16M (a Linux kernel would not get far with so little).\n")
    dmesg = _dmesg(tmp_path / "m")
    assert "Memory: 16384K available" in dmesg and "kmodemu:" not in dmesg
    assert boot_hints("mem=64M mem=abc mem=0", [], REG) == []
