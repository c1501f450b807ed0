"""The hypervisor: host memory, domains, the console, and the hypercalls guests make.

One ``Hypervisor`` is one Xen host. It boots with a memory size and a Xen
command line, creates dom0, and serves three kinds of callers: guest kernels
(the tmem hypercall, the balloon's ``XENMEM_decrease_reservation`` and
``XENMEM_populate_physmap``), the toolstack (domain create/destroy, physinfo,
``TMEM_CONTROL``) and observers (``accounting``). Every frame is in exactly
one place — the hypervisor's own, a domain's, tmem's, or free — and
``accounting()`` proves the sum.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from ..errors import KernelError
from . import abi
from .abi import PAGE_SHIFT
from .cmdline import XenOptions, parse_cmdline
from .console import Console
from .domain import Domain
from .tmem import Tmem
from .tmem_xen import Heap

XEN_VERSION = (4, 2)
XEN_EXTRA = ".5-kmodemu"
DOM0_NAME = "Domain-0"
MIN_HOST_BYTES = 64 << 20


def default_dom0_bytes(total: int) -> int:
    """dom0's memory without ``dom0_mem``: an eighth of the host, between 64 MB and 1 GB."""
    return max(64 << 20, min(1 << 30, (total // 8) >> 20 << 20))


def xen_reserved_pages(total_pages: int) -> int:
    """The hypervisor's own frames (its heap, frame table): 1/128 of RAM, at least 4 MB."""
    return max(1024, total_pages // 128)


@dataclass
class Accounting:
    """Where every host frame is, in pages."""

    total: int
    xen: int
    domains: int
    tmem_persistent: int   # inside ``domains``: billed to their owners
    tmem_ephemeral: int
    tmem_freelist: int
    free: int

    @property
    def balanced(self) -> bool:
        return self.total == self.xen + self.domains + self.tmem_ephemeral + self.tmem_freelist + self.free


class Hypervisor:
    """An emulated Xen host with tmem."""

    def __init__(self, mem_bytes: int, cmdline: str = "", *, hostname: str = "xenhost"):
        if mem_bytes < MIN_HOST_BYTES:
            raise KernelError(errno.EINVAL, f"a Xen host needs at least {MIN_HOST_BYTES >> 20} MB")
        self.options: XenOptions = parse_cmdline(cmdline)
        self.hostname = hostname
        self.console = Console()
        total_pages = mem_bytes >> PAGE_SHIFT
        self.heap = Heap(total_pages, xen_reserved_pages(total_pages))
        o = self.options
        self.tmem = Tmem(self.heap, self.printk, enabled=o.tmem, compress=o.tmem_compress,
                         dedup=o.tmem_dedup, tze=o.tmem_tze, shared_auth=o.tmem_shared_auth,
                         lock=o.tmem_lock)
        self.domains: dict[int, Domain] = {}
        self.next_domid = 1
        self.clock: Any = None  # set by a host that owns a virtual clock
        self._boot()

    def printk(self, text: str) -> None:
        self.console.printk(text)

    def _boot(self) -> None:
        major, minor = XEN_VERSION
        self.printk(f"Xen version {major}.{minor}{XEN_EXTRA} (kmodemu) (gcc) debug=n")
        self.printk(f"Command line: {self.options.cmdline}")
        mb = self.heap.total_pages >> (20 - PAGE_SHIFT)
        self.printk(f"System RAM: {mb}MB ({self.heap.total_pages << (PAGE_SHIFT - 10)}kB)")
        self.tmem.init()
        dom0_bytes = self.options.dom0_mem or default_dom0_bytes(self.heap.total_pages << PAGE_SHIFT)
        dom0_pages = min(dom0_bytes >> PAGE_SHIFT, self.heap.free_pages - 256)
        if dom0_pages <= 0:
            raise KernelError(errno.ENOMEM, "no memory left for dom0")
        self.heap.free_pages -= dom0_pages
        dom0 = Domain(0, DOM0_NAME, dom0_pages, dom0_pages)
        self.domains[0] = dom0
        self.printk(f"*** LOADING DOMAIN 0 ***")
        self.printk(f"Dom0 has maximum {dom0_pages} pages "
                    f"({dom0_pages << (PAGE_SHIFT - 10)}kB)")
        self.printk("Scrubbing Free RAM: done.")

    # -- domains ---------------------------------------------------------------

    @property
    def dom0(self) -> Domain:
        return self.domains[0]

    def domain_by_name(self, name: str) -> Domain | None:
        for d in self.domains.values():
            if d.name == name:
                return d
        return None

    def available_pages(self) -> int:
        """Frames a new allocation can get: free ones plus what tmem can relinquish."""
        return self.heap.free_pages + (self.tmem.freeable_pages if self.tmem.initialized else 0)

    def _alloc_frames(self, n: int) -> int:
        """Take up to n frames from the heap, then from tmem; returns how many."""
        heap = self.heap
        got = min(n, heap.free_pages)
        heap.free_pages -= got
        if got < n and self.tmem.initialized:
            got += self.tmem.relinquish(n - got)
        return got

    def domain_create(self, name: str, mem_pages: int, max_pages: int, *, vcpus: int = 1,
                      config: dict[str, Any] | None = None) -> Domain:
        """Build a domain with ``mem_pages`` frames; nothing changes if that fails."""
        if self.domain_by_name(name) is not None:
            raise KernelError(errno.EEXIST, f"domain with name \"{name}\" already exists")
        if mem_pages <= 0 or max_pages < mem_pages:
            raise KernelError(errno.EINVAL, "invalid memory size")
        if mem_pages > self.available_pages():
            raise KernelError(errno.ENOMEM, "not enough free memory for the domain")
        got = self._alloc_frames(mem_pages)
        if got < mem_pages:
            self.heap.free_pages += got
            raise KernelError(errno.ENOMEM, "not enough free memory for the domain")
        domid = self.next_domid
        self.next_domid += 1
        dom = Domain(domid, name, got, max_pages, vcpus=vcpus, config=config,
                     created_at=self.now())
        self.domains[domid] = dom
        return dom

    def domain_kill(self, dom: Domain) -> None:
        """``domain_kill``: the domain is dying; its hypercalls fail from now on."""
        dom.is_dying = True

    def domain_destroy(self, dom: Domain) -> None:
        """Flush its tmem and give every frame back to the heap."""
        if dom.domid == 0:
            raise KernelError(errno.EPERM, "cannot destroy domain 0")
        self.domain_kill(dom)
        if self.tmem.initialized:
            self.tmem.destroy_client(dom)
        self.heap.free_pages += dom.tot_pages
        dom.tot_pages = 0
        del self.domains[dom.domid]

    def now(self) -> float:
        return float(self.clock.ns) / 1e9 if self.clock is not None else 0.0

    # -- hypercalls from guests ---------------------------------------------------

    def tmem_op(self, dom: Domain, op: abi.TmemOp) -> int:
        """Hypercall 38 with a ``struct tmem_op``."""
        return self.tmem.do_tmem_op(dom, op)

    def decrease_reservation(self, dom: Domain, nr: int) -> int:
        """``XENMEM_decrease_reservation``: the balloon hands frames back; returns how many."""
        if dom.is_dying:
            return -errno.ESRCH
        n = max(0, min(nr, dom.ram_pages))
        dom.tot_pages -= n
        self.heap.free_pages += n
        return n

    def populate_physmap(self, dom: Domain, nr: int) -> int:
        """``XENMEM_populate_physmap``: the balloon asks frames back, up to ``max_pages``."""
        if dom.is_dying:
            return -errno.ESRCH
        n = max(0, min(nr, dom.max_pages - dom.tot_pages))
        got = self._alloc_frames(n)
        dom.tot_pages += got
        return got

    def set_max_pages(self, dom: Domain, max_pages: int) -> None:
        """``XEN_DOMCTL_max_mem`` (``xl mem-max``)."""
        dom.max_pages = max_pages

    # -- observers -----------------------------------------------------------------

    def accounting(self) -> Accounting:
        doms = sum(d.tot_pages for d in self.domains.values())
        pers = sum(d.tmem_pages for d in self.domains.values())
        return Accounting(self.heap.total_pages, self.heap.xen_pages, doms, pers,
                          self.tmem.eph_frames, self.tmem.freelist, self.heap.free_pages)

    def tmem_control(self, subop: int, cli_id: int = abi.CLI_ID_NULL, arg1: int = 0,
                     arg2: int = 0) -> tuple[int, str | None]:
        """``xc_tmem_control`` from dom0: the return value and, for a list, the text."""
        op = abi.TmemOp(abi.TMEM_CONTROL, subop=subop, cli_id=cli_id, arg1=arg1, arg2=arg2)
        rc = self.tmem.do_tmem_op(self.dom0, op)
        return rc, op.buf
