"""Appended module signatures, shown by modinfo the way kmod 30 shows them.

A signed module ends with ``<signature data><struct module_signature>`` and
the magic ``~Module signature appended~\\n``. Modern kernels put a PKCS#7
SignedData there (id_type 2); kernels 3.7–4.2 used id_type 1 with the signer
name and key id stored in front of the raw signature. We parse the PKCS#7
with asn1crypto and report signer (issuer CN), key id (serial number), hash
algorithm and the signature bytes, as kmod does with libcrypto.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"~Module signature appended~\n"
_SIG_STRUCT = struct.Struct(">BBBBB3xI")  # algo, hash, id_type, signer_len, key_id_len, sig_len
ID_TYPES = ("PGP", "X509", "PKCS#7")
HASH_ALGOS = ("md4", "md5", "sha1", "rmd160", "sha256", "sha384", "sha512", "sha224", "sm3")
_OID_HASH = {"md5": "md5", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256",
             "sha384": "sha384", "sha512": "sha512", "sm3": "sm3", "md4": "md4",
             "ripemd160": "rmd160"}


@dataclass(frozen=True)
class SignatureInfo:
    id_type: str
    signer: str
    key_id: bytes
    hash_algo: str
    signature: bytes


def hex_lines(data: bytes, per_line: int = 20) -> str:
    """``AA:BB:…`` with a ``\\n\\t\\t`` break after every 20 bytes (kmod's layout)."""
    out: list[str] = []
    n = len(data)
    for i, b in enumerate(data):
        out.append("%02X" % b)
        if i < n - 1:
            out.append(":")
            if (i + 1) % per_line == 0:
                out.append("\n\t\t")
    return "".join(out)


def split_signature(data: bytes) -> tuple[bytes, SignatureInfo | None]:
    """The module bytes without the signature, and what the signature says."""
    if not data.endswith(MAGIC) or len(data) < len(MAGIC) + _SIG_STRUCT.size:
        return data, None
    end = len(data) - len(MAGIC)
    algo, hash_, id_type, signer_len, key_id_len, sig_len = _SIG_STRUCT.unpack_from(
        data, end - _SIG_STRUCT.size)
    end -= _SIG_STRUCT.size
    total = sig_len + signer_len + key_id_len
    if total > end:
        return data, None
    body = data[:end - total]
    blob = data[end - total:end]
    info: SignatureInfo | None
    if id_type == 2:
        info = _pkcs7(blob[signer_len + key_id_len:])
    else:
        signer = blob[:signer_len].decode("utf-8", "replace")
        key_id = blob[signer_len:signer_len + key_id_len]
        sig = blob[signer_len + key_id_len:]
        info = SignatureInfo(ID_TYPES[id_type] if id_type < len(ID_TYPES) else "unknown",
                             signer, key_id,
                             HASH_ALGOS[hash_] if hash_ < len(HASH_ALGOS) else "unknown", sig)
    return body, info


def _pkcs7(der: bytes) -> SignatureInfo:
    """Signer, key id, hash and signature of the first SignerInfo."""
    try:
        from asn1crypto import cms
        content = cms.ContentInfo.load(der)
        signed = content["content"]
        si = signed["signer_infos"][0]
        sid = si["sid"]
        signer = ""
        key_id = b""
        if sid.name == "issuer_and_serial_number":
            issuer = sid.chosen["issuer"]
            signer = issuer.native.get("common_name", "") if hasattr(issuer, "native") else ""
            serial = sid.chosen["serial_number"].native
            key_id = serial.to_bytes((serial.bit_length() + 7) // 8 or 1, "big")
        else:
            key_id = bytes(sid.chosen.native)
        algo = si["digest_algorithm"]["algorithm"].native
        sig = bytes(si["signature"].native)
        return SignatureInfo("PKCS#7", signer, key_id, _OID_HASH.get(algo, algo), sig)
    except Exception:  # a damaged blob: kmod still says it is PKCS#7
        return SignatureInfo("PKCS#7", "", b"", "unknown", b"")


def modinfo_fields(info: SignatureInfo) -> list[tuple[str, str]]:
    """The ``sig_*`` pairs kmod appends to a module's modinfo list."""
    out = [("sig_id", info.id_type), ("signer", info.signer),
           ("sig_key", hex_lines(info.key_id)), ("sig_hashalgo", info.hash_algo)]
    if info.signature:
        out.append(("signature", hex_lines(info.signature)))
    return out
