"""One exception family for everything in ``keys``.

Messages name the operation, the key type and at most a check value: never key bytes, PINs or
PIN blocks, because exception text ends up in logs and responses.
"""

from __future__ import annotations


class KeysError(Exception):
    """Base of every error raised by ``keys`` (catch this one at the host boundary)."""


class KeyError_(KeysError, ValueError):  # trailing _: not the builtin KeyError
    """Key material or a token is malformed: wrong length, bad parity, failed check value."""


KeyMaterialError = KeyError_


class KeyUsageError(KeysError):
    """A token was used for an operation its type does not allow, or did not authenticate."""


class PinError(KeysError, ValueError):
    """A PIN, PAN or PIN block is invalid or a PIN block does not decode."""


class MacError(KeysError, ValueError):
    """A MAC request is malformed (unknown algorithm, bad key length, bad padding)."""


class DukptError(KeysError, ValueError):
    """A KSN is malformed, its counter has too many bits set, or the device is exhausted."""


class TR31Error(KeysError, ValueError):
    """A TR-31 key block is malformed, fails its MAC, or its header forbids the operation."""
