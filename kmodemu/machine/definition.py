"""What a machine is made of, before it boots: the data a scenario's header holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from kmodemu.kernel.cmdline import memparse
from kmodemu.kernel.profiles import DEFAULT_PROFILE, get_profile


CLOCKS = ("virtual", "real")


@dataclass
class MachineDef:
    """Kernel profile, command line, RAM, built-in modules and where modules come from.

    ``mem`` is the RAM size (``memparse`` syntax, like ``mem=``); a ``mem=`` on
    the command line overrides it, as on real hardware. ``root`` names an
    existing directory to use as the machine's disk (a module tree to test
    against); by default the machine gets its own.
    """

    cmdline: str = ""
    profile: str = DEFAULT_PROFILE
    release: str | None = None
    mem: str = "256M"
    builtin: list[str] = field(default_factory=list)
    module_path: list[str] = field(default_factory=list)
    root: str | None = None
    seed: int = 0
    #: "virtual" (time passes only with commands: deterministic) or "real" (a running
    #: machine process follows wall time; what passed is journaled)
    clock: str = "virtual"
    #: a Xen host (``boot --xen``): ``mem`` is the host's RAM, the kernel is dom0 with its
    #: share, ``xen_cmdline`` the hypervisor's boot options (docs/xen.md)
    xen: bool = False
    xen_cmdline: str = ""

    def validate(self) -> "MachineDef":
        get_profile(self.profile)
        size = memparse(self.mem)
        if self.clock not in CLOCKS:
            raise ValueError(f"unknown clock {self.clock!r} (virtual or real)")
        from kmodemu.kernel.kernel import MAX_MEM, MIN_MEM
        if size < MIN_MEM:
            raise ValueError(f"mem {self.mem}: below the {MIN_MEM >> 20}M a kmodemu kernel needs to boot")
        if self.xen:
            from kmodemu.xen.hypervisor import MIN_HOST_BYTES
            if size < MIN_HOST_BYTES:
                raise ValueError(f"mem {self.mem}: a Xen host needs at least "
                                 f"{MIN_HOST_BYTES >> 20}M")
        elif self.xen_cmdline:
            raise ValueError("xen_cmdline (--xen-cmdline) is for a Xen host (--xen)")
        if size > MAX_MEM:
            raise ValueError(f"mem {self.mem}: above the {MAX_MEM >> 40}T an x86-64 kernel addresses "
                             "(MAX_PHYSMEM_BITS 46)")
        return self

    @property
    def mem_bytes(self) -> int:
        return memparse(self.mem)

    def to_dict(self) -> dict:
        data = asdict(self)
        if data["clock"] == "virtual":  # images of older kmodemu stay byte-identical
            del data["clock"]
        if not data["xen"]:
            del data["xen"], data["xen_cmdline"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "MachineDef":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown machine field(s): {', '.join(sorted(unknown))}")
        return cls(**data).validate()
