"""A domain as the hypervisor sees it (``struct domain``): id, name, frames, limits.

``tot_pages`` counts every frame the domain owns — its RAM plus the tmem
persistent frames billed to it (``tmem_pages``); ``max_pages`` is the ceiling
``maxmem`` sets, which a balloon increase and a persistent put both hit. The
guest kernel, when there is one, is attached as ``kernel`` by the host; the
hypervisor never looks inside it.
"""

from __future__ import annotations

from typing import Any, Callable

from .abi import PAGE_SHIFT


class Domain:
    __slots__ = ("domid", "name", "tot_pages", "max_pages", "tmem_pages", "is_dying",
                 "is_privileged", "tmem", "kernel", "config", "vcpus", "created_at",
                 "fail_hypervisor")

    def __init__(self, domid: int, name: str, tot_pages: int, max_pages: int, *,
                 vcpus: int = 1, config: dict[str, Any] | None = None, created_at: float = 0.0):
        self.domid = domid
        self.name = name
        self.tot_pages = tot_pages
        self.max_pages = max_pages
        self.tmem_pages = 0
        self.is_dying = False
        self.is_privileged = domid == 0
        self.tmem: Any = None  # the tmem client, created on the first tmem hypercall
        self.kernel: Any = None
        self.config = dict(config or {})
        self.vcpus = vcpus
        self.created_at = created_at
        #: the fail_hypervisor fault point's ``should_fail`` (the guest kernel's, set by
        #: platform.attach): tmem's allocations for this domain's puts consult it
        self.fail_hypervisor: Callable[[int], bool] | None = None

    @property
    def current_kb(self) -> int:
        return self.tot_pages << (PAGE_SHIFT - 10)

    @property
    def ram_pages(self) -> int:
        """Frames the guest kernel can use: all it owns minus tmem's persistent frames."""
        return self.tot_pages - self.tmem_pages

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Domain {self.domid} {self.name} {self.tot_pages}/{self.max_pages}>"
