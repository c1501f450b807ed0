"""Shell completion through click's own entry point (``_KMODEMU_COMPLETE=…_complete`` with
COMP_WORDS/COMP_CWORD), one test per argument kind, exact lists; and that completing never
boots, replays or starts a machine."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmodemu.cli import main
from kmodemu.completion import Completer, MachineFacts, parse_parm_lines
from kmodemu.machine import Machine, MachineDef
from kmodemu.machine import protocol as proto

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = REPO / "examples" / "params_demo"
#: examples/params_demo's parameters, with the types modinfo gives them
DEMO_PARAMS = [("enabled=", "bool"), ("label=", "string"), ("level=", "int"), ("mask=", "hexint"),
               ("name=", "charp"), ("pages=", "ulong"), ("ratio=", "byte"), ("secret=", "int"),
               ("sizes=", "array of int"), ("verbose=", "invbool")]


def modinfo_params(path: Path, module: str) -> list[tuple[str, str]]:
    """What the machine's own modinfo says (the module plugin may change: the test follows it)."""
    m = Machine.open(path)
    try:
        rc, out, _ = m.capture(["modinfo", "-F", "parm", module])
    finally:
        m.close()
    assert rc == 0
    return sorted((f"{n}=", t) for n, t in parse_parm_lines(out))


def complete(line: str, shell: str = "bash", env: dict | None = None) -> list:
    """What click answers for ``line`` (the last word is the one being completed)."""
    words = shlex.split(line)
    if line.endswith(" "):
        words.append("")
    incomplete = words[-1]
    environ = {"_KMODEMU_COMPLETE": f"{shell}_complete", "COMP_WORDS": " ".join(words),
               "COMP_CWORD": incomplete if shell == "fish" else str(len(words) - 1), **(env or {})}
    if shell == "fish":
        environ["COMP_WORDS"] = line
    r = CliRunner().invoke(main, [], env=environ, prog_name="kmodemu", catch_exceptions=False)
    assert r.exit_code == 0, r.output
    if shell == "bash":
        return [tuple(x.split(",", 1)) for x in r.stdout.splitlines() if x]
    if shell == "zsh":
        lines = r.stdout.splitlines()
        if lines == [""]:
            return []
        return [tuple(lines[i:i + 3]) for i in range(0, len(lines), 3)]
    return r.stdout.splitlines()


def values(line: str, **kw) -> list[str]:
    return [v for _, v in complete(line, **kw)]


@pytest.fixture
def stopped(tmp_path):
    """A machine directory as `kmodemu boot` leaves it, but with no process running."""
    path = tmp_path / "m"
    Machine.create(path, MachineDef(mem="64M", module_path=[str(EXAMPLE_PLUGIN)])).close()
    return path


# -- module names and parameters, read from the machine directory ----------------------------

def plugins(*dirs: Path) -> list[str]:
    """Every module this build's plugins declare (more backends land: the tests follow them)."""
    from kmodemu.modules.discovery import ModuleRegistry
    return ModuleRegistry(list(dirs)).names()


def test_module_names_come_from_the_module_tree(stopped):
    assert complete(f"kmodemu --machine {stopped} insmod zc") == [("plain", "zcache")]
    both = ["params_demo", "params_demo_user"]
    every = plugins(EXAMPLE_PLUGIN)
    assert set(both) | {"zcache"} <= set(every)
    assert values(f"kmodemu --machine {stopped} insmod ") == every
    assert values(f"kmodemu --machine {stopped} modprobe p") == both
    assert values(f"kmodemu --machine {stopped} modinfo -F parm ") == every
    assert values(f"kmodemu --machine {stopped} modprobe -q -a params_demo ") == every
    assert not (stopped / proto.SOCKET_NAME).exists()  # nothing was started


def test_param_keys_after_the_module_name_with_their_type(stopped):
    assert complete(f"kmodemu --machine {stopped} insmod zcache zcache_c") == \
        [("plain", "zcache_comp_name=")]
    got = complete(f"kmodemu --machine {stopped} insmod params_demo ", shell="zsh")
    assert got == [("plain", v, t) for v, t in DEMO_PARAMS]
    got = complete(f"kmodemu --machine {stopped} insmod zcache ", shell="zsh")
    assert got == [("plain", v, t) for v, t in modinfo_params(stopped, "zcache")] and len(got) > 3
    got = complete(f"kmodemu --machine {stopped} modprobe -v params_demo l", shell="zsh")
    assert got == [("plain", "label=", "string"), ("plain", "level=", "int")]
    assert complete(f"kmodemu --machine {stopped} modprobe params_demo s", shell="fish") == \
        ["plain,secret=\tint", "plain,sizes=\tarray of int"]


def test_param_keys_already_given_are_not_offered_again(stopped):
    assert values(f"kmodemu --machine {stopped} insmod zcache zpool=zbud z") == ["zcache_comp_name="]
    assert values(f"kmodemu --machine {stopped} insmod zcache zpool=") == []   # a value: not ours
    assert values(f"kmodemu --machine {stopped} insmod nosuch ") == []


def test_built_in_modules_are_for_modprobe_and_modinfo_not_insmod(tmp_path):
    path = tmp_path / "b"
    Machine.create(path, MachineDef(mem="64M", builtin=["zcache"])).close()
    assert values(f"kmodemu --machine {path} insmod ") == [n for n in plugins() if n != "zcache"]
    assert values(f"kmodemu --machine {path} insmod z") == []
    assert values(f"kmodemu --machine {path} modprobe ") == plugins()
    assert values(f"kmodemu --machine {path} modinfo z") == ["zcache"]


def test_paths_and_option_arguments_are_the_shells_to_complete(stopped):
    assert complete(f"kmodemu --machine {stopped} insmod ./zc") == [("file", "./zc")]
    assert complete(f"kmodemu --machine {stopped} insmod /tmp/x.ko") == [("file", "/tmp/x.ko")]
    assert complete(f"kmodemu --machine {stopped} modprobe -C ") == [("file", "")]
    assert complete(f"kmodemu --machine {stopped} modprobe --dirname ") == [("dir", "")]
    assert complete(f"kmodemu --machine {stopped} modinfo -b ") == [("dir", "")]
    assert complete(f"kmodemu --machine {stopped} modprobe -S ") == []
    assert values(f"kmodemu --machine {stopped} modprobe -c ") == []


def test_a_machine_not_booted_yet_completes_from_the_plugins(tmp_path):
    """The default machine boots on first use: until then its modules are the plugins'."""
    never = tmp_path / "never"
    assert values(f"kmodemu --machine {never} insmod zc") == ["zcache"]
    assert values(f"kmodemu --machine {never} modprobe zcache zp") == ["zpool="]
    assert values(f"kmodemu --machine {never} rmmod ") == []
    assert values(f"kmodemu --machine {never} cat /proc/") == []
    assert not never.exists()   # completion booted nothing


def test_a_stopped_machine_is_not_recovered_to_answer(stopped):
    """Loaded modules and pseudo files live in the machine process: none is started for a TAB."""
    assert values(f"kmodemu --machine {stopped} rmmod ") == []
    assert values(f"kmodemu --machine {stopped} modprobe -r ") == []
    assert values(f"kmodemu --machine {stopped} cat /sys/") == []
    assert json.loads((stopped / proto.IMAGE_NAME).read_text())["journal"] == []
    assert not (stopped / proto.SOCKET_NAME).exists()


# -- a running machine answers read-only questions -------------------------------------------

def test_running_machine_pseudo_files_and_loaded_modules(running_machine):
    m = running_machine("r", boot=("--mem", "64M"))
    assert m.run("modprobe", "zcache")[0] == 0
    journal = json.loads((m.path / proto.IMAGE_NAME).read_text())["journal"]
    p = m.path
    assert values(f"kmodemu --machine {p} rmmod ") == ["zcache"]
    assert values(f"kmodemu --machine {p} modprobe -r z") == ["zcache"]
    proc = sorted("/proc/" + e for e in m.run("ls", "-p", "/proc")[1].split())
    assert {"/proc/1/", "/proc/cmdline", "/proc/modules", "/proc/sys/"} <= set(proc)
    assert values(f"kmodemu --machine {p} cat /proc/") == proc
    assert values(f"kmodemu --machine {p} cat /sys/kernel/debug/z") == [
        "/sys/kernel/debug/zbud/", "/sys/kernel/debug/zcache/"]
    assert values(f"kmodemu --machine {p} cat /proc/cmdline /proc/sw") == ["/proc/swaps"]
    assert values(f"kmodemu --machine {p} ls /proc/") == [e for e in proc if e.endswith("/")]
    assert values(f"kmodemu --machine {p} ls /proc /") == []
    assert values(f"kmodemu --machine {p} write /sys/module/zcache/parameters/zp") == \
        ["/sys/module/zcache/parameters/zpool"]
    assert values(f"kmodemu --machine {p} write /sys/module/zcache/parameters/zpool ") == []
    got = complete(f"kmodemu --machine {p} cat /sys/kernel/d", shell="zsh")
    assert got == [("plain", "/sys/kernel/debug/", "directory")]
    listed = m.run("ls", "-p", "/sys/kernel")[1].split()   # the machine's own answer
    assert values(f"kmodemu --machine {p} cat /sys/kernel/") == sorted(f"/sys/kernel/{e}" for e in listed)
    # the questions were read-only: nothing journaled, the clock did not move
    assert json.loads((m.path / proto.IMAGE_NAME).read_text())["journal"] == journal


def test_ls_p_marks_directories(running_machine):
    m = running_machine("l", boot=("--mem", "64M"))
    assert m.run("ls", "-p", "/") == (0, "proc/\nsys/\n", "")
    assert m.run("ls", "-p", "/proc/sys") == (0, "kernel/\nvm/\n", "")
    for d in ("/proc/sys/kernel", "/proc", "/sys/kernel"):   # whatever the kernel puts there
        plain, marked = m.run("ls", d)[1].split(), m.run("ls", "-p", d)[1].split()
        assert [e.rstrip("/") for e in marked] == plain and "tainted" in m.run("ls", "/proc/sys/kernel")[1]
        for e in marked:   # a slash exactly on the directories: they list, the files do not
            assert (m.run("ls", f"{d}/{e.rstrip('/')}")[0] == 0) == e.endswith("/"), e


# -- machine names, HOST/GUEST and xl domain names ----------------------------------------------

class FakeHost:
    """A process-less stand-in for a running Xen host: holds the lock and answers ``info``
    with its guests over the machine protocol, as the real server does."""

    def __init__(self, path: Path, guests: list[str]):
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        self.path, self.guests = path, guests
        self.lock = open(path / proto.LOCK_NAME, "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(path / proto.SOCKET_NAME))
        finally:
            os.umask(old)
        self.sock.listen(8)
        self.requests: list[dict] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                proto.send(conn, {"kmodemu": proto.PROTOCOL, "version": proto.version(), "pid": 1})
                req = proto.LineReader(conn).read() or {}
                self.requests.append(req)
                if req.get("op") == "info":
                    proto.send(conn, {"info": {"guests": self.guests}})
                proto.send(conn, {"exit": 0})

    def close(self) -> None:
        self.sock.close()
        self.lock.close()


@pytest.fixture
def state(tmp_path):
    """A state directory with machines alpha, alps (a Xen host with guests) and beta."""
    base = tmp_path / "state"
    for name in ("alpha", "beta"):
        (base / "kmodemu" / name).mkdir(parents=True)
        (base / "kmodemu" / name / proto.IMAGE_NAME).write_text("{}")
    host = FakeHost(base / "kmodemu" / "alps", ["web", "db"])
    (host.path / proto.IMAGE_NAME).write_text("{}")
    yield base, host
    host.close()


def test_machine_names_and_guests(state):
    base, host = state
    env = {"XDG_STATE_HOME": str(base)}
    assert complete("kmodemu --machine al", env=env) == [
        ("plain", "alpha"), ("plain", "alps"), ("plain", "alps/db"), ("plain", "alps/web")]
    assert values("kmodemu --machine alps/w", env=env) == ["alps/web"]
    assert values("kmodemu --machine b", env=env) == ["beta"]
    assert complete("kmodemu --machine ./ma", env=env) == [("dir", "./ma")]
    assert complete("kmodemu --machine z", env=env, shell="zsh") == []
    assert complete("kmodemu --machine a", env=env, shell="zsh")[:2] == [
        ("plain", "alpha", "machine"), ("plain", "alps", "machine")]
    assert all(r["op"] == "info" for r in host.requests)


def test_xl_domain_names_ask_the_running_host(state):
    base, host = state
    env = {"XDG_STATE_HOME": str(base)}
    assert values("kmodemu --machine alps xl destroy ", env=env) == ["Domain-0", "db", "web"]
    assert values("kmodemu --machine alps xl tmem-list -l w", env=env) == ["web"]
    assert values("kmodemu --machine alps xl create ", env=env) == []   # a config file, not a domain
    assert values("kmodemu --machine alps xl destroy web ", env=env) == []
    assert values("kmodemu --machine alpha xl list ", env=env) == []    # not running: no domains
    assert values("kmodemu --machine alps/web xl list ", env=env) == []  # a guest hosts no domains


class FakeFacts:
    """Completion's view of a machine, for the completer alone."""

    def module_names(self):
        return ["tmem", "zcache"]

    def builtin_names(self):
        return ["xen_blkfront"]

    def loaded_modules(self):
        return ["tmem"]

    def params(self, module):
        return {"tmem": [("cleancache", "bool"), ("frontswap", "bool")]}.get(module, [])

    def listdir(self, directory):
        return {"/": ["proc/", "sys/"]}.get(directory, [])

    def domains(self):
        return ["Domain-0", "guest1", "guest2"]

    def xl_commands(self):
        return {"create": "Create a domain", "destroy": "Terminate a domain immediately",
                "tmem-list": "List tmem pools"}


@pytest.mark.parametrize("command, words, incomplete, expected", [
    ("xl", ["destroy"], "g", ["guest1", "guest2"]),
    ("xl", ["tmem-freeze"], "", ["Domain-0", "guest1", "guest2"]),
    ("xl", [], "", ["create", "destroy", "tmem-list"]),
    ("xl", [], "t", ["tmem-list"]),
    ("xl", ["create"], "", []),
    ("modprobe", [], "", ["tmem", "xen_blkfront", "zcache"]),
    ("modprobe", ["-r"], "", ["tmem"]),
    ("modprobe", ["tmem"], "f", ["frontswap="]),
    ("insmod", ["-f", "tmem", "cleancache=0"], "", ["frontswap="]),
    ("cat", [], "/s", ["/sys/"]),
    ("cat", [], "", ["/proc/", "/sys/"]),
    ("uname", [], "", []),
])
def test_completer_on_fake_facts(command, words, incomplete, expected):
    got = Completer(FakeFacts()).complete(command, words, incomplete)
    assert [c.value for c in got] == expected


def test_parm_lines_of_modinfo():
    text = "zpool:allocator: zbud (Linux) or zsmalloc (denser) (charp)\nodd: (int)\nnodesc\n"
    assert parse_parm_lines(text) == [("zpool", "charp"), ("odd", "int")]


def test_machine_facts_refuse_to_ask_a_changing_command(tmp_path):
    with pytest.raises(ValueError, match="read-only"):
        MachineFacts(tmp_path).query(["insmod", "zcache"])


# -- boot options and the shell scripts ------------------------------------------------------

def test_boot_builtin_lists_plugins_after_the_last_comma():
    assert values("kmodemu boot --builtin zc") == ["zcache"]
    assert values(f"kmodemu boot --module-path {EXAMPLE_PLUGIN} --builtin zcache,") == \
        [f"zcache,{n}" for n in plugins(EXAMPLE_PLUGIN) if n != "zcache"]
    assert values(f"kmodemu boot --module-path {EXAMPLE_PLUGIN} --builtin zcache,params_demo,p") \
        == ["zcache,params_demo,params_demo_user"]
    assert values("kmodemu boot --profile ") == ["3.10", "3.9", "3.10-unload"]
    assert complete("kmodemu boot --module-path ") == [("dir", "")]


def test_command_names():
    assert values("kmodemu ins") == ["insmod"]
    assert values("kmodemu mod") == ["modinfo", "modprobe"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_source_scripts(shell):
    r = CliRunner().invoke(main, [], env={"_KMODEMU_COMPLETE": f"{shell}_source"},
                           prog_name="kmodemu")
    assert r.exit_code == 0
    assert "_kmodemu_completion" in r.stdout
    if shell == "bash":
        assert "[[ $value == */ || $value == *= ]] && compopt -o nospace" in r.stdout
    if shell == "zsh":
        assert "compadd -U -S '' -V unsorted -a completions_open" in r.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_fills_compreply(stopped, tmp_path):
    """The real bash script, sourced into bash, asking the real kmodemu executable."""
    exe = Path(sys.executable).with_name("kmodemu")
    if not exe.exists():
        pytest.skip("no kmodemu executable beside the interpreter")
    script = (f'eval "$(_KMODEMU_COMPLETE=bash_source {exe})"\n'
              f"COMP_WORDS=(kmodemu --machine {stopped} insmod zcache zcache_c); COMP_CWORD=5\n"
              f'_kmodemu_completion {exe} 2>/dev/null; printf "%s\\n" "${{COMPREPLY[@]}}"\n')
    r = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert r.stdout == "zcache_comp_name=\n", r.stderr


# -- the parsers, and a completer that fails ---------------------------------------------------

from hypothesis import given, strategies as st  # noqa: E402

from kmodemu.completion import _kmod_opts, _split  # noqa: E402

_word = st.text(st.sampled_from("abcz_=09./"), min_size=1, max_size=8)
_token = st.one_of(
    st.tuples(st.just("operand"), _word),
    st.tuples(st.just("flag"), st.sampled_from(["-a", "-r", "-q", "-v", "-n", "--all", "--quiet",
                                                "--dry-run", "-qv", "--verb"])),
    st.tuples(st.just("arg"), st.sampled_from(["-C", "-d", "-S", "--config", "--dirname",
                                               "--set-version", "-vC"]), _word),
    st.tuples(st.just("joined"), st.sampled_from(["-C", "-d", "--config=", "--set-v="]), _word),
)


@given(st.lists(_token, max_size=8), st.booleans())
def test_split_finds_exactly_the_operands(tokens, dangling):
    """modprobe's words in any order: options (with their arguments, joined or not) are never
    operands; an option left waiting for its argument is said to be."""
    opts = _kmod_opts("modprobe")
    assert opts is not None
    words, operands = [], []
    for kind, *parts in tokens:
        if kind == "operand":
            if parts[0].startswith("-"):
                continue
            words.append(parts[0])
            operands.append(parts[0])
        elif kind == "flag":
            words.append(parts[0])
        elif kind == "arg":
            words += [parts[0], parts[1]]
        else:
            words.append(parts[0] + parts[1])
    if dangling:
        words.append("--config")
    _, got, pending = _split(words, opts)
    assert (got, pending) == (operands, dangling)


@given(st.text(st.sampled_from("abz_"), min_size=1, max_size=6),
       st.text(st.characters(blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
               max_size=20),
       st.sampled_from(["bool", "int", "charp", "array of int", "invbool"]))
def test_parm_lines_round_trip(name, desc, ptype):
    """What kmod's modinfo -F parm prints (name:desc (type)) gives back the name and type."""
    assert parse_parm_lines(f"{name}:{desc} ({ptype})\n") == [(name, ptype)]


def test_a_damaged_module_tree_completes_nothing_and_says_nothing(stopped):
    moddir = stopped / "root" / "lib" / "modules" / "3.10.0-kmodemu"
    ko = next(moddir.rglob("zcache.ko"))
    ko.write_bytes(b"\x7fELF garbage")
    assert values(f"kmodemu --machine {stopped} insmod zcache ") == []
    (stopped / proto.IMAGE_NAME).write_text("{not json")
    assert values(f"kmodemu --machine {stopped} insmod zc") == ["zcache"]   # the plugins'


def test_other_commands_complete_files_directories_and_choices():
    assert complete("kmodemu run ") == [("file", "")]
    assert complete("kmodemu shell --record ") == [("file", "")]
    assert complete("kmodemu machines ") == [("dir", "")]
    assert values("kmodemu demo --run xen") == ["xen-boot", "xen-module"]


def test_an_image_naming_paths_outside_its_directory_is_not_read(tmp_path):
    """As when a machine boots, completion reads and imports nothing outside the machine."""
    path = tmp_path / "m"
    Machine.create(path, MachineDef(mem="64M")).close()
    image = json.loads((path / proto.IMAGE_NAME).read_text())
    image["definition"]["module_path"] = [str(EXAMPLE_PLUGIN)]
    image["definition"]["root"] = "../elsewhere"
    (path / proto.IMAGE_NAME).write_text(json.dumps(image))
    assert values(f"kmodemu --machine {path} insmod p") == []   # no params_demo from outside
    assert values(f"kmodemu --machine {path} insmod zcache zp") == ["zpool="]   # the plugins'


# -- kmodemu shell's TAB ------------------------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("", ["cat", "insmod", "modprobe"]),
    ("mod", ["modprobe"]),
    ("insmod ", ["tmem", "zcache"]),
    ("modprobe tmem ", ["cleancache=", "frontswap="]),
    ("cat /s", ["/sys/"]),
    ("xl destroy g", ["guest1", "guest2"]),
    ('cat "/proc', []),          # an open quote: nothing
    ("insmod ./x", []),          # a host file: readline has no file completion here
])
def test_shell_line_candidates(line, expected):
    from kmodemu.completion import line_candidates
    assert line_candidates(line, FakeFacts(), ["cat", "insmod", "modprobe"]) == expected


def test_shell_installs_its_completer(stopped):
    readline = pytest.importorskip("readline")
    from kmodemu.completion import install_readline
    old, delims = readline.get_completer(), readline.get_completer_delims()
    try:
        assert install_readline(MachineFacts(stopped), ["insmod"])
        assert readline.get_completer() is not None and readline.get_completer_delims() == " \t\n"
    finally:
        readline.set_completer(old)
        readline.set_completer_delims(delims)


def test_xl_subcommands_come_from_this_builds_xl(tmp_path):
    """With Xen in the build, xl's own command table; without it, nothing (never a made-up list)."""
    import importlib.util
    got = MachineFacts(tmp_path).xl_commands()
    if importlib.util.find_spec("kmodemu.xen") is None or \
            importlib.util.find_spec("kmodemu.xen.xl") is None:
        assert got == {}
    else:
        from kmodemu.xen.xl import SUMMARY
        assert got == SUMMARY and "create" in got
    assert values(f"kmodemu --machine {tmp_path / 'x'} xl ") == sorted(got)


def test_a_real_xen_hosts_guests(running_machine):
    """With Xen in the build: a running host's guests complete as HOST/GUEST and for xl."""
    from kmodemu.cli import main as cli
    if "--xen" not in CliRunner().invoke(cli, ["boot", "--help"]).stdout:
        pytest.skip("this build has no Xen hypervisor (kmodemu boot --xen)")
    host = running_machine("xh", boot=("--xen", "--mem", "256M"))
    rc, _, err = host.run("xl", "create", 'name="web"', "memory=32")
    assert rc == 0, err
    assert values(f"kmodemu --machine {host.path} xl destroy ") == ["Domain-0", "web"]
    assert values(f"kmodemu --machine {host.path}/web cat /proc/cm") == ["/proc/cmdline"]
