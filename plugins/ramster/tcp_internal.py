"""r2net's wire format (tcp.h, tcp_internal.h): the 24-byte header, the 32-byte handshake.

Everything on the wire is big-endian, as the kernel's ``cpu_to_be*`` makes it,
so two kmodemu nodes — or a kmodemu node and a byte-level test — agree on
every byte.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

R2NET_MSG_MAGIC = 0xFA55
R2NET_MSG_STATUS_MAGIC = 0xFA56
R2NET_MSG_KEEP_REQ_MAGIC = 0xFA57
R2NET_MSG_KEEP_RESP_MAGIC = 0xFA58
R2NET_MSG_DATA_MAGIC = 0xFA59

R2NET_PROTOCOL_VERSION = 11

_HDR = struct.Struct(">HHHHIIII")
_HAND = struct.Struct(">QQIIII")
HDR_SIZE = _HDR.size            # 24
HANDSHAKE_SIZE = _HAND.size     # 32
R2NET_MAX_PAYLOAD_BYTES = 4096 - HDR_SIZE

R2NET_RECONNECT_DELAY_MS_DEFAULT = 2000
R2NET_KEEPALIVE_DELAY_MS_DEFAULT = 2000
R2NET_IDLE_TIMEOUT_MS_DEFAULT = 30000

# enum r2net_system_error
R2NET_ERR_NONE, R2NET_ERR_NO_HNDLR, R2NET_ERR_OVERFLOW, R2NET_ERR_DIED = range(4)
R2NET_ERR_MAX = 4
SYS_ERR_TO_ERRNO = {
    R2NET_ERR_NONE: 0,
    R2NET_ERR_NO_HNDLR: -errno.ENOPROTOOPT,
    R2NET_ERR_OVERFLOW: -errno.EOVERFLOW,
    R2NET_ERR_DIED: -errno.EHOSTDOWN,
}


@dataclass(slots=True)
class R2NetMsg:
    """``struct r2net_msg``: status values are signed on our side, u32 on the wire.

    ``sender`` is not on the wire: it is the number of the node whose connection
    the message arrived on (-1 for one we build to send). Handlers judge what a
    message may do by it, never by what the payload claims (docs/security.md).
    """

    magic: int = R2NET_MSG_MAGIC
    data_len: int = 0
    msg_type: int = 0
    sys_status: int = R2NET_ERR_NONE
    status: int = 0
    key: int = 0
    msg_num: int = 0
    sender: int = -1

    def pack(self) -> bytes:
        return _HDR.pack(self.magic, self.data_len, self.msg_type, 0,
                         self.sys_status & 0xFFFFFFFF, self.status & 0xFFFFFFFF,
                         self.key & 0xFFFFFFFF, self.msg_num & 0xFFFFFFFF)

    @classmethod
    def unpack(cls, raw: bytes) -> "R2NetMsg":
        return cls.from_fields(_HDR.unpack(raw))

    @classmethod
    def from_fields(cls, f: tuple[int, ...], sender: int = -1) -> "R2NetMsg":
        """From the eight values of ``_HDR.unpack`` (the pad is dropped)."""
        return cls(f[0], f[1], f[2], _s32(f[4]), _s32(f[5]), f[6], f[7], sender)



def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


@dataclass
class R2NetHandshake:
    """``struct r2net_handshake``: what both ends must agree on before the link is valid."""

    protocol_version: int
    connector_id: int
    r2hb_heartbeat_timeout_ms: int
    r2net_idle_timeout_ms: int
    r2net_keepalive_delay_ms: int
    r2net_reconnect_delay_ms: int

    def pack(self) -> bytes:
        return _HAND.pack(self.protocol_version, self.connector_id,
                          self.r2hb_heartbeat_timeout_ms, self.r2net_idle_timeout_ms,
                          self.r2net_keepalive_delay_ms, self.r2net_reconnect_delay_ms)

    @classmethod
    def unpack(cls, raw: bytes) -> "R2NetHandshake":
        return cls(*_HAND.unpack(raw))


def keepalive(magic: int) -> bytes:
    """A keepalive request or response: a bare header with only the magic set."""
    return R2NetMsg(magic=magic, msg_type=0, key=0).pack()
