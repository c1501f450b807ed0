"""modprobe.d directives, tool options and error paths (expectations from real kmod 30)."""

from __future__ import annotations

import pytest

from kmodemu.kmod.elfwriter import write_module
from kmodemu.modules.declaration import ModuleDecl

from .harness import boot_kernel, make_tree, run_tool

V = "6.0.0-emu"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("t")
    root = make_tree(base, "main")
    assert run_tool(["depmod", "-b", str(root), V], root=base)[0] == 0
    return root


@pytest.fixture
def machine(tmp_path):
    root = tmp_path / "m"
    (root / "etc/modprobe.d").mkdir(parents=True)
    return root


def mp(tree, machine, conf: str, *args, kernel=None, env=None):
    c = machine / "conf"
    c.mkdir(exist_ok=True)
    (c / "a.conf").write_text(conf)
    rc, out, err = run_tool(["modprobe", "-C", str(c), "-d", str(tree), "-S", V, *args],
                            kernel=kernel or boot_kernel("", tree, []), root=machine, env=env)
    return (rc, out.replace(str(tree), "@ROOT@"),
            err.replace(str(machine / "conf"), "@C@").replace(str(tree), "@ROOT@"))


P = "insmod @ROOT@/lib/modules/6.0.0-emu/"


def test_bad_lines_and_deprecated_commands(tree, machine):
    conf = ("foo bar\nalias onlyone\noptions zcache\ninclude /x\nconfig y\nalias a[b c\n"
            "blacklist\nsoftdep x\nsoftdep y pre:\ninstall z\nremove z\n"
            "alias x-y z-w\\\n  cont\noptions zc\\ache a=\\1\n  options zcache\tb=2\tc=3\n"
            "softdep a-b junk pre: c-d post: e-f pre: g\n")
    rc, out, err = mp(tree, machine, conf, "--showconfig")
    assert rc == 0
    head = out.split("\n\n# End")[0]
    assert head == ("alias x_y z_w\noptions zcache a=1\noptions zcache b=2 c=3\nsoftdep y \n"
                    "softdep a_b pre: c-d e-f gpost: e-f\nsoftdep dep_f pre: dep_dpost: dep_b")
    lines = err.splitlines()
    pre = "libkmod: ERROR ../libkmod/libkmod-config.c:"
    assert lines[0] == pre + "712 kmod_config_parse: @C@/a.conf line 1: ignoring bad line starting with 'foo'"
    assert lines[3] == pre + "708 kmod_config_parse: @C@/a.conf: command include is deprecated and not parsed anymore"
    assert [ln.rsplit("'", 2)[1] for ln in lines if "bad line" in ln] == [
        "foo", "alias", "options", "alias", "blacklist", "softdep", "install", "remove"]


def test_options_trailing_space_and_merge(tree, machine):
    rc, out, _ = mp(tree, machine, "options dep_c a=1\noptions dep_b\toptions  b=2  \n",
                    "-n", "-v", "dep_b", "x=1")
    assert out == (P + "updates/dep_c.ko a=1 \n" + P + "kernel/lib/dep_b.ko options  b=2   x=1\n")


def test_alias_to_missing_module(tree, machine):
    rc, out, err = mp(tree, machine, "alias foo nosuchmod\n", "-n", "-v", "foo")
    assert (rc, out, err) == (0, "", "")
    rc, out, err = mp(tree, machine, "alias foo nosuchmod\n", "foo")
    assert rc == 1
    assert err == ("modprobe: ERROR: ../libkmod/libkmod-module.c:895 kmod_module_insert_module() "
                   "could not find module by name='nosuchmod'\n"
                   "modprobe: ERROR: could not insert 'nosuchmod': Unknown symbol in module, "
                   "or unknown parameter (see dmesg)\n")


def test_resolve_alias_and_all(tree, machine):
    assert mp(tree, machine, "alias bar zcache\n", "-R", "bar")[1] == "zcache\n"
    assert mp(tree, machine, "", "-R", "dep-a")[1] == "dep_a\n"
    rc, out, err = mp(tree, machine, "", "-a", "-n", "-v", "dep_b", "nosuch")
    assert rc == 1 and out == P + "updates/dep_c.ko \n" + P + "kernel/lib/dep_b.ko \n"
    assert err == "modprobe: WARNING: Module nosuch not found in directory @ROOT@/lib/modules/6.0.0-emu\n"


def test_quiet_and_missing_params(tree, machine):
    assert mp(tree, machine, "", "-q", "nosuch") == (1, "", "")
    assert mp(tree, machine, "", "-q") == (1, "", "modprobe: ERROR: missing parameters. See -h.\n")


def test_show_depends_softdep_install_and_ignore_install(tree, machine):
    conf = "install dep_d /bin/false\nsoftdep dep_a pre: dep_d\n"
    rc, out, _ = mp(tree, machine, conf, "--show-depends", "dep_a")
    assert out == (P + "updates/dep_c.ko \n" + P + "kernel/lib/dep_b.ko \ninstall /bin/false \n"
                   + P + "kernel/lib/dep_a.ko \n")
    rc, out, _ = mp(tree, machine, conf, "-n", "-v", "-i", "dep_a")
    assert out == P + "updates/dep_c.ko \n" + P + "kernel/lib/dep_b.ko \n" + P + "kernel/lib/dep_a.ko \n"
    assert mp(tree, machine, "", "-D", "zbud")[1] == "builtin zbud\n"


def test_install_command_failure(tree, machine):
    k = boot_kernel("", tree, [])
    rc, out, err = mp(tree, machine, "install dep_d /bin/false\n", "dep_d", kernel=k)
    assert rc == 1
    assert err == ("modprobe: ERROR: ../libkmod/libkmod-module.c:1047 command_do() Error running "
                   "install command '/bin/false' for module dep_d: retcode 1\n"
                   "modprobe: ERROR: could not insert 'dep_d': Invalid argument\n")
    assert k.modules.get("dep_d") is None


def test_install_command_runs_nested_modprobe_on_the_machine(tmp_path):
    root = make_tree(tmp_path, "main")
    assert run_tool(["depmod", "-b", str(root), V], root=tmp_path)[0] == 0
    (root / "etc/modprobe.d").mkdir(parents=True)
    (root / "etc/modprobe.d/z.conf").write_text(
        "install zcache echo hello $CMDLINE_OPTS; /sbin/modprobe --ignore-install zcache "
        "$CMDLINE_OPTS\n")
    k = boot_kernel("", root, [])
    rc, out, err = run_tool(["modprobe", "zcache", "enabled=1"], kernel=k, root=root)
    assert (rc, out, err) == (0, "hello enabled=1\n", "")
    assert k.modules.get("zcache") is not None and k.modules.get("xen_tmem") is not None
    assert k.modules.get("zcache").params["enabled"].value is True


def test_load_and_remove_on_the_kernel(tree, machine):
    k = boot_kernel("", tree, [])
    assert mp(tree, machine, "", "ramster", kernel=k)[0] == 0
    assert [m.name for m in k.modules.loaded()] == ["ramster", "zcache", "xen_tmem"]
    assert mp(tree, machine, "", "--first-time", "ramster", kernel=k) == (
        1, "", "modprobe: ERROR: could not insert 'ramster': Module already in kernel\n")
    rc, out, err = mp(tree, machine, "", "-r", "-v", "ramster", kernel=k)
    assert rc == 0 and out == "rmmod ramster\nrmmod zcache\n"
    assert [m.name for m in k.modules.loaded()] == ["xen_tmem"]
    assert mp(tree, machine, "", "-r", "dep_b", kernel=k) == (0, "", "")
    assert mp(tree, machine, "", "--first-time", "-r", "dep_b", kernel=k)[2] == \
        "modprobe: FATAL: Module dep_b is not in kernel.\n"
    assert mp(tree, machine, "", "-r", "zbud", kernel=k)[2] == "modprobe: FATAL: Module zbud is builtin.\n"


def test_unknown_symbol_leaves_kernel_unchanged(tree, machine):
    k = boot_kernel("", tree, [])
    rc, out, err = mp(tree, machine, "", "orphan_user", kernel=k)
    assert rc == 1 and "Unknown symbol in module, or unknown parameter" in err
    assert k.modules.loaded() == []
    assert "orphan_user: Unknown symbol missing_symbol_xyz" in k.dmesg()


def test_blacklist_with_b_and_kcmdline(tree, machine):
    assert mp(tree, machine, "blacklist ramster\n", "-b", "-n", "-v", "ramster") == (0, "", "")
    k = boot_kernel("modprobe.blacklist=snd_fake2 x", tree, [])
    rc, out, _ = mp(tree, machine, "", "-n", "-v",
                    "pci:v00008086d00001234sv00001111sd00002222bc04sc03i00", kernel=k)
    assert out == P + "kernel/sound/pci/snd-fake.ko \n"


def test_modprobe_options_env(tree, machine):
    rc, out, err = mp(tree, machine, "", "dep_d", env={"MODPROBE_OPTIONS": "-n '-v'"})
    assert out == P + "kernel/lib/dep_d.ko \n"


@pytest.mark.parametrize("argv,err", [
    (["-x"], "modprobe: invalid option -- 'x'\n"),
    (["--frob"], "modprobe: unrecognized option '--frob'\n"),
    (["-C"], "modprobe: option requires an argument -- 'C'\n"),
    (["--show-d=1"], "modprobe: option '--show-depends' doesn't allow an argument\n"),
])
def test_bad_options(tree, machine, argv, err):
    assert run_tool(["modprobe", *argv], root=machine) == (1, "", err)


def test_insmod_rmmod_lsmod(tree, machine):
    k = boot_kernel("", tree, [])
    d = tree / "lib/modules" / V
    assert run_tool(["insmod", str(d / "kernel/lib/dep_d.ko"), "level=3"], kernel=k, root=machine) == (0, "", "")
    rc, _, err = run_tool(["insmod", str(d / "kernel/lib/dep_d.ko")], kernel=k, root=machine)
    assert (rc, err) == (1, f"insmod: ERROR: could not insert module {d}/kernel/lib/dep_d.ko: File exists\n")
    rc, _, err = run_tool(["insmod", str(d / "kernel/lib/dep_b.ko")], kernel=k, root=machine)
    assert err.endswith(": Unknown symbol in module\n")
    bad = machine / "bad.ko"
    bad.write_bytes(b"not an elf")
    assert run_tool(["insmod", str(bad)], kernel=k, root=machine)[2] == \
        f"insmod: ERROR: could not insert module {bad}: Invalid module format\n"
    assert run_tool(["insmod", str(d / "kernel/lib/dep_e.ko"), "x=1"], kernel=k, root=machine)[0] == 1
    assert run_tool(["insmod"], kernel=k, root=machine) == (1, "", "insmod: ERROR: missing filename.\n")
    out = run_tool(["lsmod"], kernel=k, root=machine)[1]
    assert out.splitlines()[1].startswith("dep_d                  ")
    assert run_tool(["lsmod", "x"], kernel=k, root=machine) == (1, "", "Usage: lsmod\n")
    assert run_tool(["rmmod", "dep_d", "nosuch"], kernel=k, root=machine) == (
        1, "", "rmmod: ERROR: Module nosuch is not currently loaded\n")
    assert k.modules.get("dep_d") is None
    assert run_tool(["rmmod"], kernel=k, root=machine) == (1, "", "rmmod: ERROR: missing module name.\n")


def test_insmod_by_plugin_name(tmp_path):
    from kmodemu.kmod.tree import populate
    decl = ModuleDecl(name="demo", description="d", init=lambda c: 0, exit=lambda c: None)
    populate(tmp_path, "6.0.0-emu", [decl], [])
    from kmodemu.kernel.kernel import Kernel
    k = Kernel(cmdline="", release="6.0.0-emu")
    assert run_tool(["insmod", "demo"], kernel=k, root=tmp_path) == (0, "", "")
    assert k.modules.get("demo") is not None


def test_depmod_cycle_and_warnings(tmp_path):
    root = make_tree(tmp_path, "cycle")
    rc, out, err = run_tool(["depmod", "-b", str(root), V], root=tmp_path)
    assert rc == 1
    assert err.replace(str(root), "@R@") == (
        "depmod: WARNING: could not open modules.order at @R@/lib/modules/6.0.0-emu: No such file or directory\n"
        "depmod: ERROR: Cycle detected: cyc_b -> cyc_a -> cyc_b\n"
        "depmod: ERROR: Found 2 modules in dependency cycles!\n")
    assert not (root / "lib/modules" / V / "modules.dep").exists()
    assert run_tool(["depmod", "-b", str(root), "notaversion"], root=tmp_path)[2] == \
        "depmod: ERROR: Bad version passed notaversion\n"


def test_depmod_errsyms(tmp_path):
    root = make_tree(tmp_path, "main")
    rc, _, err = run_tool(["depmod", "-e", "-n", "-b", str(root), V], root=tmp_path)
    assert err == "depmod: WARNING: -e needs -E or -F\n"
    empty = tmp_path / "System.map"
    empty.write_text("")
    rc, _, err = run_tool(["depmod", "-n", "-e", "-F", str(empty), "-b", str(root), V], root=tmp_path)
    assert err.replace(str(root), "@R@") == ("depmod: WARNING: @R@/lib/modules/6.0.0-emu/kernel/misc/"
                                             "orphan_user.ko needs unknown symbol missing_symbol_xyz\n")


def test_elfwriter_is_valid_elf(tmp_path):
    from elftools.elf.elffile import ELFFile
    from kmodemu.modules.elf import read_module
    decl = ModuleDecl(name="w", exports=("a_fn",), requires=("b_fn",), init=lambda c: 0,
                      origin="plugin:wplug")
    p = tmp_path / "w.ko"
    write_module(decl, p)
    with open(p, "rb") as fh:
        elf = ELFFile(fh)
        names = {s.name for s in elf.iter_sections()}
        syms = {s.name: s["st_shndx"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
    assert {".modinfo", "__ksymtab_strings", ".kmodemu", ".symtab"} <= names
    assert syms["b_fn"] == "SHN_UNDEF" and syms["init_module"] != "SHN_UNDEF"
    back = read_module(p)
    assert (back.plugin, back.exports, back.requires, back.exit) == ("wplug", ("a_fn",), ("b_fn",), None)


def test_compressed_modules(tmp_path):
    import lzma
    import zstandard
    from kmodemu.modules.elf import read_module
    decl = ModuleDecl(name="c", exports=("c_fn",))
    write_module(decl, tmp_path / "c.ko")
    raw = (tmp_path / "c.ko").read_bytes()
    (tmp_path / "c.ko.xz").write_bytes(lzma.compress(raw, format=lzma.FORMAT_XZ))
    (tmp_path / "c.ko.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    for f in ("c.ko.xz", "c.ko.zst"):
        assert read_module(tmp_path / f).exports == ("c_fn",)
