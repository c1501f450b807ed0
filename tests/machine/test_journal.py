"""The journal is a faithful record owned by the machine (in-process: no machine processes)."""

from __future__ import annotations

import errno
import json
import os
import shutil

import pytest

from kmodemu.machine import Machine, MachineDef, MachineError

KO = "lib/modules/3.10.0-kmodemu/kernel/drivers/staging/zcache/zcache.ko"


@pytest.fixture
def machine(tmp_path):
    m = Machine.create(tmp_path / "m", MachineDef())
    yield m
    m.close()


def test_insmod_of_a_host_file_survives_its_deletion(machine, tmp_path):
    host = tmp_path / "host" / "zcache.ko"
    host.parent.mkdir()
    shutil.copy(machine.root / KO, host)
    assert machine.capture(["insmod", str(host)])[0] == 0
    entry = machine.journal[-1]
    assert isinstance(entry, dict) and entry["argv"] == ["insmod", str(host)]
    blob = entry["files"][str(host)]
    assert (machine.path / blob).read_bytes() == host.read_bytes()
    host.unlink()
    again = Machine.open(machine.path)
    assert again.capture(["lsmod"])[1].splitlines()[1].split()[0] == "zcache"
    again.close()


def test_host_content_is_the_copy_taken_when_the_command_ran(machine, tmp_path):
    host = tmp_path / "notes.txt"
    host.write_text("first version\n")
    assert machine.capture(["mkfile", "/tmp/notes", "--content", f"host:{host}"])[0] == 0
    before = machine.capture(["sha256sum", "/tmp/notes"])[1]
    host.write_text("edited afterwards, and longer\n")
    again = Machine.open(machine.path)
    assert again.capture(["sha256sum", "/tmp/notes"])[1] == before
    again.close()


def test_depmod_of_a_host_tree_is_not_replayed(machine, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(machine.root / "lib", tree / "lib")
    rc, _, err = machine.capture(["depmod", "-b", str(tree), "3.10.0-kmodemu"])
    assert rc == 0, err
    dep = tree / "lib/modules/3.10.0-kmodemu/modules.dep"
    assert ["depmod", "-b", str(tree), "3.10.0-kmodemu"] not in machine.journal
    dep.write_text("edited by the user\n")
    again = Machine.open(machine.path)
    again.capture(["lsmod"])
    assert dep.read_text() == "edited by the user\n"       # replay never writes outside
    again.close()


@pytest.mark.parametrize("entry, why", [
    (5, "journal entry 1 is not a command (a JSON number)"),
    (None, "journal entry 1 is not a command (a JSON null)"),
    ("lsmod", "journal entry 1 is not a command (a JSON string)"),
    ([1, 2], "journal entry 1 is not a command (a list of words)"),
    ([], "journal entry 1 is not a command (a list of words)"),
    ({"argv": ["insmod"], "files": {"x": "/etc/shadow"}}, "journal entry 1"),
    ({"clock": -1}, "journal entry 1: clock is not a count of nanoseconds"),
])
def test_a_malformed_journal_entry_makes_the_image_damaged(machine, entry, why):
    image = machine.path / "machine.json"
    data = json.loads(image.read_text())
    data["journal"] = [entry]
    image.write_text(json.dumps(data))
    raw = image.read_bytes()
    with pytest.raises(MachineError) as e:
        Machine.open(machine.path)
    assert str(e.value).startswith(f"{image}: damaged machine image ({why}")
    assert image.read_bytes() == raw                        # never rewritten


def test_a_full_disk_while_saving_keeps_the_old_image_and_no_temp_file(machine, monkeypatch):
    image = machine.path / "machine.json"
    raw = image.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(MachineError) as e:
        machine.capture(["insmod", "zcache"])
    assert str(e.value) == f"{image}: cannot save the machine: No space left on device"
    assert machine.journal == []
    assert image.read_bytes() == raw
    assert sorted(p.name for p in machine.path.iterdir() if p.name.endswith(".tmp")) == []
