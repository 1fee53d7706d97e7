"""Merchant webhook secrets: the signature a receiver checks, and the sealed form the journal
keeps (docs/webhooks.md).

**Signature.** ``Poshost-Signature: t=<unix seconds>,v1=<hex>`` where the hex is
HMAC-SHA256 keyed with the secret's UTF-8 text over ``"<t>." + body`` (the exact bytes of the
request body). Signing the timestamp with the body lets a receiver refuse an old request
replayed later (``tolerance``) as well as a forged one; ``v1`` names the scheme so a later one
can be sent next to it. A receiver may find several ``v1`` entries (none today): any one that
matches will do.

**Sealing.** The host must sign every delivery, so it needs the secret itself, not a hash of
it. The journal keeps it sealed with AES-256-GCM under the host's webhook key (a file in the
data directory, like the PAN fingerprint key), bound to the merchant id as associated data, so
a database copy alone does not reveal it and a sealed secret moved to another merchant does
not open. The check value lets an operator see *which* secret is in force without seeing it.

Pure: the caller passes the time; no clock, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from Crypto.Cipher import AES

SIGNATURE_HEADER = "Poshost-Signature"
EVENT_ID_HEADER = "Poshost-Event-Id"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300  # seconds a receiver accepts between t= and its own clock
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SEALING_KEY_BYTES = 32
_SECRET_RE = re.compile(r"[!-~]{16,256}")  # printable ASCII, no spaces
_SEALED_VERSION = "s1"


class WebhookSecretError(ValueError):
    """A secret, sealing key or sealed secret that cannot be used."""


def new_secret() -> str:
    """A fresh secret: ``whsec_`` and 64 hex digits (256 bits)."""
    return SECRET_PREFIX + secrets.token_hex(32)


def check_secret(secret: str) -> str:
    """The secret as given (surrounding whitespace dropped), or WebhookSecretError: 16 to 256
    printable ASCII characters, so it survives a file, a shell and an HTTP library intact."""
    secret = secret.strip()
    if not _SECRET_RE.fullmatch(secret):
        raise WebhookSecretError("a webhook secret is 16 to 256 printable ASCII characters")
    return secret


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under the secret."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Poshost-Signature`` header value for ``body`` sent at ``timestamp``."""
    return f"t={int(timestamp)},{SCHEME}={signature(secret, timestamp, body)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, [v1 signatures]) of a header value; ValueError when it has no timestamp."""
    timestamp: int | None = None
    found: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == SCHEME and value:
            found.append(value)
    if timestamp is None:
        raise ValueError("no t= in the signature header")
    return timestamp, found


def verify(
    secret: str, header: str | None, body: bytes, now: int, tolerance: int = DEFAULT_TOLERANCE
) -> bool:
    """True when ``header`` carries a v1 signature of ``body`` under ``secret`` made within
    ``tolerance`` seconds of ``now`` (unix seconds). Compares in constant time."""
    if not header:
        return False
    try:
        timestamp, found = parse_header(header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in found)


def check_value(secret: str) -> str:
    """Six hex digits that name a secret without revealing it (shown by `webhook show`)."""
    digest = hmac.new(secret.encode("utf-8"), b"poshost webhook check value", hashlib.sha256)
    return digest.hexdigest()[:6].upper()


def seal(sealing_key: bytes, mid: str, secret: str) -> str:
    """The secret sealed for the journal: ``s1:<nonce>:<ciphertext>:<tag>`` (hex)."""
    _check_key(sealing_key)
    nonce = secrets.token_bytes(12)
    cipher = AES.new(sealing_key, AES.MODE_GCM, nonce=nonce)
    cipher.update(mid.encode("utf-8"))
    body, tag = cipher.encrypt_and_digest(check_secret(secret).encode("utf-8"))
    return ":".join((_SEALED_VERSION, nonce.hex(), body.hex(), tag.hex()))


def unseal(sealing_key: bytes, mid: str, sealed: str) -> str:
    """The secret back; WebhookSecretError when the key, the merchant or the text is wrong."""
    _check_key(sealing_key)
    try:
        version, nonce, body, tag = sealed.split(":")
        if version != _SEALED_VERSION:
            raise ValueError(version)
        cipher = AES.new(sealing_key, AES.MODE_GCM, nonce=bytes.fromhex(nonce))
        cipher.update(mid.encode("utf-8"))
        clear = cipher.decrypt_and_verify(bytes.fromhex(body), bytes.fromhex(tag))
    except ValueError:
        raise WebhookSecretError(
            f"the webhook secret of {mid} does not open under this host's webhook key"
        ) from None
    return clear.decode("utf-8")


def _check_key(key: bytes) -> None:
    if len(key) != SEALING_KEY_BYTES:
        raise WebhookSecretError(f"the webhook sealing key is {SEALING_KEY_BYTES} bytes")
