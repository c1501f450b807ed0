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


# -- r2net: RAMster's wire messages into the decoder and the handler dispatch ----------------

R2NET_SENDER = 1  # the node whose connection every fuzzed message arrives on


@pytest.fixture(scope="module")
def ramster_node():
    """A built-in zcache with RAMster (no cluster: this node's number is -1), holding
    foreign pages of node 1 and local pages remote on node 1 with gets outstanding."""
    from pathlib import Path

    from kmodemu.machine import Machine, MachineDef
    plugins = str(Path(__file__).resolve().parents[2] / "plugins")
    m = Machine(MachineDef(cmdline="zcache ramster noselfshrink", builtin=["zcache"],
                           module_path=[plugins]))
    from kmodemu_plugins.ramster.r2net import (RMSTR_KEY, RMSTR_TMEM_PUT_EPH,
                                               RMSTR_TMEM_PUT_PERS, XHandle, byte_sum)
    from kmodemu_plugins.ramster.ramster import Request
    from kmodemu_plugins.ramster.tcp import _Waiter
    from kmodemu_plugins.ramster.tcp_internal import R2NetMsg
    from kmodemu_plugins.ramster.zcache_glue import oid_int
    from kmodemu_plugins.ramster.zcache_side import RemotePampd
    from kmodemu_plugins.zcache.main import ZcacheState, zcache_of
    k = m.kernel
    ctx = k.modules.builtin["zcache"].ctx
    zc = zcache_of(ctx)
    rs = ctx.private(ZcacheState).ramster
    with k.bkl:
        for i, t in enumerate((RMSTR_TMEM_PUT_EPH, RMSTR_TMEM_PUT_PERS) * 2):
            z = zc.compressor.compress(bytes([i]) * 4096)
            payload = XHandle(R2NET_SENDER, t - RMSTR_TMEM_PUT_EPH, (1, 0, 0), i, len(z)).pack()
            hdr = R2NetMsg(data_len=len(payload) + len(z), msg_type=t, key=RMSTR_KEY,
                           sender=R2NET_SENDER)
            assert rs.net.deliver(hdr, payload + z) == (0, 0)
        pool = zc.new_pool(0xFFFF, 0)                      # a local ephemeral pool
        for i in range(3):
            z = zc.compressor.compress(bytes([i + 7]) * 4096)
            zc.put(zc.tmem.get_pool(0xFFFF, pool), oid_int((2, 0, 0)), i, bytes([i + 7]) * 4096)
            rs.zcache.replace(pool, (2, 0, 0), i, RemotePampd(R2NET_SENDER, len(z), byte_sum(z)))
            rs._requests[i + 1] = Request(True, R2NET_SENDER, pool, (2, 0, 0), i)
            rs.net.nodes[R2NET_SENDER].waiters[i] = _Waiter(i)
    yield m, zc, rs, pool
    m.close()


def _ramster_state(zc, rs, k):
    pages = []
    for cli_id, cli in sorted(zc.tmem.clients.items()):
        for pool in cli.pools:
            if pool is not None:
                for oid, obj in sorted(pool.objs.items()):
                    for index, pampd in sorted(obj.items()):
                        pages.append((cli_id, pool.pool_id, pool.persistent, oid, index,
                                      pampd if isinstance(pampd, int) else id(pampd)))
    return (pages, rs.counters.items(), sorted((e, r.answered) for e, r in rs._requests.items()),
            dict(rs._landing), k.taint.mask)


def _r2net_messages():
    """Arbitrary bytes, and headers that are RAMster's with one part wrong."""
    from kmodemu_plugins.ramster.tcp_internal import MAGICS, R2NetMsg
    xhandles = st.builds(
        lambda c, p, o, i, size, ck, extra: __import__(
            "kmodemu_plugins.ramster.r2net", fromlist=["XHandle"]).XHandle(
                c, p, (o, 0, 0), i, size, ck, extra).pack(),
        st.sampled_from([0, 1, 2, 255]) | st.integers(0, 255),
        st.sampled_from([0, 1, 2, 15, 16]) | st.integers(0, 0xFFFF),
        st.sampled_from([1, 2, 3]), st.integers(0, 4), st.integers(0, 0xFFFF), st.integers(0, 255),
        st.sampled_from([0, 1, 2, 3]) | st.integers(0, (1 << 64) - 1))
    payloads = st.tuples(xhandles, st.binary(max_size=120), st.integers(0, 200)).map(
        lambda t: (t[0] + t[1])[:t[2]] if t[2] < 48 else t[0] + t[1])
    structured = st.builds(
        lambda magic, msg_type, key, num, sys_status, status, payload, data_len: R2NetMsg(
            magic, len(payload) if data_len is None else data_len, msg_type, sys_status, status,
            key, num).pack() + payload,
        st.sampled_from(MAGICS) | st.integers(0, 0xFFFF),
        st.integers(100, 108) | st.integers(0, 0xFFFF),
        st.sampled_from([0x77347734]) | st.integers(0, 0xFFFFFFFF),
        st.integers(0, 4) | st.integers(0, 0xFFFFFFFF),
        st.integers(-5, 5), st.integers(-200, 200), payloads,
        st.none() | st.integers(0, 5000))
    framed = st.builds(   # framed right, for a handler: the corruption is in the payload
        lambda magic, msg_type, num, payload: R2NetMsg(
            magic, len(payload), msg_type, key=0x77347734, msg_num=num).pack() + payload,
        st.sampled_from([0xFA55, 0xFA59]), st.integers(100, 107), st.integers(0, 4), payloads)
    return st.binary(max_size=200) | structured | framed


@FUZZ
@given(_r2net_messages())
def test_fuzz_r2net(ramster_node, raw):
    """Bytes from a connected peer: decode_msg raises KernelError or yields a message;
    dispatch answers with a status (never raises), and a refusal changes nothing."""
    import errno as E

    from kmodemu_plugins.ramster.tcp import DataReply
    from kmodemu_plugins.ramster.tcp_internal import (R2NET_MSG_DATA_MAGIC, R2NET_MSG_MAGIC,
                                                      decode_msg)
    m, zc, rs, _ = ramster_node
    k = m.kernel
    with bounded(), k.bkl:
        before = _ramster_state(zc, rs, k)
        try:
            hdr, payload = decode_msg(raw, R2NET_SENDER)
        except KernelError as e:
            assert e.errno in (E.EINVAL, E.EOVERFLOW)
            return
        assert hdr.sender == R2NET_SENDER and len(payload) == hdr.data_len
        if hdr.magic not in (R2NET_MSG_MAGIC, R2NET_MSG_DATA_MAGIC):
            return  # status and keepalives complete waits or answer; no handler sees them
        syserr, result = rs.net.deliver(hdr, payload)
        assert syserr in (0, 1, 2)
        assert isinstance(result, (int, DataReply))
        refused = syserr != 0 or result in (-E.EINVAL, -E.EPERM) or (
            hdr.magic == R2NET_MSG_DATA_MAGIC and
            hdr.msg_num not in rs.net.nodes[R2NET_SENDER].waiters)
        if refused:
            assert _ramster_state(zc, rs, k) == before
