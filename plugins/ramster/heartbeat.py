"""r2hb: which nodes are alive. RAMster has no disk heartbeat, only the manual map.

``manual_node_up`` (sysfs) sets a node's bit and runs the node-up callbacks;
nothing ever clears a bit (RAMster never marks a node down on its own). The
``heartbeat`` configfs group holds ``dead_threshold`` and ``mode`` as in
ocfs2's o2hb; the threshold sets the heartbeat timeout r2net's handshake
compares, ``2000 * (dead_threshold - 1)`` ms.
"""

from __future__ import annotations

import errno
from typing import Callable

from kmodemu.errors import KernelError
from kmodemu.kernel.configfs import ConfigAttribute, ConfigGroup

from .ramster_nodemanager import R2NM_MAX_NODES

R2HB_REGION_TIMEOUT_MS = 2000
R2HB_DEFAULT_DEAD_THRESHOLD = 31
R2HB_MIN_DEAD_THRESHOLD = 2
R2HB_MAX_REGION_NAME_LEN = 32
HEARTBEAT_MODES = ("local", "global")

NodeCallback = Callable[[int], None]


def kstrtoul(text: str) -> int:
    """``kstrtoul(s, 10)``: digits with at most one trailing newline, else -EINVAL."""
    s = text[:-1] if text.endswith("\n") else text
    if s.startswith("+"):
        s = s[1:]
    if not s or not s.isascii() or not s.isdigit():
        raise KernelError(errno.EINVAL)
    value = int(s)
    if value >= 1 << 64:
        raise KernelError(errno.ERANGE)
    return value


class Heartbeat:
    """One kernel's r2hb state: the live-node map, the callbacks, the tunables."""

    def __init__(self, printk: Callable[[str], None]):
        self.printk = printk
        self.dead_threshold = R2HB_DEFAULT_DEAD_THRESHOLD
        self.mode = 0
        self.live: set[int] = set()
        self.up_callbacks: list[NodeCallback] = []
        self.down_callbacks: list[NodeCallback] = []

    @property
    def max_write_timeout_ms(self) -> int:
        return R2HB_REGION_TIMEOUT_MS * (self.dead_threshold - 1)

    def manual_set_node_heartbeating(self, num: int) -> None:
        if num < R2NM_MAX_NODES:
            self.live.add(num)

    def check_node_heartbeating(self, num: int) -> bool:
        return num in self.live

    def node_up(self, num: int) -> None:
        for cb in list(self.up_callbacks):
            cb(num)

    def node_down(self, num: int) -> None:
        self.live.discard(num)
        for cb in list(self.down_callbacks):
            cb(num)

    # -- configfs: <cluster>/heartbeat/ ------------------------------------------
    def make_hb_set(self) -> ConfigGroup:
        def store_threshold(text: str) -> None:
            value = kstrtoul(text)
            if value > R2HB_MIN_DEAD_THRESHOLD:  # r2hb_dead_threshold_set: silently kept otherwise
                self.dead_threshold = value & 0xFFFFFFFF

        def store_mode(text: str) -> None:
            word = text[:-1] if text.endswith("\n") else text
            if not word:
                raise KernelError(errno.EINVAL)
            for i, name in enumerate(HEARTBEAT_MODES):
                if name.startswith(word.lower()):
                    self.mode = i
                    self.printk(f"ramster: Heartbeat mode set to {name}")
                    return
            raise KernelError(errno.EINVAL)

        def make_region(name: str) -> ConfigGroup:
            if len(name) > R2HB_MAX_REGION_NAME_LEN:
                raise KernelError(errno.ENAMETOOLONG)
            return ConfigGroup(name, item=True)

        def drop_region(item: ConfigGroup) -> None:
            if self.mode == 1:
                self.printk(f"ramster: Heartbeat stopped/aborted on region {item.name} (no region)")

        return ConfigGroup(
            "heartbeat",
            attrs=[ConfigAttribute("dead_threshold", lambda: f"{self.dead_threshold}\n",
                                   store_threshold),
                   ConfigAttribute("mode", lambda: f"{HEARTBEAT_MODES[self.mode]}\n", store_mode)],
            make_group=make_region, drop_item=drop_region)
