"""Persistent machines: journal images, resume by replay, damaged images, the CLI."""

import json

import pytest
from click.testing import CliRunner

from kmodemu.cli import main
from kmodemu.machine import Machine, MachineDef, MachineError


def test_in_memory_machine_runs_console_commands():
    with Machine(MachineDef(cmdline="quiet")) as m:
        assert m.capture(["cat", "/proc/cmdline"]) == (0, "quiet\n", "")
        assert m.capture(["uname", "-r"]) == (0, "3.10.0-kmodemu\n", "")
        rc, out, err = m.capture(["cat", "/proc/nope"])
        assert (rc, out, err) == (1, "", "cat: /proc/nope: No such file or directory\n")
        rc, _, err = m.capture(["no-such-command"])
        assert rc == 2 and "No such command 'no-such-command'" in err


def test_profile_39_has_its_release():
    with Machine(MachineDef(profile="3.9")) as m:
        assert m.capture(["uname", "-r"])[1] == "3.9.0-kmodemu\n"


def test_resume_replays_the_journal(tmp_path):
    path = tmp_path / "m"
    m = Machine.create(path, MachineDef(cmdline="loglevel=3"))
    m.kernel.printk("before")  # not a console command: not journaled
    assert m.capture(["dmesg", "-C"])[0] == 0
    assert m.capture(["dmesg"]) == (0, "", "")
    data = json.loads((path / "machine.json").read_text())
    assert data["format"] == "kmodemu-machine" and data["version"] == 1
    assert data["journal"] == [["dmesg", "-C"]]
    again = Machine.open(path)
    assert again.capture(["dmesg"]) == (0, "", "")
    assert again.kernel.clock.ns == m.kernel.clock.ns


def test_readonly_commands_are_not_journaled(tmp_path):
    m = Machine.create(tmp_path / "m", MachineDef())
    m.capture(["cat", "/proc/cmdline"])
    m.capture(["dmesg"])
    assert m.journal == []


def test_damaged_and_foreign_images_are_refused_and_kept(tmp_path):
    path = tmp_path / "m"
    path.mkdir()
    (path / "machine.json").write_text("{not json")
    with pytest.raises(MachineError, match="damaged machine image"):
        Machine.open(path)
    assert (path / "machine.json").read_text() == "{not json"
    (path / "machine.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(MachineError, match="not a kmodemu machine image"):
        Machine.open(path)
    with pytest.raises(MachineError, match="not a kmodemu machine image"):
        Machine.create(path, MachineDef(), force=True)
    (path / "machine.json").write_text(json.dumps({"format": "kmodemu-machine", "version": 99}))
    with pytest.raises(MachineError, match="version 99 is not supported"):
        Machine.open(path)


def test_create_refuses_to_replace_without_force(tmp_path):
    path = tmp_path / "m"
    Machine.create(path, MachineDef())
    with pytest.raises(MachineError, match="already exists"):
        Machine.create(path, MachineDef())
    Machine.create(path, MachineDef(cmdline="quiet"), force=True)
    assert Machine.open(path).kernel.saved_command_line == "quiet"


def test_bad_definitions():
    with pytest.raises(ValueError, match="unknown kernel profile"):
        MachineDef(profile="2.6").validate()
    with pytest.raises(ValueError, match="invalid size"):
        MachineDef(mem="lots").validate()
    with pytest.raises(ValueError, match="unknown machine field"):
        MachineDef.from_dict({"cmdline": "", "colour": "red"})


def test_cli_boot_then_commands_persist(tmp_path):
    r = CliRunner()
    md = str(tmp_path / "m")
    res = r.invoke(main, ["--machine", md, "boot", "--cmdline", "quiet foo=1", "--profile", "3.9"])
    assert res.exit_code == 0, res.output
    assert res.output == f"Booted 3.9.0-kmodemu (3.9) in {md}\n"
    res = r.invoke(main, ["--machine", md, "cat", "/proc/cmdline"])
    assert (res.exit_code, res.output) == (0, "quiet foo=1\n")
    res = r.invoke(main, ["--machine", md, "boot"])
    assert res.exit_code == 1 and "already exists" in res.output
    res = r.invoke(main, ["--machine", md, "boot", "--mem", "huge"])
    assert res.exit_code == 1 and "invalid size 'huge'" in res.output


def test_cli_boots_a_default_machine_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setenv("KMODEMU_MACHINE", str(tmp_path / "auto"))
    res = CliRunner().invoke(main, ["uname", "-r"])
    assert (res.exit_code, res.stdout) == (0, "3.10.0-kmodemu\n")
    assert res.stderr == f"kmodemu: booting machine {tmp_path / 'auto'} with the default command line\n"
    assert (tmp_path / "auto" / "machine.json").exists()


def test_cli_help_lists_machine_commands():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    for name in ("boot", "dmesg", "cat", "shell"):
        assert name in res.output


def test_broken_plugin_is_reported_and_ignored(tmp_path):
    from pathlib import Path

    broken = Path(__file__).parent / "broken_plugins"
    r = CliRunner()
    res = r.invoke(main, ["--machine", str(tmp_path / "m"), "boot", "--module-path", str(broken)])
    assert res.exit_code == 0
    assert "kmodemu: plugin ignored:" in res.stderr and "bad_param" in res.stderr
    assert "ValueError" in res.stderr
    res = r.invoke(main, ["--machine", str(tmp_path / "m"), "modinfo", "bad_param"])
    assert res.exit_code == 1


def test_reboot_and_poweroff(tmp_path):
    r = CliRunner()
    md = str(tmp_path / "m")
    r.invoke(main, ["--machine", md, "boot", "--cmdline", "quiet"])
    r.invoke(main, ["--machine", md, "dmesg", "-C"])
    res = r.invoke(main, ["--machine", md, "reboot", "--cmdline", "loglevel=4"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["--machine", md, "cat", "/proc/cmdline"])
    assert res.stdout == "loglevel=4\n"
    assert "Kernel command line: loglevel=4" in r.invoke(main, ["--machine", md, "dmesg"]).stdout
    assert r.invoke(main, ["--machine", md, "poweroff"]).exit_code == 0
    res = r.invoke(main, ["--machine", md, "uname", "-r"])
    assert res.stdout == "3.10.0-kmodemu\n"
    assert res.stderr == f"kmodemu: machine {md} was powered off; booting it again\n"


def test_machine_names_live_in_the_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    res = CliRunner().invoke(main, ["--machine", "lab1", "boot", "--kernel", "3.9"])
    assert res.exit_code == 0
    assert (tmp_path / "kmodemu" / "lab1" / "machine.json").exists()


def test_json_listings():
    with Machine(MachineDef()) as m:
        rc, out, _ = m.capture(["cat", "--json", "/sys/kernel/debug/cleancache"])
        assert rc == 0
        assert json.loads(out) == {f"/sys/kernel/debug/cleancache/{n}": "0\n"
                                   for n in ("succ_gets", "failed_gets", "puts", "invalidates")}
        assert m.capture(["insmod", "zcache"])[0] == 0
        rc, out, _ = m.capture(["lsmod", "--json"])
        assert json.loads(out) == [{"name": "zcache", "size": 122880, "refcnt": 0, "used_by": [],
                                    "state": "live", "permanent": True, "taint": "C"}]
        assert json.loads(m.capture(["ls", "--json", "/sys/kernel/debug"])[1])[:2] == \
            ["cleancache", "frontswap"]


def test_a_crashing_command_is_reported_not_journaled(monkeypatch):
    import click

    from kmodemu.console import console

    @console.command("crash-for-test")
    def crash():
        raise RuntimeError("boom")

    try:
        monkeypatch.delenv("KMODEMU_DEBUG", raising=False)
        with Machine(MachineDef()) as m:
            rc, out, err = m.capture(["crash-for-test"])
            assert rc == 70
            assert err == ("kmodemu: crash-for-test: internal error: RuntimeError: boom "
                           "(KMODEMU_DEBUG=1 shows the traceback)\n")
            assert m.journal == []
    finally:
        console.commands.pop("crash-for-test")
    assert isinstance(console, click.Group)


def test_modprobe_is_journaled_by_effect_so_later_config_edits_do_not_rewrite_history(tmp_path):
    path = tmp_path / "m"
    m = Machine.create(path, MachineDef())
    conf = m.root / "etc" / "modprobe.d" / "zcache.conf"
    conf.write_text("options zcache zcache_comp_name=deflate\n")
    assert m.capture(["modprobe", "zcache"]) == (0, "", "")
    entry = m.journal[-1]
    assert entry["argv"] == ["modprobe", "zcache"]
    assert entry["ops"] == [["load", {"plugin": "zcache"}, "zcache_comp_name=deflate "]]
    conf.write_text("options zcache zcache_comp_name=zstd\n")  # edited afterwards
    again = Machine.open(path)
    assert again.kernel.read("/sys/module/zcache/parameters/zcache_comp_name") == "deflate\n"
    assert again.kernel.dmesg() == m.kernel.dmesg()
    assert again.kernel.clock.ns == m.kernel.clock.ns


def test_failed_modprobe_replays_its_failure(tmp_path):
    path = tmp_path / "m"
    m = Machine.create(path, MachineDef(profile="3.9"))
    assert m.capture(["modprobe", "zcache"])[0] == 1
    again = Machine.open(path)
    assert again.kernel.dmesg() == m.kernel.dmesg()
    assert "zcache module requires frontswap lazy init" in again.kernel.dmesg()


def test_a_command_keeps_none_of_the_streams_it_wrote_to():
    """click.echo caches a stream per sys.stdout object in a dict whose value refers to its key:
    each command's fresh streams (and all they captured) used to live as long as the process
    (a 2000-step soak grew to GBs)."""
    import gc
    import io
    import weakref

    with Machine(MachineDef(cmdline="quiet")) as m:
        refs = []
        for argv in (["cat", "/proc/cmdline"], ["cat", "/proc/nope"], ["no-such-command"],
                     ["lsmod"], ["dmesg"]):
            out, err = io.StringIO(), io.StringIO()
            m.run(argv, stdout=out, stderr=err)
            assert out.getvalue() or err.getvalue()
            refs += [weakref.ref(out), weakref.ref(err)]
            del out, err
        gc.collect()
        assert [r for r in refs if r() is not None] == []


def test_command_streams_take_text_and_decode_bytes_as_a_terminal_shows_them():
    import contextlib
    import io
    import sys

    import click

    from kmodemu.console.commands import _CommandStream

    sink = io.StringIO()
    stream = _CommandStream(sink)
    with contextlib.redirect_stdout(stream):  # type: ignore[type-var]
        click.echo("text")
        click.echo(b"caf\xc3\xa9 \xff")
        print("printed")
        sys.stdout.writelines(["a\n", "b"])
    assert sink.getvalue() == "text\ncafé \\xff\nprinted\na\nb"
    with pytest.raises(TypeError):
        stream.write(b"raw")  # type: ignore[arg-type]
    assert stream.isatty() is False
