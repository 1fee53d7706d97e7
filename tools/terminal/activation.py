"""The terminal side of activation (README "Operations"): present the one-time code and the
serial number (TUSN), receive the TMK under the device's transport key, check its value.

The transport key is what the device was given at the factory: either its own key, or one
derived from the manufacturer's key-derivation key (KDK) by the documented rule
``odd-parity(TDES-ECB(KDK, SHA-256(TUSN)[:16]))``. Implemented here independently of the host.
"""

from __future__ import annotations

import hashlib

from codec.message import Message
from codec.subfields import Field60
from keys import des
from keys.checkvalue import kcv

# A TEST manufacturer KDK, published here: never a production key.
DEMO_TEST_KDK = bytes.fromhex("C1C2C3C4C5C6C7C8D1D2D3D4D5D6D7D8")
ACTIVATION_NMC = "380"


class ActivationError(Exception):
    """The host's answer cannot be used (no key, wrong length, check value mismatch)."""


def transport_key(kdk: bytes, tusn: str) -> bytes:
    digest = hashlib.sha256(tusn.encode("ascii")).digest()[:16]
    return des.adjust_parity(des.encrypt_ecb(kdk, digest))


def field62_tusn(tusn: str) -> bytes:
    return b"Sequence No" + f"{len(tusn):02d}".encode() + tusn.encode("ascii")


def activation_request(stan: str, tid: str, mid: str, code: str, tusn: str) -> Message:
    return Message(
        "0800",
        {
            11: stan,
            41: tid,
            42: mid,
            60: Field60("00", "000000", ACTIVATION_NMC).format(),
            62: field62_tusn(tusn),
            63: code,
        },
    )


def open_tmk(transport: bytes, field62: bytes) -> bytes:
    """The clear TMK from the response's 62 (TMK under the transport key + 4-byte KCV)."""
    if len(field62) != 20:
        raise ActivationError(f"62 should be 16 + 4 bytes, got {len(field62)}")
    tmk = des.decrypt_ecb(transport, field62[:16])
    if kcv(tmk, 4) != field62[16:]:
        raise ActivationError("the TMK's check value does not match: wrong transport key?")
    return tmk
