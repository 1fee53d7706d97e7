"""RSA-SHA256 signatures over a canonical string of parameters, the way the big QR wallets'
merchant APIs sign requests, responses and notifications (docs/qr.md, "Signatures").

Both sides of the wallet link hold a key pair: the acquirer signs what it sends with its private
key and checks the platform's signature with the platform's public key, and the other way round.
The canonical string is every parameter but ``sign``, sorted by name, as ``name=value`` joined
with ``&``; empty values are left out; nested values are compact JSON with sorted keys. It is a
function of the values, not of how a JSON encoder spaced them, so a signature survives
re-serialisation.

Keys are wrapped so that neither ``repr`` nor a log line can show the private exponent
(pycryptodome's own ``repr`` of a private key prints it).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import pkcs1_15

from keys.errors import KeysError

SIGN_TYPE = "RSA2"  # the wallets' name for RSA with SHA-256 (PKCS #1 v1.5)
KEY_BITS = 2048


class SignatureKeyError(KeysError):
    """A key file that is missing, unreadable or not an RSA key of the expected kind."""


@attrs.frozen
class SigningKey:
    """An RSA private key; its repr names only its size and public fingerprint."""

    key: Any = attrs.field(repr=False)

    @property
    def public(self) -> VerifyKey:
        return VerifyKey(self.key.public_key())

    def __repr__(self) -> str:
        return f"SigningKey({self.key.size_in_bits()} bits, {self.public.fingerprint})"


@attrs.frozen
class VerifyKey:
    key: Any = attrs.field(repr=False)

    @property
    def fingerprint(self) -> str:
        """The first 16 hex digits of SHA-256 over the DER public key: names a key in logs."""
        return SHA256.new(self.key.export_key("DER")).hexdigest()[:16]

    def pem(self) -> bytes:
        return bytes(self.key.export_key("PEM"))

    def __repr__(self) -> str:
        return f"VerifyKey({self.fingerprint})"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def canonical(params: Mapping[str, Any]) -> bytes:
    """``a=1&b=x``: every parameter but ``sign``, sorted by name, empty ones left out."""
    parts = [
        f"{name}={_text(value)}"
        for name, value in sorted(params.items())
        if name != "sign" and value is not None and value != ""
    ]
    return "&".join(parts).encode("utf-8")


def sign(key: SigningKey, params: Mapping[str, Any]) -> str:
    """The base64 RSA-SHA256 signature of ``canonical(params)``."""
    digest = SHA256.new(canonical(params))
    return base64.b64encode(pkcs1_15.new(key.key).sign(digest)).decode("ascii")


def verify(key: VerifyKey, params: Mapping[str, Any], signature: Any) -> bool:
    """Whether ``signature`` (base64) is ``key``'s signature of ``canonical(params)``. Never
    raises for a bad signature: malformed base64 or a wrong length is just False."""
    if not isinstance(signature, str) or not signature:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        pkcs1_15.new(key.key).verify(SHA256.new(canonical(params)), raw)
    except (ValueError, TypeError):
        return False
    return True


def generate() -> SigningKey:
    return SigningKey(RSA.generate(KEY_BITS))


def private_from_pem(data: bytes) -> SigningKey:
    try:
        key = RSA.import_key(data)
    except (ValueError, IndexError, TypeError) as exc:
        raise SignatureKeyError("not an RSA private key") from exc
    if not key.has_private():
        raise SignatureKeyError("an RSA public key where the private key was expected")
    return SigningKey(key)


def public_from_pem(data: bytes) -> VerifyKey:
    try:
        key = RSA.import_key(data)
    except (ValueError, IndexError, TypeError) as exc:
        raise SignatureKeyError("not an RSA public key") from exc
    return VerifyKey(key.public_key())


def load_or_create(private_path: Path, public_path: Path | None = None) -> SigningKey:
    """The key pair kept at ``private_path`` (mode 0600), generated there on first use, like a
    merchant's application key made once at onboarding; its public half is written next to it
    (``public_path``) for the other side to load. The private key is never printed."""
    if private_path.exists():
        key = private_from_pem(private_path.read_bytes())
    else:
        private_path.parent.mkdir(parents=True, exist_ok=True)
        key = generate()
        try:
            fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return load_or_create(private_path, public_path)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.key.export_key("PEM"))
    if public_path is not None:
        pem = key.public.pem()
        if not public_path.exists() or public_path.read_bytes() != pem:
            public_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = public_path.with_suffix(public_path.suffix + ".tmp")
            tmp.write_bytes(pem)
            tmp.replace(public_path)
    return key


def load_public(path: Path) -> VerifyKey:
    try:
        return public_from_pem(path.read_bytes())
    except OSError as exc:
        raise SignatureKeyError(f"cannot read the public key {path}: {exc.strerror}") from exc
