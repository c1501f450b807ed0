"""modprobe -c reads kmod 30's four configuration directories and modules.softdep in kmod's order.

The expected output was printed by the real kmod 30 (Debian 12) with the same
files in /etc, /run, /usr/local/lib and /lib modprobe.d (tmpfs in a private
mount namespace): kmod_config_new inserts modules.softdep, then
conf_files_list of each of libkmod.c's default_config_paths, into one list
sorted by file name where the first directory wins a duplicate name
(conf_files_insert_sorted).
"""

from __future__ import annotations

from .harness import run_tool

KMOD30_OUT = """\
softdep s_etc pre: x
softdep t_etc pre: x
softdep t_lib pre: x
softdep u_lr pre: x
softdep b_dep pre: q
softdep t_run pre: x
softdep t_usr_local_lib pre: x

# End of configuration files. Dumping indexes now:

"""


def test_conf_files_insert_sorted_over_default_config_paths(tmp_path):
    for d in ("etc", "run", "usr/local/lib", "lib"):
        conf = tmp_path / d / "modprobe.d"
        conf.mkdir(parents=True)
        n = d.replace("/", "_")
        (conf / "dup.conf").write_text(f"softdep s_{n} pre: x\n")
        (conf / f"{n}.alias").write_text(f"softdep t_{n} pre: x\n")
    (tmp_path / "lib" / "modprobe.d" / "lr.conf").write_text("softdep u_lr pre: x\n")
    moddir = tmp_path / "lib" / "modules" / "T"
    moddir.mkdir(parents=True)
    (moddir / "modules.softdep").write_text("# Soft dependencies extracted from modules themselves.\n"
                                            "softdep b_dep pre: q\n")
    assert run_tool(["modprobe", "-c", "-S", "T"], root=tmp_path) == (0, KMOD30_OUT, "")


def test_kmod_config_add_softdep_quirks_as_kmod30(tmp_path):
    """Words before pre:/post: are dropped, a bare softdep is a bad line, post: before pre: prints glued."""
    conf = tmp_path / "lib" / "modprobe.d"
    conf.mkdir(parents=True)
    (conf / "m.conf").write_text("softdep a_nopre x y\nsoftdep a_empty\nsoftdep a_post post: y z pre: w\n")
    (tmp_path / "lib" / "modules" / "T").mkdir(parents=True)
    rc, out, err = run_tool(["modprobe", "-c", "-S", "T"], root=tmp_path)
    assert (rc, out.split("\n\n#")[0]) == (0, "softdep a_nopre \nsoftdep a_post pre: wpost: y z")
    assert err == ("libkmod: ERROR ../libkmod/libkmod-config.c:712 kmod_config_parse: "
                   "/lib/modprobe.d/m.conf line 2: ignoring bad line starting with 'softdep'\n")
