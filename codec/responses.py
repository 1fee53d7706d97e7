"""Response codes (field 39) as data: ``specs/response_codes.toml`` holds each code, what it
means and whether the answer also says "sign on again"; this module names them, so a flow
writes ``codes.MAC_FAILED`` instead of a bare ``"A0"`` and a typo is an import error, not a
wrong answer on the wire.
"""

from __future__ import annotations

import attrs

from specs import load_toml


@attrs.frozen
class ResponseCode:
    code: str
    name: str
    meaning: str
    sign_on_again: bool = False


def _load() -> dict[str, ResponseCode]:
    table: dict[str, ResponseCode] = {}
    for row in load_toml("response_codes.toml")["code"]:
        entry = ResponseCode(**row)
        if entry.code in table or len(entry.code) != 2:
            raise ValueError(f"response_codes.toml: bad or repeated code {entry.code!r}")
        table[entry.code] = entry
    return table


CODES: dict[str, ResponseCode] = _load()
BY_NAME: dict[str, str] = {c.name: c.code for c in CODES.values()}

APPROVED = BY_NAME["APPROVED"]
INVALID_MERCHANT = BY_NAME["INVALID_MERCHANT"]
INVALID_TRANSACTION = BY_NAME["INVALID_TRANSACTION"]
INVALID_AMOUNT = BY_NAME["INVALID_AMOUNT"]
INVALID_CARD = BY_NAME["INVALID_CARD"]
NO_SUCH_ISSUER = BY_NAME["NO_SUCH_ISSUER"]
RELATED_TRANSACTION_ERROR = BY_NAME["RELATED_TRANSACTION_ERROR"]
ORIGINAL_NOT_FOUND = BY_NAME["ORIGINAL_NOT_FOUND"]
FORMAT_ERROR = BY_NAME["FORMAT_ERROR"]
FUNCTION_NOT_SUPPORTED = BY_NAME["FUNCTION_NOT_SUPPORTED"]
NOT_PERMITTED_TO_TERMINAL = BY_NAME["NOT_PERMITTED_TO_TERMINAL"]
ORIGINAL_AMOUNT_MISMATCH = BY_NAME["ORIGINAL_AMOUNT_MISMATCH"]
AMOUNT_LIMIT = BY_NAME["AMOUNT_LIMIT"]
INCORRECT_PIN = BY_NAME["INCORRECT_PIN"]  # also: unknown operator or wrong password at sign-on
FREQUENCY_LIMIT = BY_NAME["FREQUENCY_LIMIT"]
SIGN_ON_AGAIN = BY_NAME["SIGN_ON_AGAIN"]
ISSUER_DOWN = BY_NAME["ISSUER_DOWN"]
DUPLICATE = BY_NAME["DUPLICATE"]
REQUEST_IN_PROGRESS = BY_NAME["REQUEST_IN_PROGRESS"]  # QR: not paid yet (docs/qr.md)
EXPIRED_CARD = BY_NAME["EXPIRED_CARD"]
INSUFFICIENT_FUNDS = BY_NAME["INSUFFICIENT_FUNDS"]
AMOUNT_LIMIT = BY_NAME["AMOUNT_LIMIT"]
DO_NOT_HONOUR = BY_NAME["DO_NOT_HONOUR"]
SYSTEM_MALFUNCTION = BY_NAME["SYSTEM_MALFUNCTION"]
TERMINAL_NOT_REGISTERED = BY_NAME["TERMINAL_NOT_REGISTERED"]
OUTCOME_UNKNOWN = BY_NAME["OUTCOME_UNKNOWN"]
PIN_FORMAT_ERROR = BY_NAME["PIN_FORMAT_ERROR"]
MAC_FAILED = BY_NAME["MAC_FAILED"]
SECURITY_FAILURE = BY_NAME["SECURITY_FAILURE"]


def meaning(code: str) -> str:
    """What a code means, for reports and receipts (an issuer's unknown code says so)."""
    entry = CODES.get(code)
    return entry.meaning if entry is not None else f"issuer code {code}"
