"""xl over one emulated host: wording, exit codes, nothing half-created."""

from __future__ import annotations

import io

import pytest

from kmodemu.xen import abi
from kmodemu.xen.hypervisor import Hypervisor
from kmodemu.xen.xl import Xl, parse_uuid

from .helpers import MB, page, put, new_pool


def make(mem_mb=256, cmdline="tmem dom0_mem=64M", files=None, builder=None):
    hv = Hypervisor(mem_mb * MB, cmdline)
    files = dict(files or {})

    def read(path):
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path].encode()

    return hv, Xl(hv, read_file=read, builder=builder)


def xl(x, *argv):
    out, err = io.StringIO(), io.StringIO()
    rc = x.run(list(argv), out, err)
    return rc, out.getvalue(), err.getvalue()


CFG = 'name = "g1"\nmemory = 64\nmaxmem = 96\nextra = "tmem"\n'


def test_create_list_destroy():
    hv, x = make(files={"/etc/xen/g1.cfg": CFG})
    assert xl(x, "create", "/etc/xen/g1.cfg") == (0, "", "Parsing config from /etc/xen/g1.cfg\n")
    rc, out, err = xl(x, "list")
    assert rc == 0 and err == ""
    assert out.splitlines() == [
        "Name                                        ID   Mem VCPUs\tState\tTime(s)",
        "Domain-0                                     0    64     1     r-----       0.0",
        "g1                                           1    64     1     -b----       0.0",
    ]
    g = hv.domain_by_name("g1")
    assert g.tot_pages == 64 * 256 and g.max_pages == 96 * 256 and g.config["extra"] == "tmem"
    assert xl(x, "destroy", "g1") == (0, "", "")
    assert hv.domain_by_name("g1") is None and hv.accounting().balanced


def test_key_value_overrides_and_dev_null():
    hv, x = make(files={"g.cfg": CFG})
    assert xl(x, "create", "-q", "g.cfg", 'name="g2"', "memory=32")[0] == 0
    g = hv.domain_by_name("g2")
    assert g.tot_pages == 32 * 256 and g.max_pages == 96 * 256
    assert xl(x, "create", "/dev/null", 'name="g3"')[0] == 0
    assert hv.domain_by_name("g3").tot_pages == 32 * 256      # libxl's default 32 MB
    assert xl(x, "create", 'name="g4"', "memory=16") == (0, "", "Parsing config from /dev/null\n")
    assert hv.domain_by_name("g4").tot_pages == 16 * 256


def test_create_errors_leave_host_unchanged():
    hv, x = make(files={"bad.cfg": "name = g1\n", "noname.cfg": "memory = 64\n",
                        "big.cfg": 'name="big"\nmemory=4096\n', "g.cfg": CFG,
                        "list.cfg": 'name="l"\nmemory=[1]\n'})
    before = hv.accounting()
    assert xl(x, "create") == (6, "", "Config file not specified and none in save file\n")
    assert xl(x, "create", "nope.cfg") == (
        3, "", "Failed to read config file: nope.cfg: No such file or directory\n")
    assert xl(x, "create", "bad.cfg") == (1, "", (
        "Parsing config from bad.cfg\n"
        "bad.cfg:1: config parsing error near `g1': syntax error, unexpected IDENT, "
        "expecting STRING or NUMBER or '['\n"
        "Failed to parse config: Invalid argument\n"))
    assert xl(x, "create", "noname.cfg")[2].endswith("Domain name must be specified.\n")
    rc, _, err = xl(x, "create", "list.cfg")
    assert rc == 1 and "list.cfg:2: warning: parameter `memory' is a list but should be a " \
                       "single value" in err
    rc, _, err = xl(x, "create", "big.cfg")
    assert rc == 3
    assert "can't allocate low memory for domain: Out of memory" in err
    assert err.endswith("libxl: error: libxl_create.c:domcreate_rebuild_done: "
                        "cannot (re-)build domain: -3\n")
    assert xl(x, "create", "g.cfg")[0] == 0
    rc, _, err = xl(x, "create", "g.cfg")
    assert rc == 3 and 'domain with name "g1" already exists' in err
    assert sorted(d.name for d in hv.domains.values()) == ["Domain-0", "g1"]
    xl(x, "destroy", "g1")
    assert hv.accounting() == before
    assert xl(x, "create", "g.cfg", "maxmem=16")[0] == 6


def test_builder_failure_tears_the_domain_down():
    class Failing:
        def build(self, dom, cfg):
            from kmodemu.errors import KernelError
            raise KernelError(22, "guest kernel refused")

        def destroy(self, dom):
            raise AssertionError("not reached")

    hv, x = make(files={"g.cfg": CFG}, builder=Failing())
    before = hv.accounting()
    rc, _, err = xl(x, "create", "g.cfg")
    assert rc == 3 and "guest kernel refused" in err
    assert hv.accounting() == before and list(hv.domains) == [0] and hv.next_domid == 1


def test_unknown_domains_and_dom0():
    hv, x = make()
    assert xl(x, "destroy", "ghost") == (2, "", "ghost is an invalid domain identifier (rc=-6)\n")
    assert xl(x, "destroy", "0") == (255, "", "Cannot destroy privileged domain 0.\n\n")
    assert xl(x, "destroy", "Domain-0")[0] == 255
    assert xl(x, "list", "ghost")[0] == 2
    assert xl(x, "list", "7") == (1, "", "Error: Domain '7' does not exist.\n")
    assert xl(x, "frobnicate") == (1, "", "command not implemented\n")


def test_info_memory_adds_up_exactly():
    hv, x = make(files={"g.cfg": CFG})
    xl(x, "create", "-q", "g.cfg")
    g = hv.domain_by_name("g1")
    pe = new_pool(hv, g)
    pp = new_pool(hv, g, persistent=True)
    for i in range(40):
        put(hv, g, pe, (1, 0, 0), i, page(i))
    for i in range(10):
        put(hv, g, pp, (1, 0, 0), i, page(100 + i))
    rc, out, _ = xl(x, "info")
    info = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in out.splitlines())}
    assert rc == 0 and info["xen_commandline"] == "tmem dom0_mem=64M"
    assert info["total_memory"] == "256"
    kb = {k: int(v) for k, v in info.items() if k.endswith("_kb")}
    assert kb["tmem_ephemeral_kb"] == 160 and kb["tmem_persistent_kb"] == 40
    assert (kb["xen_memory_kb"] + kb["domains_memory_kb"] + kb["tmem_ephemeral_kb"]
            + kb["tmem_freelist_kb"] + kb["free_memory_kb"]) == 256 * 1024
    assert xl(x, "info", "free_memory")[1] == f"free_memory            : {hv.heap.free_pages // 256}\n"


def test_dmesg_and_clear():
    hv, x = make()
    rc, out, _ = xl(x, "dmesg")
    assert rc == 0 and out.startswith("(XEN) Xen version 4.2")
    assert "(XEN) tmem: initialized comp=0 dedup=0 tze=0 global-lock=0\n" in out
    xl(x, "dmesg", "-c")
    assert xl(x, "dmesg") == (0, "", "")


def test_tmem_list_freeze_thaw_set():
    hv, x = make(files={"g.cfg": CFG})
    xl(x, "create", "-q", "g.cfg")
    g = hv.domain_by_name("g1")
    rc, out, err = xl(x, "tmem-list", "g1")
    assert (rc, out, err) == (1, "", "libxl: error: libxl.c:libxl_tmem_list: Can not get tmem list\n")
    pid = new_pool(hv, g)
    put(hv, g, pid, (1, 0, 0), 0, page(1))
    assert xl(x, "tmem-list", "g1") == (0, "C=CI:1,ww:0,ca:0,co:0,fr:0,Tc:1,Ge:0,Pp:0,Gp:0\n"
                                           "P=CI:1,PI:0,PT:EP,U0:0,U1:0\n\n", "")
    rc, out, _ = xl(x, "tmem-list", "-l", "-a")
    # every hypercall counts, the failed list of a client-less domain as an error
    assert out.startswith("G=Tt:5,Te:1,") and ",Ec:1,Em:1," in out
    rc, out, err = xl(x, "tmem-list")
    assert (rc, err) == (1, "You must specify -a or a domain id.\n\n")
    assert out.startswith("Usage: xl [-v] tmem-list [-l] [<Domain>|-a]\n")
    assert xl(x, "tmem-freeze", "g1") == (0, "", "")
    assert put(hv, g, pid, (1, 0, 0), 5, page(5)) == -abi.EFROZEN
    assert "fr:1" in xl(x, "tmem-list", "g1")[1]
    assert xl(x, "tmem-thaw", "-a") == (0, "", "")
    assert put(hv, g, pid, (1, 0, 0), 5, page(5)) == 1
    assert xl(x, "tmem-set", "g1", "-w", "3", "-c", "7", "-p", "1") == (0, "", "")
    assert xl(x, "tmem-list", "g1")[1].startswith("C=CI:1,ww:3,ca:7,co:1,")
    assert xl(x, "tmem-set", "g1")[2].startswith("No set value specified.\n\n")
    assert xl(x, "tmem-freeze", "Domain-0") == (
        1, "", "libxl: error: libxl.c:libxl_tmem_freeze: Can not freeze tmem pools\n")


def test_tmem_freeable_and_flush():
    hv, x = make(files={"g.cfg": CFG})
    xl(x, "create", "-q", "g.cfg")
    g = hv.domain_by_name("g1")
    pid = new_pool(hv, g)
    for i in range(600):
        put(hv, g, pid, (1, 0, 0), i, page(i))
    assert xl(x, "tmem-freeable") == (0, "2\n", "")
    assert xl(x, "tmem-flush", "g1")[0] == 1
    assert xl(x, "tmem-flush", "-a", "-p", "1024") == (0, "1024\n", "")
    assert hv.tmem.eph_frames == 344
    assert xl(x, "tmem-flush", "-a") == (0, "1376\n", "")
    assert xl(x, "tmem-freeable") == (0, "0\n", "")


def test_tmem_commands_without_tmem_fail():
    hv, x = make(cmdline="dom0_mem=64M")
    assert xl(x, "tmem-freeable")[0] == 1
    assert xl(x, "tmem-list", "-a")[0] == 1


def test_shared_auth():
    hv, x = make(cmdline="tmem tmem_shared_auth dom0_mem=64M", files={"g.cfg": CFG})
    xl(x, "create", "-q", "g.cfg")
    g = hv.domain_by_name("g1")
    new_pool(hv, g)    # the client exists once the guest made a tmem call
    u = "00112233-4455-6677-8899-aabbccddeeff"
    assert xl(x, "tmem-shared-auth", "g1", "-u", u, "-A", "1") == (0, "", "")
    lo, hi = parse_uuid(u)
    assert (hi, lo) == (0x0011223344556677, 0x8899AABBCCDDEEFF)
    assert new_pool(hv, g, shared=True, uuid=(lo, hi)) == 1
    assert g.tmem.pools[1].shared
    assert xl(x, "tmem-shared-auth", "g1", "-u", "zz", "-A", "1")[2] == (
        "libxl: error: libxl.c:libxl_tmem_shared_auth: Can not set tmem shared auth\n")
    assert xl(x, "tmem-shared-auth", "g1", "-u", u, "-A", "x") == (
        1, "", "Invalid auth, valid auth are <0|1>.\n\n")
    assert xl(x, "tmem-shared-auth", "g1")[2].startswith("No uuid or auth specified.")


@pytest.mark.parametrize("text", ["", "0", "00112233-4455-6677-8899-aabbccddeeff"])
def test_parse_uuid_accepts(text):
    assert parse_uuid(text) is not None or text == ""


@pytest.mark.parametrize("text", ["0011", "00112233x4455-6677-8899-aabbccddeeff",
                                  "00112233-4455-6677-8899-aabbccddeeff0", "g"])
def test_parse_uuid_rejects(text):
    assert parse_uuid(text) is None


def test_bad_options_are_usage_errors():
    _, x = make()
    rc, out, err = xl(x, "tmem-list", "-z")
    assert rc == 2 and err == "xl: invalid option -- 'z'\n" and out.startswith("Usage: xl [-v] tmem-list")
    rc, out, _ = xl(x, "tmem-list", "-h")
    assert rc == 0 and "List tmem pools." in out
    assert xl(x, "tmem-set", "-a", "-w")[0] == 2
