"""Fuzzing the parsers an outsider can feed: only clean errors, no hang, bounded input.

Short in the default run (FUZZ_EXAMPLES, default 40 per target); ``make fuzz``
raises it. Each input runs under a wall-clock bound (FUZZ_INPUT_SECONDS, default
5 s): an input past it is a hang and fails the target. Defects found become the
regression tests at the end of this file and in tests/reliability/.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kmodemu.errors import KernelError

N = int(os.environ.get("FUZZ_EXAMPLES", "40"))
BOUND = float(os.environ.get("FUZZ_INPUT_SECONDS", "5"))
FUZZ = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))

WORDS = ["mem=", "quiet", "zcache", "=", '"', "--", "init=", "modprobe.blacklist=", "a.b=c", " ",
         "\t", "\n", "params_demo.level=", "fail_page_alloc=", ",", "-", "_", "0x", "1K", "\x00", "é"]
texts = st.one_of(st.text(max_size=200),
                  st.lists(st.sampled_from(WORDS), max_size=40).map("".join))


class Hang(BaseException):
    pass


@contextlib.contextmanager
def bounded():
    def expire(signum, frame):
        raise Hang(f"input ran past {BOUND} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, BOUND)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@FUZZ
@given(texts)
def test_boot_command_line(text):
    from kmodemu.kernel.kernel import Kernel
    with bounded():
        k = Kernel(cmdline=text)
        try:
            k.boot()
        except KernelError:
            return
        assert k.read("/proc/cmdline").endswith("\n")


SPECS = [("byte", {}), ("short", {}), ("ushort", {}), ("int", {}), ("uint", {}), ("long", {}),
         ("ulong", {}), ("ullong", {}), ("bool", {}), ("invbool", {}), ("charp", {}),
         ("string", {"maxlen": 16}), ("array of int", {"max_count": 4}),
         ("array of charp", {"max_count": 3})]


@FUZZ
@given(st.sampled_from(SPECS), texts)
def test_module_param_types(spec, text):
    from kmodemu.kernel.params import Param, ParamSpec, parse_args
    ptype, extra = spec
    params = {"p": Param(ParamSpec("p", ptype, **extra))}
    with bounded():
        err, rest = parse_args("m", f"p={text}", params, printk=lambda m: None)
        assert isinstance(err, int) and err <= 0
        params["p"].get()


@FUZZ
@given(st.binary(max_size=300) | texts.map(lambda t: t.encode("utf-8", "surrogateescape")))
def test_modprobe_d(data):
    from kmodemu.kmod.config import Config, parse_config_text
    with bounded():
        parse_config_text(Config(), data, "fuzz.conf")


@FUZZ
@given(st.binary(max_size=400))
def test_ko_elf(data):
    from kmodemu.modules.elf import parse_elf
    with bounded():
        try:
            parse_elf(data, "fuzz.ko")
        except (KernelError, ValueError):
            pass


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 3))
def test_ko_elf_mutated(noise, where):
    """A real module image with bytes overwritten: the parser says ENOEXEC or reads it."""
    from kmodemu.modules.elf import parse_elf
    from kmodemu.kmod.elfwriter import write_module
    from kmodemu.modules.declaration import ModuleDecl
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.ko")
        write_module(ModuleDecl(name="m", description="d", license="GPL"), path)
        raw = bytearray(open(path, "rb").read())
    pos = (len(raw) * where) // 4
    raw[pos:pos + len(noise)] = noise
    with bounded():
        try:
            parse_elf(bytes(raw), "m.ko")
        except (KernelError, ValueError):
            pass


@FUZZ
@given(texts)
def test_scenario_files(text):
    from kmodemu.scenario.format import ScenarioSyntaxError, parse
    with bounded():
        try:
            parse(text, name="fuzz")
        except ScenarioSyntaxError:
            pass


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                       lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c,
                                                                            max_size=4), max_leaves=12)
IMAGE_KEYS = ["format", "version", "definition", "journal", "powered_off", "cmdline", "mem", "profile"]


@FUZZ
@given(st.dictionaries(st.sampled_from(IMAGE_KEYS), JSONISH, max_size=6))
def test_machine_images(doc):
    import tempfile

    from kmodemu.machine import Machine, MachineError
    from kmodemu.machine.machine import IMAGE_NAME
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, IMAGE_NAME), "w") as f:
            json.dump(doc, f)
        with bounded():
            try:
                Machine.open(d).close()
            except MachineError:
                pass


@FUZZ
@given(texts)
def test_emulated_sh(text):
    from kmodemu.kmod import sh
    with bounded():
        status, _, _ = sh.run(text, {}, lambda *a: 0)
    assert 0 <= status <= 255


DEPMOD_WORDS = ["search", "override", "exclude", "include", "make_map_files", "external",
                "built-in", "updates", "extra", "*", "zcache", "3.10.0-kmodemu", "[", "(", "\\",
                "\n", " ", "#", "kernel", "..", "/"]


@pytest.fixture(scope="module")
def depmod_machine():
    from kmodemu.machine import Machine, MachineDef
    m = Machine(MachineDef())
    yield m
    m.close()


@FUZZ
@given(st.binary(max_size=300) |
       st.lists(st.sampled_from(DEPMOD_WORDS), max_size=30).map(lambda w: " ".join(w).encode()))
def test_depmod_d(depmod_machine, data):
    """depmod.d as depmod reads it on the machine: kmod's words, its errors, exit 0 or 1."""
    conf = depmod_machine.root / "etc" / "depmod.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "fuzz.conf").write_bytes(data)
    with bounded():
        rc, out, err = depmod_machine.capture(["depmod"])
    assert rc in (0, 1), err
    assert "Traceback" not in err and "internal error" not in err


@FUZZ
@given(st.binary(max_size=120), st.integers(0, 3), st.integers(0, 255), st.integers(0, 255),
       st.integers(0, (1 << 32) - 1))
def test_module_signature_trailer(blob, id_type, signer_len, key_id_len, sig_len):
    """An appended signature with any lengths and contents: split or ignored, never a crash."""
    from kmodemu.modules.signature import MAGIC, _SIG_STRUCT, modinfo_fields, split_signature
    body = b"\x7fELF" + b"\0" * 60
    data = body + blob + _SIG_STRUCT.pack(0, 4, id_type, signer_len, key_id_len, sig_len) + MAGIC
    with bounded():
        rest, info = split_signature(data)
        assert data.startswith(rest)
        if info is not None:
            for key, value in modinfo_fields(info):
                assert isinstance(key, str) and isinstance(value, str)


def test_regression_depmod_override_with_a_bad_regex_matches_nothing(depmod_machine):
    """Found by test_depmod_d: ``override zcache [ extra`` was an internal error (re.error).
    depmod.c cfg_kernel_matches: a pattern regcomp refuses matches no kernel, silently."""
    conf = depmod_machine.root / "etc" / "depmod.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "fuzz.conf").write_bytes(b"override zcache [ extra\n")
    assert depmod_machine.capture(["depmod"]) == (0, "", "")
    (conf / "fuzz.conf").unlink()
