"""The example module (examples/params_demo): every parameter kind through insmod and sysfs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kmodemu.machine import Machine, MachineDef

EXAMPLES = str(Path(__file__).resolve().parents[2] / "examples")


@pytest.fixture
def m():
    with Machine(MachineDef(module_path=[EXAMPLES])) as machine:
        yield machine


def params(m) -> dict[str, str]:
    rc, out, _ = m.capture(["cat", "--json", "/sys/module/params_demo/parameters"])
    assert rc == 0
    return {k.rsplit("/", 1)[1]: v for k, v in json.loads(out).items()}


def test_defaults_as_sysfs_shows_them(m):
    assert m.capture(["insmod", "params_demo"]) == (0, "", "")
    assert params(m) == {"enabled": "Y\n", "verbose": "Y\n", "level": "3\n", "pages": "16\n",
                         "ratio": "50\n", "mask": "0x0000ff\n", "name": "demo\n",
                         "label": "tiny\n", "sizes": "1,2\n"}
    assert m.kernel.dmesg().splitlines()[-1].endswith(
        "params_demo: loaded as a module (name=demo, sizes=[1, 2])")


def test_every_kind_parsed_like_the_kernel(m):
    args = ["enabled=n", "verbose=0", "level=-0x3", "pages=010", "ratio=255", "mask=0",
            'name="a b"', "label=seven77", "sizes=4,5,6,7"]
    assert m.capture(["insmod", "params_demo", *args])[0] == 0
    assert params(m) == {"enabled": "N\n", "verbose": "N\n", "level": "-3\n", "pages": "8\n",
                         "ratio": "255\n", "mask": "00000000\n", "name": "a b\n",
                         "label": "seven77\n", "sizes": "4,5,6,7\n"}


@pytest.mark.parametrize("arg, err, log", [
    ("ratio=256", "Numerical result out of range", "params_demo: `256' invalid for parameter `ratio'"),
    ("label=eight888", "No space left on device",
     "params_demo: `eight888' too large for parameter `label'"),
    ("sizes=1,2,3,4,5", "Invalid parameters", "params_demo: `1' invalid for parameter `sizes'"),
    ("level", "Invalid parameters", "params_demo: `' invalid for parameter `level'"),
    ("level=11", "Invalid parameters", "params_demo: level 11 out of range"),
])
def test_bad_values_fail_the_load_and_leave_nothing(m, arg, err, log):
    rc, out, stderr = m.capture(["insmod", "params_demo", arg])
    assert rc == 1
    assert stderr == f"insmod: ERROR: could not insert module params_demo: {err}\n"
    assert log in m.kernel.dmesg()
    assert m.kernel.modules.get("params_demo") is None
    assert not m.kernel.vfs.exists("/sys/module/params_demo")


def test_runtime_writes_validate(m):
    m.capture(["insmod", "params_demo"])
    assert m.capture(["write", "/sys/module/params_demo/parameters/mask", "0x10"])[0] == 0
    assert params(m)["mask"] == "0x000010\n"
    rc, _, err = m.capture(["write", "/sys/module/params_demo/parameters/ratio", "1000"])
    assert (rc, err) == (1, "write: /sys/module/params_demo/parameters/ratio: "
                            "Numerical result out of range\n")
    rc, _, err = m.capture(["write", "/sys/module/params_demo/parameters/pages", "1"])
    assert (rc, err) == (1, "write: /sys/module/params_demo/parameters/pages: Permission denied\n")
    assert m.capture(["cat", "/sys/module/params_demo/parameters/secret"])[0] == 1


def test_used_by_and_modprobe_pulls_the_dependency(m):
    assert m.capture(["modprobe", "params_demo_user"]) == (0, "", "")
    rc, out, _ = m.capture(["lsmod"])
    assert out == ("Module                  Size  Used by\n"
                   "params_demo_user       16384  0\n"
                   "params_demo            16384  1 params_demo_user\n")
    assert "hello, kernel" in m.kernel.dmesg()
    rc, _, err = m.capture(["rmmod", "params_demo"])
    assert rc == 1 and err == "rmmod: ERROR: Module params_demo is in use by: params_demo_user\n"
    assert m.capture(["modprobe", "-r", "params_demo_user"]) == (0, "", "")
    assert m.capture(["lsmod"])[1] == "Module                  Size  Used by\n"


def test_alias_and_modinfo(m):
    rc, out, _ = m.capture(["modinfo", "-F", "alias", "demo-params"])
    assert (rc, out) == (0, "demo-params\n")
    rc, out, _ = m.capture(["modinfo", "-p", "params_demo"])
    assert out.splitlines()[0] == "secret:A parameter without a sysfs file (int)"


def test_builtin_boot_parameter_and_mod_param(tmp_path):
    d = MachineDef(module_path=[EXAMPLES], builtin=["params_demo"],
                   cmdline="params_demo=hello params_demo.level=7 params_demo.sizes=9")
    with Machine(d) as m:
        k = m.kernel
        assert k.module_context("params_demo").state.boot_word == "hello"
        assert k.read("/sys/module/params_demo/parameters/level") == "7\n"
        assert k.read("/sys/module/params_demo/parameters/sizes") == "9\n"
        assert "params_demo: loaded built in (name=demo, sizes=[9])" in k.dmesg()
        rc, out, err = m.capture(["modprobe", "params_demo"])
        assert (rc, out, err) == (0, "", "")  # built in: nothing to do


def test_concurrent_commands_on_one_machine_are_serialised(tmp_path):
    """Two processes at once: both commands land in the journal, the image stays valid."""
    kmodemu = Path(sys.executable).with_name("kmodemu")
    md = str(tmp_path / "m")
    subprocess.run([kmodemu, "--machine", md, "boot", "--module-path", EXAMPLES],
                   check=True, capture_output=True)
    subprocess.run([kmodemu, "--machine", md, "insmod", "params_demo"], check=True)
    procs = [subprocess.Popen([kmodemu, "--machine", md, "write",
                               "/sys/module/params_demo/parameters/level", str(v)],
                              stderr=subprocess.PIPE) for v in (4, 5, 6, 7)]
    assert [p.wait() for p in procs] == [0, 0, 0, 0]
    image = json.loads((tmp_path / "m" / "machine.json").read_text())
    writes = [j for j in image["journal"] if j[0] == "write"]
    assert sorted(j[2] for j in writes) == ["4", "5", "6", "7"]
    out = subprocess.run([kmodemu, "--machine", md, "cat",
                          "/sys/module/params_demo/parameters/level"],
                         check=True, capture_output=True, text=True).stdout
    assert out == f"{writes[-1][2]}\n"
