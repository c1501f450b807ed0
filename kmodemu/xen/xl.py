"""``xl``, Xen's toolstack (``tools/libxl/xl_cmdimpl.c``, Xen 4.2), over one emulated host.

Each command is ``Xl.run(argv)`` writing xl's own lines to the given streams
and returning xl's exit status: ``create`` returns the negated libxl error
(3 ERROR_FAIL, 6 ERROR_INVAL), a bad domain name is ``find_domain``'s exit 2,
destroying domain 0 is ``exit(-1)`` (255), usage errors are 1 or 2 as in the
source. libxl's error lines keep their ``libxl: error: FILE:FUNCTION:`` shape
without a source line number (we have none to give).

Guests: a successful ``create`` builds the domain in the hypervisor and hands
it to ``builder.build`` (the host boots the guest kernel there); if that fails
the domain is torn down again, so a failed create leaves the host as it was.
``tmem-flush`` is xm's command (xl 4.2 has none), kept because the issue's
users drive tmem with it; see docs/xen.md.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Protocol, Sequence

from ..errors import KernelError
from . import abi, xlcfg
from .abi import CLI_ID_NULL, PAGE_SHIFT
from .domain import Domain
from .hypervisor import XEN_EXTRA, XEN_VERSION, Hypervisor

ERROR_FAIL = -3
ERROR_INVAL = -6
#: libxl's default ``memory`` when a config sets none (``LIBXL_MEMKB_DEFAULT`` -> 32 MB)
DEFAULT_MEMORY_MB = 32
MAX_CONFIG_BYTES = 1 << 20

USAGE = {
    "create": "create [options] <ConfigFile> [vars]",
    "list": "list [options] [Domain]",
    "destroy": "destroy <Domain>",
    "info": "info [-n, --numa]",
    "dmesg": "dmesg [-c]",
    "tmem-list": "tmem-list [-l] [<Domain>|-a]",
    "tmem-freeze": "tmem-freeze [<Domain>|-a]",
    "tmem-thaw": "tmem-thaw [<Domain>|-a]",
    "tmem-set": "tmem-set [<Domain>|-a] [-w[=WEIGHT]|-c[=CAP]|-p[=COMPRESS]]",
    "tmem-shared-auth": "tmem-shared-auth [<Domain>|-a] [-u[=UUID] -A[=AUTH]",
    "tmem-freeable": "tmem-freeable",
    "tmem-flush": "tmem-flush [<Domain>|-a] [-p KB]",
}
SUMMARY = {
    "create": "Create a domain from config file <filename>",
    "list": "List information about all/some domains",
    "destroy": "Terminate a domain immediately",
    "info": "Get information about Xen host",
    "dmesg": "Read and/or clear dmesg buffer",
    "tmem-list": "List tmem pools",
    "tmem-freeze": "Freeze tmem pools",
    "tmem-thaw": "Thaw tmem pools",
    "tmem-set": "Change tmem settings",
    "tmem-shared-auth": "De/authenticate shared tmem pool",
    "tmem-freeable": "Get information about how much freeable memory (MB) is in-use by tmem",
    "tmem-flush": "Flush ephemeral tmem pages, all domains (xm's command)",
}


class Exit(Exception):
    """xl's ``exit(n)`` from inside a helper."""

    def __init__(self, code: int):
        self.code = code


@dataclass
class DomainConfig:
    """What ``xl create`` read: libxl's build info plus the guest kernel's choice."""

    name: str
    memory_mb: int
    maxmem_mb: int
    vcpus: int = 1
    extra: str = ""
    builtin: list[str] = field(default_factory=list)
    profile: str | None = None
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class GuestBuilder(Protocol):
    """The host's half of ``xl create``/``destroy``: boot and stop a guest kernel."""

    def build(self, dom: Domain, cfg: DomainConfig) -> None: ...

    def destroy(self, dom: Domain) -> None: ...


def parse_uuid(text: str) -> tuple[int, int] | None:
    """``xc_tmem_uuid_parse``: (lo, hi), hi from the first 16 hex digits; None if malformed."""
    x = [0, 0]   # [hi, lo]
    which = 0
    i = 0
    for i, ch in enumerate(text[:36]):
        if i in (8, 13, 18, 23):
            if ch != "-":
                return None
            if i == 18:
                which = 1
            continue
        d = int(ch, 16) if ch in "0123456789abcdefABCDEF" else -1
        if d < 0:
            return None
        x[which] = ((x[which] << 4) | d) & 0xFFFFFFFFFFFFFFFF
    n = min(len(text), 36)
    if (n not in (1, 36)) or len(text) > 36:
        return None
    return x[1], x[0]


def _strtol(text: str) -> int:
    """``strtol(s, NULL, 10)``: leading digits, 0 if none (xl never checks)."""
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    digits = ""
    for ch in s:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


class Xl:
    """One xl invocation's machinery, bound to a host."""

    def __init__(self, hv: Hypervisor, *, read_file: Callable[[str], bytes] | None = None,
                 builder: GuestBuilder | None = None, hostname: str = "xenhost",
                 release: str = "3.10.0"):
        self.hv = hv
        self.read_file = read_file or _read_host_file
        self.builder = builder
        self.hostname = hostname
        self.release = release

    # -- plumbing ----------------------------------------------------------------

    def run(self, argv: Sequence[str], out: IO[str], err: IO[str]) -> int:
        self.out, self.err = out, err
        if not argv:
            self._help(None)
            return 1
        cmd, args = argv[0], list(argv[1:])
        impl = getattr(self, "cmd_" + cmd.replace("-", "_"), None)
        if cmd == "help":
            self._help(args[0] if args else None)
            return 0
        if impl is None or cmd not in USAGE:
            err.write("command not implemented\n")
            return 1
        try:
            return impl(args)
        except Exit as e:
            return e.code

    def _help(self, cmd: str | None) -> None:
        if cmd in USAGE:
            self.out.write(f"Usage: xl [-v] {USAGE[cmd]}\n\n{SUMMARY[cmd]}.\n\n")
            return
        self.out.write("Usage xl [-v] <subcommand> [args]\n\nxl full list of subcommands:\n\n")
        for name in USAGE:
            self.out.write(f" {name:<16}{SUMMARY[name]}\n")
        self.out.write("\n")

    def _libxl_error(self, func: str, msg: str, file: str = "libxl.c") -> None:
        self.err.write(f"libxl: error: {file}:{func}: {msg}\n")

    def _getopt(self, cmd: str, args: list[str], spec: str) -> tuple[dict[str, str], list[str]]:
        """POSIX getopt over ``spec`` (letters, ``:`` after one taking an argument).

        ``-h`` prints the command's help and returns 0 (xl's SWITCH_FOREACH_OPT);
        an unknown option is help and exit 2.
        """
        opts: dict[str, str] = {}
        rest: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--":
                rest.extend(args[i + 1:])
                break
            if not a.startswith("-") or a == "-":
                rest.append(a)
                i += 1
                continue
            j = 1
            while j < len(a):
                ch = a[j]
                if ch == "h":
                    self._help(cmd)
                    raise Exit(0)
                pos = spec.find(ch)
                if pos < 0 or ch == ":":
                    self.err.write(f"xl: invalid option -- '{ch}'\n")
                    self._help(cmd)
                    raise Exit(2)
                if pos + 1 < len(spec) and spec[pos + 1] == ":":
                    if j + 1 < len(a):
                        opts[ch] = a[j + 1:]
                    elif i + 1 < len(args):
                        i += 1
                        opts[ch] = args[i]
                    else:
                        self.err.write(f"xl: option requires an argument -- '{ch}'\n")
                        self._help(cmd)
                        raise Exit(2)
                    break
                opts[ch] = ""
                j += 1
            i += 1
        return opts, rest

    def find_domain(self, text: str) -> int:
        """``libxl_domain_qualifier_to_domid``: all digits is a domid as given, else a name."""
        if text.isdigit():
            return int(text)
        dom = self.hv.domain_by_name(text)
        if dom is None:
            self.err.write(f"{text} is an invalid domain identifier (rc={ERROR_INVAL})\n")
            raise Exit(2)
        return dom.domid

    def _target(self, cmd: str, opts: dict[str, str], rest: list[str]) -> int:
        if not rest and "a" not in opts:
            self.err.write("You must specify -a or a domain id.\n\n")
            self._help(cmd)
            raise Exit(1)
        return CLI_ID_NULL if "a" in opts else self.find_domain(rest[0])

    # -- domains -----------------------------------------------------------------

    def cmd_create(self, args: list[str]) -> int:
        opts, rest = self._getopt("create", args, "Fqf:pcdenV")
        filename = opts.get("f")
        extra: list[str] = []
        for a in rest:
            if "=" in a:
                extra.append(a)
            elif filename is None:
                filename = a
            else:
                self._help("create")
                return 2
        if filename is None and not extra:
            self.err.write("Config file not specified and none in save file\n")
            return -ERROR_INVAL
        if filename is None:
            filename = "/dev/null"   # xl(1): without a file, the settings are the command line's
        if filename == "/dev/null":
            data = ""
        else:
            try:
                blob = self.read_file(filename)
            except OSError as e:
                self.err.write(f"Failed to read config file: {filename}: "
                               f"{os.strerror(e.errno or errno.EIO)}\n")
                return -ERROR_FAIL
            data = blob.decode("utf-8", "replace")
        if extra:
            data += "\n" + "\n".join(extra) + "\n"
        quiet = "q" in opts
        if not quiet:
            self.err.write(f"Parsing config from {filename}\n")
        try:
            cfg = xlcfg.parse(data, filename)
        except xlcfg.ConfigError as e:
            for line in e.messages:
                self.err.write(line + "\n")
            self.err.write(f"Failed to parse config: {os.strerror(e.errno)}\n")
            return 1
        dc = self._domain_config(cfg, filename)
        for w in cfg.warnings:
            self.err.write(w + "\n")
        if dc is None:
            return 1
        if "n" in opts:   # dry run: what would be built
            self.out.write(f"name: {dc.name}\nmemory: {dc.memory_mb}\nmaxmem: {dc.maxmem_mb}\n"
                           f"extra: {dc.extra}\n")
            return 0
        return self._build(dc)

    def _domain_config(self, cfg: xlcfg.Config, source: str) -> DomainConfig | None:
        name = cfg.get_string("name")
        if not name:
            self.err.write("Domain name must be specified.\n")
            return None
        memory = cfg.get_long("memory")
        maxmem = cfg.get_long("maxmem")
        vcpus = cfg.get_long("vcpus")
        if ("memory" in cfg and memory is None) or ("maxmem" in cfg and maxmem is None) or \
                ("vcpus" in cfg and vcpus is None):
            return None
        mem = DEFAULT_MEMORY_MB if memory is None else memory
        mx = mem if maxmem is None else maxmem
        extra = cfg.get_string("extra") or ""
        builtin_s = cfg.get_string("builtin") if "builtin" in cfg else None
        builtin_l = None
        if builtin_s is None and "builtin" in cfg:
            cfg.warnings.clear()
            builtin_l = cfg.get_list("builtin")
        builtin = (builtin_l if builtin_l is not None else
                   [b for b in (builtin_s or "").replace(",", " ").split() if b])
        profile = cfg.get_string("profile")
        raw = {k: (s.values if s.is_list else s.values[0]) for k, s in cfg.settings.items()}
        return DomainConfig(name, mem, mx, vcpus or 1, extra, builtin, profile, source, raw)

    def _build(self, dc: DomainConfig) -> int:
        hv = self.hv
        pages_per_mb = 1 << (20 - PAGE_SHIFT)
        if dc.memory_mb <= 0 or dc.maxmem_mb < dc.memory_mb:
            self._libxl_error("libxl__domain_build_info_setdefault",
                              f"memory ({dc.memory_mb} MB) must be positive and not larger "
                              f"than maxmem ({dc.maxmem_mb} MB)", "libxl_create.c")
            return -ERROR_INVAL
        try:
            dom = hv.domain_create(dc.name, dc.memory_mb * pages_per_mb,
                                   dc.maxmem_mb * pages_per_mb, vcpus=dc.vcpus,
                                   config=dc.raw)
        except KernelError as e:
            if e.errno == errno.EEXIST:
                self.err.write(f"libxl: error: libxl_create.c:libxl__domain_make: domain with "
                               f"name \"{dc.name}\" already exists\n")
            else:
                self.err.write("xc: error: panic: xc_dom_boot.c: xc_dom_boot_mem_init: "
                               "can't allocate low memory for domain: Out of memory\n")
                self._libxl_error("libxl__build_pv", "xc_dom_boot_mem_init failed: "
                                  "Cannot allocate memory", "libxl_dom.c")
            self._libxl_error("domcreate_rebuild_done",
                              f"cannot (re-)build domain: {ERROR_FAIL}", "libxl_create.c")
            return -ERROR_FAIL
        if self.builder is not None:
            try:
                self.builder.build(dom, dc)
            except KernelError as e:
                hv.domain_destroy(dom)
                hv.next_domid = dom.domid   # nothing half-created: the id is not used up
                self._libxl_error("domcreate_rebuild_done",
                                  f"cannot (re-)build domain: {ERROR_FAIL} ({e})",
                                  "libxl_create.c")
                return -ERROR_FAIL
        hv.printk(f"domain {dom.domid} ({dom.name}) created: {dom.tot_pages} pages")
        return 0

    def cmd_destroy(self, args: list[str]) -> int:
        _, rest = self._getopt("destroy", args, "")
        if len(rest) != 1:
            self._help("destroy")
            return 2
        domid = self.find_domain(rest[0])
        if domid == 0:
            self.err.write("Cannot destroy privileged domain 0.\n\n")
            return 255
        dom = self.hv.domains.get(domid)
        if dom is None:
            self._libxl_error("libxl_domain_destroy", f"non-existant domain {domid}")
            self.err.write(f"destroy failed (rc={ERROR_FAIL})\n")
            return 255
        if self.builder is not None:
            self.builder.destroy(dom)
        self.hv.domain_destroy(dom)
        return 0

    def _state(self, dom: Domain) -> str:
        running = dom.domid == 0   # dom0 runs xl; guests sit idle between commands
        return ("r" if running else "-") + ("-" if running else "b") + "---" + \
            ("d" if dom.is_dying else "-")

    def cmd_list(self, args: list[str]) -> int:
        opts, rest = self._getopt("list", args, "lvZcn")
        doms = sorted(self.hv.domains.values(), key=lambda d: d.domid)
        if len(rest) == 1:
            domid = self.find_domain(rest[0])
            found = self.hv.domains.get(domid)
            if found is None:
                self.err.write(f"Error: Domain '{rest[0]}' does not exist.\n")
                return 1
            doms = [found]
        elif rest:
            self._help("list")
            return 1
        self.out.write("Name                                        ID   Mem VCPUs\tState\tTime(s)\n")
        for d in doms:
            # Time(s) is CPU time: an emulated guest consumes none
            self.out.write(f"{d.name:<40} {d.domid:5d} {d.current_kb // 1024:5d} {d.vcpus:5d}"
                           f"     {self._state(d)}  {0.0:8.1f}\n")
        return 0

    def cmd_info(self, args: list[str]) -> int:
        opts, rest = self._getopt("info", args, "n")
        hv = self.hv
        acc = hv.accounting()
        per_mb = 1 << (20 - PAGE_SHIFT)
        kb = 1 << (PAGE_SHIFT - 10)
        major, minor = XEN_VERSION
        lines = [
            ("host", self.hostname), ("release", self.release),
            ("version", "#1 SMP kmodemu"), ("machine", "x86_64"),
            ("nr_cpus", "1"), ("max_cpu_id", "0"), ("nr_nodes", "1"),
            ("cores_per_socket", "1"), ("threads_per_core", "1"), ("cpu_mhz", "2000"),
            ("hw_caps", ":".join(["00000000"] * 8)), ("virt_caps", ""),
            ("total_memory", str(acc.total // per_mb)),
            ("free_memory", str(acc.free // per_mb)),
            ("free_cpus", "0"),
            # kmodemu's lines (xl has none): where every frame is, exactly, in kB
            ("xen_memory_kb", str(acc.xen * kb)),
            ("domains_memory_kb", str(acc.domains * kb)),
            ("tmem_persistent_kb", str(acc.tmem_persistent * kb)),
            ("tmem_ephemeral_kb", str(acc.tmem_ephemeral * kb)),
            ("tmem_freelist_kb", str(acc.tmem_freelist * kb)),
            ("free_memory_kb", str(acc.free * kb)),
            ("xen_major", str(major)), ("xen_minor", str(minor)), ("xen_extra", XEN_EXTRA),
            ("xen_caps", "xen-3.0-x86_64 xen-3.0-x86_32p"), ("xen_scheduler", "credit"),
            ("xen_pagesize", str(1 << PAGE_SHIFT)),
            ("platform_params", "virt_start=0xffff800000000000"),
            ("xen_changeset", "unavailable"), ("xen_commandline", hv.options.cmdline),
            ("cc_compiler", "gcc"), ("cc_compile_by", "kmodemu"),
            ("cc_compile_domain", "kmodemu"), ("cc_compile_date", "unavailable"),
            ("xend_config_format", "4"),
        ]
        if rest:
            lines = [kv for kv in lines if kv[0] == rest[0]]
        for k, v in lines:
            self.out.write(f"{k:<23}: {v}\n" if v else f"{k:<23}:\n")
        return 0

    def cmd_dmesg(self, args: list[str]) -> int:
        opts, _ = self._getopt("dmesg", args, "c")
        self.out.write(self.hv.console.read(clear="c" in opts))
        return 0

    # -- tmem --------------------------------------------------------------------

    def _ctl(self, subop: int, cli_id: int, arg1: int = 0, arg2: int = 0) -> tuple[int, str | None]:
        return self.hv.tmem_control(subop, cli_id & 0xFFFF if cli_id >= 0 else CLI_ID_NULL,
                                    arg1, arg2)

    def cmd_tmem_list(self, args: list[str]) -> int:
        opts, rest = self._getopt("tmem-list", args, "al")
        domid = self._target("tmem-list", opts, rest)
        rc, buf = self._ctl(abi.TMEMC_LIST, domid, 32768, int("l" in opts))
        if rc < 0 or buf is None:
            self._libxl_error("libxl_tmem_list", "Can not get tmem list")
            return 1
        self.out.write(buf + "\n")
        return 0

    def _freeze_thaw(self, cmd: str, subop: int, what: str, func: str, args: list[str]) -> int:
        opts, rest = self._getopt(cmd, args, "a")
        domid = self._target(cmd, opts, rest)
        rc, _ = self._ctl(subop, domid)
        if rc < 0:
            self._libxl_error(func, f"Can not {what} tmem pools")
            return 1
        return 0

    def cmd_tmem_freeze(self, args: list[str]) -> int:
        return self._freeze_thaw("tmem-freeze", abi.TMEMC_FREEZE, "freeze", "libxl_tmem_freeze",
                                 args)

    def cmd_tmem_thaw(self, args: list[str]) -> int:
        return self._freeze_thaw("tmem-thaw", abi.TMEMC_THAW, "thaw", "libxl_tmem_thaw", args)

    def cmd_tmem_set(self, args: list[str]) -> int:
        opts, rest = self._getopt("tmem-set", args, "aw:c:p:")
        domid = self._target("tmem-set", opts, rest)
        if not any(k in opts for k in "wcp"):
            self.err.write("No set value specified.\n\n")
            self._help("tmem-set")
            return 1
        rc = 0
        for key, subop, name in (("w", abi.TMEMC_SET_WEIGHT, "weight"),
                                 ("c", abi.TMEMC_SET_CAP, "cap"),
                                 ("p", abi.TMEMC_SET_COMPRESS, "compress")):
            if key in opts:
                rc, _ = self._ctl(subop, domid, _strtol(opts[key]) & 0xFFFFFFFF)
                if rc < 0:
                    self._libxl_error("libxl_tmem_set", f"Can not set tmem {name}")
        return 1 if rc < 0 else 0

    def cmd_tmem_shared_auth(self, args: list[str]) -> int:
        opts, rest = self._getopt("tmem-shared-auth", args, "au:A:")
        domid = self._target("tmem-shared-auth", opts, rest)
        if "u" not in opts or "A" not in opts:
            self.err.write("No uuid or auth specified.\n\n")
            self._help("tmem-shared-auth")
            return 1
        text = opts["A"]
        if not text or not text.lstrip("+-").isdigit() or not text[-1].isdigit():
            self.err.write("Invalid auth, valid auth are <0|1>.\n\n")
            return 1
        auth = int(text)
        uuid = parse_uuid(opts["u"])
        rc = -1
        if uuid is not None:
            op = abi.TmemOp(abi.TMEM_AUTH, uuid=uuid, flags=auth,
                            arg1=domid & 0xFFFF if domid >= 0 else CLI_ID_NULL)
            rc = self.hv.tmem_op(self.hv.dom0, op)
        if rc < 0:
            self._libxl_error("libxl_tmem_shared_auth", "Can not set tmem shared auth")
            return 1
        return 0

    def cmd_tmem_freeable(self, args: list[str]) -> int:
        self._getopt("tmem-freeable", args, "")
        rc, _ = self._ctl(abi.TMEMC_QUERY_FREEABLE_MB, CLI_ID_NULL)
        if rc < 0:
            self._libxl_error("libxl_tmem_freeable", "Can not get tmem freeable memory")
            return 1
        self.out.write(f"{rc}\n")
        return 0

    def cmd_tmem_flush(self, args: list[str]) -> int:
        opts, rest = self._getopt("tmem-flush", args, "ap:")
        domid = self._target("tmem-flush", opts, rest)
        kb = _strtol(opts["p"]) if "p" in opts else self.hv.tmem.freeable_pages << (PAGE_SHIFT - 10)
        rc, _ = self._ctl(abi.TMEMC_FLUSH, domid, max(0, kb))
        if rc < 0:
            self._libxl_error("libxl_tmem_flush", "Can not flush tmem pools")
            return 1
        self.out.write(f"{rc}\n")
        return 0


def _read_host_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_CONFIG_BYTES)
