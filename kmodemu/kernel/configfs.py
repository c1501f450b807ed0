"""configfs: kernel objects that user space creates with mkdir and configures with writes.

Mounted at /sys/kernel/config (CONFIGFS_FS=y, as RAMster's howto requires).
A subsystem registers a root group; each group may let user space ``mkdir``
children (``make_group``/``make_item``), has attribute files whose ``store``
validates like the kernel's, and default groups that exist with it and cannot
be removed. ``rmdir`` calls the parent's ``drop_item``; it fails with EBUSY
while something pinned the item (``configfs_depend_item``) and with ENOTEMPTY
while user-made children remain. The attribute files and directories are
ordinary entries of the kernel's pseudo filesystem, so ``cat``, ``ls`` and
``write`` reach them like any sysfs file.
"""

from __future__ import annotations

import errno
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from kmodemu.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.kernel.vfs import PseudoFS

CONFIGFS_ROOT = "/sys/kernel/config"


@dataclass
class ConfigAttribute:
    """One attribute file: ``show() -> text``; ``store(text)`` raises KernelError to refuse."""

    name: str
    show: Callable[[], str] | None
    store: Callable[[str], None] | None = None
    mode: int = 0o644


@dataclass(eq=False)
class ConfigGroup:
    """A configfs directory (a ``config_group``, or a plain ``config_item`` if ``item``)."""

    name: str
    attrs: list[ConfigAttribute] = field(default_factory=list)
    make_group: Optional[Callable[[str], "ConfigGroup"]] = None
    drop_item: Optional[Callable[["ConfigGroup"], None]] = None
    default_groups: list["ConfigGroup"] = field(default_factory=list)
    #: how many pins (``configfs_depend_item``) hold this item; rmdir is EBUSY while > 0
    dependents: Callable[[], int] = lambda: 0
    item: bool = False
    data: object = None
    children: dict[str, "ConfigGroup"] = field(default_factory=dict)
    parent: Optional["ConfigGroup"] = None
    is_default: bool = False


class ConfigFS:
    """The configfs mount of one kernel."""

    def __init__(self, vfs: "PseudoFS", root: str = CONFIGFS_ROOT):
        self.vfs = vfs
        self.root = root
        self.subsystems: dict[str, ConfigGroup] = {}
        vfs.mkdir(root)

    # -- subsystems ------------------------------------------------------------
    def register_subsystem(self, group: ConfigGroup) -> int:
        if group.name in self.subsystems:
            return -errno.EEXIST
        group.is_default = True  # the subsystem's own directory cannot be removed
        self.subsystems[group.name] = group
        self._publish(f"{self.root}/{group.name}", group)
        return 0

    def unregister_subsystem(self, group: ConfigGroup) -> None:
        if self.subsystems.get(group.name) is group:
            del self.subsystems[group.name]
            self.vfs.remove(f"{self.root}/{group.name}")

    # -- paths -----------------------------------------------------------------
    def owns(self, path: str) -> bool:
        p = posixpath.normpath("/" + path.lstrip("/"))
        return p == self.root or p.startswith(self.root + "/")

    def _lookup(self, path: str) -> ConfigGroup | None:
        p = posixpath.normpath("/" + path.lstrip("/"))
        if not p.startswith(self.root + "/"):
            return None
        parts = p[len(self.root) + 1:].split("/")
        group = self.subsystems.get(parts[0])
        for part in parts[1:]:
            if group is None:
                return None
            group = group.children.get(part)
        return group

    def mkdir(self, path: str) -> None:
        """``mkdir`` under the mount: the parent group's ``make_group`` builds the child."""
        p = posixpath.normpath("/" + path.lstrip("/"))
        parent_path, name = posixpath.split(p)
        if p == self.root or parent_path == self.root:
            if self.exists(p):
                raise KernelError(errno.EEXIST)
            raise KernelError(errno.EPERM)  # no new subsystems from user space
        parent = self._lookup(parent_path)
        if parent is None:
            raise KernelError(errno.ENOTDIR if self.vfs.exists(parent_path) else errno.ENOENT)
        if name in parent.children or self.vfs.exists(p):
            raise KernelError(errno.EEXIST)
        if parent.item or parent.make_group is None:
            raise KernelError(errno.EPERM)
        child = parent.make_group(name)  # raises KernelError to refuse
        child.name = name
        child.parent = parent
        parent.children[name] = child
        self._publish(p, child)

    def rmdir(self, path: str) -> None:
        """``rmdir``: drop a user-made item through its parent's ``drop_item``."""
        p = posixpath.normpath("/" + path.lstrip("/"))
        group = self._lookup(p)
        if group is None:
            if self.vfs.exists(p):
                raise KernelError(errno.ENOTDIR if not self.vfs.is_dir(p) else errno.EPERM)
            raise KernelError(errno.ENOENT)
        if group.is_default or group.parent is None:
            raise KernelError(errno.EPERM)
        if any(not c.is_default or self._has_user_children(c) for c in group.children.values()):
            raise KernelError(errno.ENOTEMPTY)
        if group.dependents() > 0:
            raise KernelError(errno.EBUSY)
        parent = group.parent
        if parent.drop_item is not None:
            parent.drop_item(group)
        del parent.children[group.name]
        self.vfs.remove(p)

    def _has_user_children(self, group: ConfigGroup) -> bool:
        return any(not c.is_default or self._has_user_children(c)
                   for c in group.children.values())

    def exists(self, path: str) -> bool:
        return self.vfs.exists(path)

    # -- publishing into the pseudo filesystem ---------------------------------
    def _publish(self, path: str, group: ConfigGroup) -> None:
        self.vfs.mkdir(path)
        for attr in group.attrs:
            self.vfs.add_file(f"{path}/{attr.name}", attr.show,
                              self._writer(attr) if attr.store else None, attr.mode)
        for dg in group.default_groups:
            dg.is_default = True
            dg.parent = group
            group.children[dg.name] = dg
            self._publish(f"{path}/{dg.name}", dg)

    @staticmethod
    def _writer(attr: ConfigAttribute) -> Callable[[str], None]:
        store = attr.store
        assert store is not None

        def write(text: str) -> None:
            store(text)
        return write
