"""Terminal activation: a new terminal proves it holds a one-time code and is the device it
claims to be, and receives its terminal master key (TMK).

Message (our extension of the terminal dialect; no MAC, like every 08xx):

    0800  11 STAN · 41 TID · 42 MID · 60 = "00" + batch n6 + "380"
          62 = "Sequence No" + n2 length + TUSN (ASCII, as in a sign-on)
          63 = the activation code (ans, as typed)
    0810  11 · 41 · 42 · 60 echoed · 39 · on 00: 62 = TMK (16 bytes, TDES ECB under the
          device's transport key) + check value (4 bytes: first 4 of TDES(TMK, 8 zero bytes))

The transport key is tied to the serial number: each device is enrolled with its own transport
key (``poshost estate device enroll TUSN``), by components or a token, or — for devices whose
manufacturer derives it — from the manufacturer's key-derivation key (KDK):

    transport key = odd-parity( TDES-ECB-encrypt( KDK, SHA-256(TUSN in ASCII)[:16] ) )

Only a device holding that key can decrypt its TMK: presenting someone else's serial gains
nothing. The host stores the TMK as a token under its LMK and the serial on the terminal; the
terminal then signs on as usual.

Codes (``poshost estate activation-code issue TID``): random, 8 digits, stored scrypt-hashed,
valid ``activation.code_ttl`` seconds, single use; only the latest code of a terminal counts;
``activation.max_tries`` failed attempts lock it. Response codes:

    00 activated · 30 no TUSN in 62 or no code in 63 · 55 wrong code (or none issued) ·
    54 code expired · 94 code already used · 75 too many tries (code locked) ·
    58 serial number does not match the one the code (or terminal) was issued for ·
    A7 the serial has no transport key enrolled, or a key operation failed

A wrong code and a wrong serial each count as a try. Never logged: the code, any key.
"""

from __future__ import annotations

import hashlib
import secrets

import structlog
import trio

from codec import responses as codes
from codec import subfields
from host.flow.engine import Decline, Exchange
from host.hsm import HsmUnavailable
from host.store.passwords import hash_password, verify_password
from keys import des
from keys.errors import KeysError
from keys.tokens import KeyToken, KeyType

log = structlog.get_logger("poshost.activation")


def new_code() -> str:
    return f"{secrets.randbelow(10**8):08d}"


def hash_code(code: str) -> str:
    return hash_password(code)


def derive_transport_key(kdk: bytes, tusn: str) -> bytes:
    """The documented derivation (clear test keys only: estate CLI with a TEST KDK)."""
    digest = hashlib.sha256(tusn.encode("ascii")).digest()[:16]
    return des.adjust_parity(des.encrypt_ecb(kdk, digest))


def _now_ms(host) -> int:
    return int(host.now().timestamp() * 1000)


async def activate(host, ex: Exchange) -> None:
    req = ex.request
    terminal = ex.terminal
    raw62 = req.get(62)
    tusn = subfields.parse_tusn(raw62) if isinstance(raw62, bytes) else None
    code = str(req.get(63, "")).strip()
    if not tusn or not code:
        raise Decline(codes.FORMAT_ERROR, "activation needs the TUSN in 62 and the code in 63")
    record = await host.store.latest_activation_code(terminal.tid)
    now = _now_ms(host)
    if record is None:
        _refuse(terminal.tid, tusn, "55", "no code issued")
    if record.used_at is not None:
        _refuse(terminal.tid, tusn, "94", "code already used")
    if record.tries >= record.max_tries:
        _refuse(terminal.tid, tusn, "75", "too many tries")
    if record.expires_at <= now:
        _refuse(terminal.tid, tusn, "54", "code expired")
    ok = await trio.to_thread.run_sync(verify_password, code, record.code_hash)
    if not ok:
        tries = await host.store.count_activation_try(record.id)
        _refuse(terminal.tid, tusn, "55", f"wrong code (try {tries} of {record.max_tries})")
    expected = record.serial or terminal.serial
    if expected and tusn != expected:
        tries = await host.store.count_activation_try(record.id)
        _refuse(terminal.tid, tusn, "58", f"serial mismatch (try {tries} of {record.max_tries})")
    device = await host.store.get_device(tusn)
    if device is None:
        _refuse(terminal.tid, tusn, "A7", "no transport key enrolled for this serial")
    try:
        transport = KeyToken.from_text(device.transport_token)
        tmk, cryptogram, check_value = await host.hsm.generate_exported(KeyType.TMK, 16, transport)
    except HsmUnavailable as exc:
        raise Decline(codes.SYSTEM_MALFUNCTION, f"HSM unavailable: {exc}") from exc
    except (KeysError, ValueError) as exc:
        raise Decline(
            codes.SECURITY_FAILURE, f"activation key operation failed: {type(exc).__name__}"
        ) from exc
    done = await host.store.activate_terminal(
        record.id, terminal.tid, tmk_token=tmk.to_text(), serial=tusn, now=now
    )
    if not done:  # a concurrent attempt used it first
        _refuse(terminal.tid, tusn, "94", "code used concurrently")
    host.estate.forget_terminal(terminal.tid)
    log.info("terminal_activated", tid=terminal.tid, tusn=tusn, tmk_kcv=tmk.check_value)
    ex.code = "00"
    ex.response_fields[62] = bytes(cryptogram) + bytes(check_value)


def _refuse(tid: str, tusn: str, code: str, why: str) -> None:
    log.warning("activation_refused", tid=tid, tusn=tusn, code=code, why=why)
    raise Decline(code, f"activation: {why}")
