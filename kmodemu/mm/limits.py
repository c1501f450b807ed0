"""The kernel's size and name limits for the emulated filesystems (limits.h, s_maxbytes).

Linux refuses a name longer than NAME_MAX or a path longer than PATH_MAX with
ENAMETOOLONG, a file past the filesystem's ``s_maxbytes`` with EFBIG, and
blocks past the device's capacity with ENOSPC. kmodemu's disks have no size of
their own, so each partition is given ``DEVICE_BYTES`` (a kmodemu choice, see
docs/reliability.md); in-RAM filesystems (tmpfs, rootfs) get tmpfs's default of
half the RAM.
"""

from __future__ import annotations

import errno

from kmodemu.errors import KernelError

NAME_MAX = 255
PATH_MAX = 4096
#: the capacity of every emulated partition: 8 GiB
DEVICE_BYTES = 8 << 30
#: MAX_LFS_FILESIZE on 64-bit
MAX_LFS_FILESIZE = (1 << 63) - 1
#: s_maxbytes with 4 KiB blocks
MAX_BYTES = {"ext4": 16 << 40, "ext3": 2 << 40, "ext2": 2 << 40, "vfat": (4 << 30) - 1,
             "btrfs": MAX_LFS_FILESIZE, "xfs": MAX_LFS_FILESIZE, "ocfs2": 4 << 40}


def check_path(path: str) -> None:
    """ENAMETOOLONG for a path past PATH_MAX or a component past NAME_MAX (``getname``, ``namei``)."""
    if len(path.encode("utf-8", "surrogateescape")) >= PATH_MAX:
        raise KernelError(errno.ENAMETOOLONG)
    for part in path.split("/"):
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise KernelError(errno.ENAMETOOLONG)


def check_size(fstype: str, in_ram: bool, size: int, used_by_others: int, mem_bytes: int) -> None:
    """EFBIG past the filesystem's maximum file size, ENOSPC past the space left on the device."""
    if size < 0:
        raise KernelError(errno.EINVAL)
    if size > MAX_BYTES.get(fstype, MAX_LFS_FILESIZE):
        raise KernelError(errno.EFBIG)
    capacity = mem_bytes // 2 if in_ram else DEVICE_BYTES
    if used_by_others + size > capacity:
        raise KernelError(errno.ENOSPC)
