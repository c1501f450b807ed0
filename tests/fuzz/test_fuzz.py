"""Fuzzing the parsers an outsider can feed: only clean errors, no hang, bounded input.

Short in the default run (FUZZ_EXAMPLES, default 40 per target); ``make fuzz``
raises it. Each input runs under a wall-clock bound (FUZZ_INPUT_SECONDS, default
5 s): an input past it is a hang and fails the target. Defects found become the
regression tests at the end of this file and in tests/reliability/.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
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


# -- Xen: xl config files and tmem hypercalls from a guest ------------------------------

XL_WORDS = ["name", "memory", "maxmem", "vcpus", "extra", "builtin", "profile", "seed", "=",
            '"g"', "'h'", '"tmem"', "64", "0x40", "010", "1.5", "-1", "0", "99999999999", "[",
            "]", ",", ";", "#", "\n", " ", "\t", '"', "'", "\\", "\\n", "\\0", "é", "\x00",
            "\r", "a.b", "_x"]
xl_texts = st.one_of(st.text(max_size=200),
                     st.lists(st.sampled_from(XL_WORDS), max_size=50).map("".join))
XL_ERR_LINE = re.compile(
    r"Parsing config from /etc/xen/fuzz\.cfg"
    r"|/etc/xen/fuzz\.cfg:\d+: config parsing error near (?:end of file|`.*'): "
    r"syntax error, unexpected .*"
    r"|Failed to parse config: Invalid argument"
    r"|/etc/xen/fuzz\.cfg:\d+: warning: parameter `.*' is "
    r"(?:a list but should be a single value|not a valid number|"
    r"a single value but should be a list)"
    r"|Domain name must be specified\."
    r"|libxl: error: [a-z_]+\.c:[a-z_]+: .*"
    r"|xc: error: panic: .*", re.DOTALL)


@FUZZ
@given(xl_texts, st.booleans())
def test_xl_config_files(text, dry_run):
    """Any config file into ``xl create``: xl's and libxlu's messages and exit codes only."""
    import io

    from kmodemu.xen import xlcfg
    from kmodemu.xen.hypervisor import Hypervisor
    from kmodemu.xen.xl import Xl
    hv = Hypervisor(256 << 20, "tmem dom0_mem=64M")
    free0, names0 = hv.heap.free_pages, {d.name for d in hv.domains.values()}
    out, err = io.StringIO(), io.StringIO()
    xl = Xl(hv, read_file=lambda path: text.encode("utf-8", "surrogateescape"))
    argv = ["create", *(["-n"] if dry_run else []), "/etc/xen/fuzz.cfg"]
    with bounded():
        try:
            cfg = xlcfg.parse(text, "/etc/xen/fuzz.cfg")
        except xlcfg.ConfigError as e:
            cfg = None
            assert e.errno == errno.EINVAL and e.messages
        rc = xl.run(argv, out, err)
    assert rc in (0, 1, 2, 3, 6), rc
    lines = err.getvalue().replace("near `\n'", "near `NL'").split("\n")
    assert lines[-1] == ""
    for line in lines[:-1]:
        assert XL_ERR_LINE.fullmatch(line), line
    assert (cfg is None) == ("Failed to parse config" in err.getvalue())
    created = {d.name for d in hv.domains.values()} - names0
    if rc == 0 and not dry_run:
        assert len(created) == 1 and hv.heap.free_pages < free0
    else:
        assert not created and hv.heap.free_pages == free0
    assert hv.accounting().balanced


class _Frame:
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def _frames():
    from kmodemu.xen.abi import PAGE_SIZE
    return st.one_of(st.none(), st.just(object()),
                     st.binary(max_size=64).map(_Frame),
                     st.integers(0, 255).map(lambda b: _Frame(bytes([b]) * PAGE_SIZE)),
                     st.just(_Frame(None)), st.just(_Frame("x" * PAGE_SIZE)))


INTS = st.one_of(st.integers(-3, 20), st.integers(-2**70, 2**70),
                 st.sampled_from([2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1, 2**64]))
CMDS = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 101, 102]), INTS)
GUEST_OPS = st.lists(st.tuples(CMDS, INTS, st.tuples(INTS, INTS, INTS), INTS, INTS, _frames(),
                               INTS, st.tuples(INTS, INTS), INTS, INTS, INTS, INTS),
                     max_size=30)
TMEM_ERRNOS = {errno.ENODEV, errno.EPERM, errno.EFAULT, errno.ENOMEM, errno.ENOSPC,
               errno.EINVAL, errno.EOPNOTSUPP, 1000, 1001}   # 1000/1001: EFROZEN, EEMPTY


@FUZZ
@given(st.sampled_from(["tmem", "tmem tmem_compress", "tmem tmem_dedup tmem_tze",
                        "tmem tmem_shared_auth"]), GUEST_OPS)
def test_tmem_hypercall_arguments_from_a_guest(xen_cmdline, ops):
    """Any ``struct tmem_op`` from a guest that is not dom0: an errno (or a result) back,
    never an exception, and another guest's pools, pages and counters unchanged."""
    import hashlib

    from kmodemu.xen import abi
    from kmodemu.xen.hypervisor import Hypervisor
    hv = Hypervisor(256 << 20, xen_cmdline + " dom0_mem=64M")
    a = hv.domain_create("a", 2048, 2048 + 32)
    b = hv.domain_create("b", 2048, 2048 + 32)
    oid = (7, 0, 0)
    assert hv.tmem_op(a, abi.TmemOp(abi.TMEM_NEW_POOL, flags=abi.pool_flags(True, False))) == 0
    assert hv.tmem_op(a, abi.TmemOp(abi.TMEM_NEW_POOL, flags=abi.pool_flags(False, False))) == 1
    pages = {i: hashlib.sha256(i.to_bytes(4, "little")).digest() * 128 for i in range(6)}
    for i, data in pages.items():
        for pool in (0, 1):
            assert hv.tmem_op(a, abi.TmemOp(abi.TMEM_PUT_PAGE, pool, oid=oid, index=i,
                                            gmfn=_Frame(data))) == 1

    def a_state():
        rc, text = hv.tmem_control(abi.TMEMC_LIST, a.domid, 32768, 1)
        assert rc == 0 and text is not None
        return text, a.tot_pages, a.tmem_pages, a.max_pages, a.is_dying

    before = a_state()
    with bounded():
        for (cmd, pool_id, o, index, ln, frame, flags, uuid, subop, cli_id, arg1,
             arg2) in ops:
            op = abi.TmemOp(cmd, pool_id, uuid=uuid, flags=flags, arg1=arg1, oid=o,
                            index=index, len=ln, gmfn=frame, subop=subop, cli_id=cli_id,
                            arg2=arg2)
            rc = hv.tmem_op(b, op)
            assert isinstance(rc, int)
            assert rc >= 0 or -rc in TMEM_ERRNOS, (abi.CMD_NAMES.get(cmd, cmd), rc)
            if cmd in (abi.TMEM_CONTROL, abi.TMEM_AUTH, abi.TMEM_RESTORE_NEW):
                assert rc == -errno.EPERM and op.buf is None
    assert a_state() == before
    assert hv.dom0.tmem is None and b.tot_pages <= b.max_pages
    assert hv.accounting().balanced
    for i, data in pages.items():
        for pool in (0, 1):
            f = _Frame(None)
            assert hv.tmem_op(a, abi.TmemOp(abi.TMEM_GET_PAGE, pool, oid=oid, index=i,
                                            gmfn=f)) == 1
            assert f.data == data


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


#: tcp_internal.h's magics: message, status, keepalive request/response, data
R2NET_MAGICS = (0xFA55, 0xFA56, 0xFA57, 0xFA58, 0xFA59)


def _frame(raw: bytes):
    """One message as the receive path (tcp.py ``_read_one``) frames a stream: the header,
    then ``data_len`` bytes of payload; None where the stream would wait for more bytes or
    close the link (an oversized ``data_len``). Those stream rules have their own tests on
    real sockets (tests/ramster/test_isolation.py, test_tcp.py); here they only decide what
    reaches the dispatch."""
    from kmodemu_plugins.ramster.tcp_internal import (HDR_SIZE, R2NET_MAX_PAYLOAD_BYTES,
                                                      R2NetMsg, _HDR)
    if len(raw) < HDR_SIZE:
        return None
    hdr = R2NetMsg.from_fields(_HDR.unpack_from(raw), R2NET_SENDER)
    if hdr.data_len > R2NET_MAX_PAYLOAD_BYTES or len(raw) - HDR_SIZE != hdr.data_len:
        return None
    return hdr, bytes(raw[HDR_SIZE:])


def _r2net_messages():
    """Arbitrary bytes, and headers that are RAMster's with one part wrong."""
    from kmodemu_plugins.ramster.tcp_internal import R2NetMsg
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
        st.sampled_from(R2NET_MAGICS) | st.integers(0, 0xFFFF),
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
    """Bytes from a connected peer, framed as the receive path frames them: the dispatch
    (``R2Net.deliver``) answers with a status (never raises), and a refusal changes nothing."""
    import errno as E

    from kmodemu_plugins.ramster.tcp import DataReply
    from kmodemu_plugins.ramster.tcp_internal import R2NET_MSG_DATA_MAGIC, R2NET_MSG_MAGIC
    m, zc, rs, _ = ramster_node
    k = m.kernel
    with bounded(), k.bkl:
        before = _ramster_state(zc, rs, k)
        framed = _frame(raw)
        if framed is None:
            return
        hdr, payload = framed
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
