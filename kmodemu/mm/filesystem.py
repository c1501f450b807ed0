"""Block devices, filesystem types, superblocks, inodes and the mount table.

Which types use cleancache follows Linux 3.10: ext3, ext4 and btrfs call
``cleancache_init_fs`` at mount, ocfs2 calls ``cleancache_init_shared_fs``
with its uuid; xfs, tmpfs, proc and the others never do (their superblocks
keep pool id -1). As a kmodemu convenience, ``-o uuid=…`` on a private
cleancache type mounts it as a shared (clustered) one.

Files on a block device survive umount (the device keeps its inodes); the
page cache of a superblock does not. tmpfs and the root filesystem keep their
pages in RAM only (unevictable here).
"""

from __future__ import annotations

import errno
import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from kmodemu.errors import KernelError
from kmodemu.mm.limits import check_path, check_size
from kmodemu.mm.cleancache import FILEKEY_SIZE, ino_filekey
from kmodemu.mm.corpus import Content
from kmodemu.mm.page import PAGE_SIZE

if TYPE_CHECKING:  # pragma: no cover
    from kmodemu.mm.memory import MemoryManager
    from kmodemu.mm.pagecache import CachedPage

BLOCKDEV_RE = re.compile(r"/dev/((sd|vd|xvd|hd)[a-z]{1,2}[0-9]*|nvme[0-9]+n[0-9]+(p[0-9]+)?"
                         r"|loop[0-9]+|zram[0-9]+|mmcblk[0-9]+(p[0-9]+)?)")
ROOT_DIRS = ("/mnt", "/media", "/home", "/srv", "/tmp", "/var", "/data", "/opt", "/dev",
             "/proc", "/sys")
BTRFS_FS_TREE_OBJECTID = 5


def _btrfs_fh(inode: "Inode") -> bytes | None:
    """btrfs's non-connectable handle: objectid, root objectid, generation (5 words)."""
    return (inode.ino.to_bytes(8, "little") + BTRFS_FS_TREE_OBJECTID.to_bytes(8, "little")
            + inode.generation.to_bytes(4, "little") + bytes(4))


def _ocfs2_fh(inode: "Inode") -> bytes | None:
    """ocfs2's handle without a parent: block number (hi, lo) and generation (3 words)."""
    blkno = inode.ino
    return ((blkno >> 32).to_bytes(4, "little") + (blkno & 0xFFFFFFFF).to_bytes(4, "little")
            + inode.generation.to_bytes(4, "little") + bytes(FILEKEY_SIZE - 12))


@dataclass(frozen=True)
class FsType:
    """A filesystem type: whether it needs a device and how it uses cleancache."""

    name: str
    cleancache: str | None = None      # "private", "shared" or None
    nodev: bool = False
    encode_fh: Callable[["Inode"], bytes | None] | None = None
    in_ram: bool = False               # pages live only in RAM (tmpfs, ramfs, rootfs)


FS_TYPES = {t.name: t for t in (
    FsType("ext4", "private"), FsType("ext3", "private"), FsType("ext2"),
    FsType("btrfs", "private", encode_fh=_btrfs_fh), FsType("xfs"), FsType("vfat"),
    FsType("ocfs2", "shared", encode_fh=_ocfs2_fh),
    FsType("tmpfs", nodev=True, in_ram=True), FsType("ramfs", nodev=True, in_ram=True),
    FsType("proc", nodev=True), FsType("sysfs", nodev=True), FsType("devtmpfs", nodev=True),
    FsType("rootfs", nodev=True, in_ram=True),
)}


def abspath(path: str) -> str:
    """An absolute, normalised path ("//mnt" and "mnt" both become "/mnt")."""
    return posixpath.normpath("/" + path.lstrip("/"))


def parse_uuid(text: str) -> bytes:
    hexdigits = text.replace("-", "")
    if not re.fullmatch(r"[0-9a-fA-F]{32}", hexdigits):
        raise ValueError(f"bad uuid {text!r}")
    return bytes.fromhex(hexdigits)


def format_uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Inode:
    """A file: contents (a generator up to ``data_size``, zeros beyond) and its page cache."""

    __slots__ = ("ino", "sb", "path", "size", "data_size", "content", "generation",
                 "cleancache_key", "pages", "in_icache")

    def __init__(self, ino: int, path: str, size: int, content: Content, generation: int):
        self.ino = ino
        self.sb: Superblock | None = None
        self.path = path
        self.size = size
        self.data_size = size
        self.content = content
        self.generation = generation
        self.cleancache_key: bytes | None = None
        self.pages: dict[int, "CachedPage"] = {}
        self.in_icache = False

    @property
    def nr_pages(self) -> int:
        return (self.size + PAGE_SIZE - 1) // PAGE_SIZE

    def disk_page(self, index: int) -> bytes:
        """What the device holds for page ``index`` (also what a correct read returns)."""
        start = index * PAGE_SIZE
        if start >= self.data_size:
            return bytes(PAGE_SIZE)
        data = self.content.page(index)
        if start + PAGE_SIZE > self.data_size:
            keep = self.data_size - start
            data = data[:keep] + bytes(PAGE_SIZE - keep)
        return data

    def attach(self, sb: "Superblock") -> None:
        self.sb = sb
        enc = sb.fstype.encode_fh
        self.cleancache_key = enc(self) if enc is not None else ino_filekey(self.ino)
        if self.cleancache_key is not None and len(self.cleancache_key) != FILEKEY_SIZE:
            self.cleancache_key = None  # the handle does not fit in a filekey


class BlockDevice:
    """A disk partition: its filesystem (type, uuid, files, directories) survives umount."""

    def __init__(self, path: str):
        self.path = path
        self.fstype: str | None = None
        self.uuid: bytes | None = None
        self.files: dict[str, Inode] = {}
        self.dirs: set[str] = {"/"}
        self.next_ino = 12
        self.reads = 0
        self.swap_size: int | None = None   # set by mkswap (pages)
        self.user: str | None = None         # "mount" or "swap" while in use


class Superblock:
    """A mounted filesystem. ``cleancache_poolid`` starts at -1, as ``alloc_super`` sets it."""

    def __init__(self, fstype: FsType, source: str, mountpoint: str, device: BlockDevice,
                 options: str, uuid: bytes | None):
        self.fstype = fstype
        self.source = source
        self.mountpoint = mountpoint
        self.device = device
        self.options = options
        self.uuid = uuid
        self.cleancache_poolid = -1
        #: the superblock this mount shows (itself for a first mount: see SharedMount)
        self.primary: Superblock = self
        #: s_active of fs/super.c: mounts of this superblock still alive
        self.s_active = 1

    @property
    def name(self) -> str:
        return f"{self.source} on {self.mountpoint} type {self.fstype.name}"

    @property
    def read_only(self) -> bool:
        return "ro" in self.options.split(",")


class SharedMount(Superblock):
    """A further mount of a mounted block device: mount_bdev's sget found the live superblock.

    Linux gives the new vfsmount the same super_block (no second fill_super,
    so no second cleancache_init_fs); here the mount record delegates the
    superblock's state to the first mount's object, which the inodes keep.
    """

    def __init__(self, primary: Superblock, source: str, mountpoint: str, options: str):
        super().__init__(primary.fstype, source, mountpoint, primary.device, options, primary.uuid)
        self.primary = primary

    @property  # type: ignore[override]
    def cleancache_poolid(self) -> int:
        return self.primary.cleancache_poolid

    @cleancache_poolid.setter
    def cleancache_poolid(self, value: int) -> None:
        primary = self.__dict__.get("primary")  # unset while Superblock.__init__ runs
        if primary is not None and primary is not self:
            primary.cleancache_poolid = value


class Filesystems:
    """Block devices, the mount table and path lookup for one kernel."""

    def __init__(self, mm: "MemoryManager"):
        self.mm = mm
        self.devices: dict[str, BlockDevice] = {}
        root_dev = BlockDevice("rootfs")
        root_dev.dirs.update(ROOT_DIRS)
        root_dev.fstype = "rootfs"
        self.root = Superblock(FS_TYPES["rootfs"], "rootfs", "/", root_dev, "rw", None)
        self.mounts: list[Superblock] = [self.root]
        self.disk_reads = 0

    # -- devices --------------------------------------------------------------------
    def blockdev(self, path: str) -> BlockDevice | None:
        """The block device at ``path`` (any disk-like /dev name exists), or None."""
        if path in self.devices:
            return self.devices[path]
        if not BLOCKDEV_RE.fullmatch(path):
            return None
        dev = self.devices[path] = BlockDevice(path)
        return dev

    # -- lookup ---------------------------------------------------------------------
    def resolve(self, path: str) -> tuple[Superblock, str]:
        """The mount holding ``path`` and the path inside it."""
        check_path(path)
        path = abspath(path)
        best = self.root
        for sb in self.mounts:
            mp = sb.mountpoint
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best.mountpoint):
                best = sb
        rel = "/" + path[len(best.mountpoint):].lstrip("/") if best.mountpoint != "/" else path
        return best, abspath(rel)

    def is_dir(self, path: str) -> bool:
        sb, rel = self.resolve(path)
        return rel in sb.device.dirs

    def mkdir(self, path: str, parents: bool = False) -> None:
        sb, rel = self.resolve(path)
        dev = sb.device
        if rel in dev.dirs:
            if parents:
                return
            raise KernelError(errno.EEXIST)
        if rel in dev.files:
            raise KernelError(errno.EEXIST)
        missing = _missing_dirs(dev, rel)
        if len(missing) > 1 and not parents:
            raise KernelError(errno.ENOENT)
        dev.dirs.update(missing)

    def lookup(self, path: str) -> Inode:
        sb, rel = self.resolve(path)
        inode = sb.device.files.get(rel)
        if inode is None:
            raise KernelError(errno.EISDIR if rel in sb.device.dirs else errno.ENOENT)
        inode.in_icache = True
        return inode

    def list_files(self) -> list[Inode]:
        out: list[Inode] = []
        for sb in self.mounts:
            out.extend(sb.device.files.values())
        return out

    # -- files ----------------------------------------------------------------------
    def create(self, path: str, size: int, content: Content) -> Inode:
        """A new file with its contents on the device (as if written and synced earlier).

        On tmpfs and the root filesystem the pages go straight into RAM.
        """
        sb, rel = self.resolve(path)
        dev = sb.device
        if rel in dev.dirs:
            raise KernelError(errno.EISDIR)
        missing = _missing_dirs(dev, posixpath.dirname(rel))
        others = sum(i.size for r, i in dev.files.items() if r != rel)
        check_size(sb.fstype.name, sb.fstype.in_ram, size, others, self.mm.kernel.mem_bytes)
        dev.dirs.update(missing)
        if rel in dev.files:
            self.unlink(path)
        gen = self.mm.kernel.rng.getrandbits(32)
        inode = Inode(dev.next_ino, path, size, content, gen)
        dev.next_ino += 1
        inode.attach(sb)
        inode.in_icache = True
        dev.files[rel] = inode
        if sb.fstype.in_ram:
            self.mm.pagecache.populate_in_ram(inode)
        return inode

    def unlink(self, path: str) -> None:
        sb, rel = self.resolve(path)
        inode = sb.device.files.get(rel)
        if inode is None:
            raise KernelError(errno.EISDIR if rel in sb.device.dirs else errno.ENOENT)
        self.mm.pagecache.truncate(inode, 0)
        del sb.device.files[rel]

    def truncate(self, path: str, size: int) -> None:
        inode = self.lookup(path)
        sb, rel = self.resolve(path)
        others = sum(i.size for r, i in sb.device.files.items() if r != rel)
        check_size(sb.fstype.name, sb.fstype.in_ram, size, others, self.mm.kernel.mem_bytes)
        self.mm.pagecache.truncate(inode, size)

    # -- mkfs -----------------------------------------------------------------------
    def mkfs(self, path: str, fstype: str) -> BlockDevice:
        """What ``mkfs.TYPE`` leaves on a device: an empty filesystem with a new uuid.

        Errors: ENOENT (no such device), EBUSY (mounted), ETXTBSY (an active swap
        area: "in use by the system"), ENODEV (a type with no on-disk format).
        """
        ftype = FS_TYPES.get(fstype)
        if ftype is None or ftype.nodev:
            raise KernelError(errno.ENODEV, f"no mkfs for '{fstype}'")
        dev = self.blockdev(path)
        if dev is None:
            raise KernelError(errno.ENOENT)
        if dev.user == "mount":
            raise KernelError(errno.EBUSY)
        if dev.user is not None:
            raise KernelError(errno.ETXTBSY)
        dev.fstype = ftype.name
        dev.uuid = self.mm.kernel.rng.randbytes(16)
        dev.files.clear()
        dev.dirs = {"/"}
        dev.next_ino = 12
        dev.swap_size = None
        return dev

    # -- mount ----------------------------------------------------------------------
    def mount(self, source: str, target: str, fstype: str | None = None, options: str = "") -> Superblock:
        """``mount(2)``: errors carry the errno the syscall returns."""
        target = abspath(target)
        if not self.is_dir(target):
            raise KernelError(errno.ENOENT, "mount point does not exist")
        ftype = FS_TYPES.get(fstype) if fstype else None
        if fstype and ftype is None:
            raise KernelError(errno.ENODEV, f"unknown filesystem type '{fstype}'")
        opts = [o for o in options.split(",") if o]
        uuid: bytes | None = None
        for o in opts:
            if o.startswith("uuid="):
                try:
                    uuid = parse_uuid(o[5:])
                except ValueError:
                    raise KernelError(errno.EINVAL, "bad option") from None
        dev: BlockDevice | None
        if ftype is not None and ftype.nodev:
            dev = BlockDevice(source)
            dev.fstype = ftype.name
        else:
            dev = self.blockdev(source)
            if dev is None:
                raise KernelError(errno.ENOTBLK, f"special device {source} does not exist")
            if dev.user == "mount":
                return self._mount_again(dev, source, target, ftype, opts)
            if dev.user is not None:
                raise KernelError(errno.EBUSY, "already mounted or mount point busy")
            if ftype is None:
                if dev.fstype is None:
                    raise KernelError(errno.EINVAL, "wrong fs type")
                ftype = FS_TYPES[dev.fstype]
            if dev.swap_size is not None or (dev.fstype is not None and dev.fstype != ftype.name):
                raise KernelError(errno.EINVAL, "wrong fs type")
            dev.fstype = ftype.name  # kmodemu formats a fresh device at its first mount
        if any(sb.mountpoint == target for sb in self.mounts) and target != "/":
            raise KernelError(errno.EBUSY, "already mounted or mount point busy")
        if target == "/":
            raise KernelError(errno.EBUSY, "already mounted or mount point busy")
        if ftype.cleancache == "shared" and uuid is None:
            if dev.uuid is None:
                dev.uuid = self.mm.kernel.rng.randbytes(16)
            uuid = dev.uuid
        sb = Superblock(ftype, source, target, dev, ",".join(opts) or "rw", uuid)
        dev.user = None if ftype.nodev else "mount"
        for inode in dev.files.values():
            inode.attach(sb)
            inode.in_icache = False
        cc = self.mm.cleancache
        # a shared fs always has a uuid by now; a private one with a uuid is shared too (3.10)
        if uuid is not None and ftype.cleancache in ("shared", "private"):
            cc.init_shared_fs(uuid, sb)
        elif ftype.cleancache == "private" and not (ftype.name == "ext3" and sb.read_only):
            # ext3_setup_super returns before cleancache_init_fs on a read-only
            # mount (fs/ext3/super.c); ext4_setup_super's read-only exit still
            # reaches it, and btrfs calls it unconditionally
            cc.init_fs(sb)
        self.mounts.append(sb)
        self.mm.kernel.clock.advance_us(2000)
        self.mm.event("kmodemu_mm_mount", sb=sb)
        return sb

    def _mount_again(self, dev: BlockDevice, source: str, target: str, ftype: FsType | None,
                     opts: list[str]) -> Superblock:
        """mount_bdev on a device whose superblock is live: sget returns it (fs/super.c).

        Another filesystem type cannot claim the device (blkdev_get's exclusive
        holder is the first type) and a read-only/read-write mismatch is
        refused, both EBUSY; otherwise the new mount shares the superblock.
        """
        live = next(sb.primary for sb in self.mounts if sb.device is dev)
        options = ",".join(opts) or "rw"
        if ftype is not None and ftype is not live.fstype:
            raise KernelError(errno.EBUSY, "already mounted or mount point busy")
        if ("ro" in opts) != live.read_only:
            raise KernelError(errno.EBUSY, "already mounted or mount point busy")
        if target == "/" or any(sb.mountpoint == target for sb in self.mounts):
            raise KernelError(errno.EBUSY, "already mounted or mount point busy")
        sb = SharedMount(live, source, target, options)
        live.s_active += 1
        self.mounts.append(sb)
        self.mm.kernel.clock.advance_us(2000)
        self.mm.event("kmodemu_mm_mount", sb=sb)
        return sb

    def find_mount(self, what: str) -> Superblock | None:
        """The most recent mount whose target or source is ``what``."""
        norm = abspath(what) if what.startswith("/") else what
        for sb in reversed(self.mounts[1:]):
            if sb.mountpoint == norm or sb.source == what:
                return sb
        return None

    def umount(self, what: str) -> Superblock:
        """``umount(2)``; the last mount of a superblock runs ``cleancache_invalidate_fs``, then eviction."""
        sb = self.find_mount(what)
        if sb is None:
            raise KernelError(errno.EINVAL, "not mounted")
        prefix = sb.mountpoint.rstrip("/") + "/"
        if any(o.mountpoint.startswith(prefix) for o in self.mounts if o is not sb):
            raise KernelError(errno.EBUSY, "target is busy")
        self.mounts.remove(sb)
        live = sb.primary
        live.s_active -= 1
        if live.s_active == 0:
            # deactivate_locked_super (fs/super.c): cleancache_invalidate_fs
            # runs before kill_sb, so the pool id is already -1 when eviction
            # drops the page cache and no page reaches the backend
            self.mm.cleancache.invalidate_fs(live)
            pc = self.mm.pagecache
            for inode in list(sb.device.files.values()):
                if inode.in_icache or inode.pages:
                    pc.evict_inode(inode)
                inode.in_icache = False
            if sb.fstype.in_ram:
                sb.device.files.clear()
            sb.device.user = None
        self.mm.kernel.clock.advance_us(1000)
        self.mm.event("kmodemu_mm_umount", sb=sb)
        return sb

    def proc_mounts(self) -> str:
        return "".join(f"{_mangle(sb.source)} {_mangle(sb.mountpoint)} {sb.fstype.name} "
                       f"{_mangle(sb.options)} 0 0\n" for sb in self.mounts)


def _mangle(text: str) -> str:
    """``mangle()`` of fs/proc_namespace.c: space, tab, newline and backslash as octal escapes."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in text)


def _missing_dirs(dev: BlockDevice, rel: str) -> list[str]:
    """The directories ``rel`` needs that do not exist yet (outermost first); ENOTDIR on a file."""
    missing: list[str] = []
    d = rel
    while d not in dev.dirs:
        if d in dev.files:
            raise KernelError(errno.ENOTDIR)
        missing.append(d)
        d = posixpath.dirname(d)
    return missing[::-1]
