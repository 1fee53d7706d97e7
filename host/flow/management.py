"""Management and reversal steps: sign-on (working keys under the TMK), sign-off, echo, and the
terminal's 0400 reversal.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import structlog

from codec import responses as codes
from codec import subfields
from codec.subfields import Field60, SignOnKeys
from host.clock import journal_date, parse_date
from host.flow.engine import Decline, Exchange
from host.flow.session_guard import may_sign_off, now_ms, refuse_sign_off
from host.flow.steps import field60
from host.hsm import HsmUnavailable
from host.issuer.protocol import undo_payload
from host.store.errors import AlreadyReversed
from keys.errors import KeysError
from keys.tokens import KeyToken, KeyType

if TYPE_CHECKING:
    from host.app import Host
    from host.store.records import Transaction

log = structlog.get_logger("poshost.management")

SIGN_ON_MODES = ("001", "003", "004")


async def sign_on(host: Host, ex: Exchange) -> None:
    """New PIK/MAK (and TDK for 004) under the terminal's TMK, with 4-byte check values in 62.

    The MAK is single-length DES in every mode (docs/terminal-dialect.md); the PIK is
    double-length for 003 and 004. The terminal adopts the batch number sent back in 60.2.
    """
    req = ex.request
    try:
        f60 = field60(ex)
    except ValueError as exc:
        raise Decline(codes.FORMAT_ERROR, f"field 60: {exc}") from exc
    mode = f60.nmc
    if mode not in SIGN_ON_MODES:
        raise Decline(codes.FORMAT_ERROR, f"unknown sign-on mode {mode}")
    terminal = ex.terminal
    if not terminal.tmk_token:
        raise Decline(codes.SECURITY_FAILURE, "no TMK loaded for this terminal")
    hsm = host.hsm
    try:
        tmk = KeyToken.from_text(terminal.tmk_token)
        pik, pik_c, pik_cv = await hsm.generate_exported(
            KeyType.TPK, 8 if mode == "001" else 16, tmk
        )
        mak, mak_c, mak_cv = await hsm.generate_exported(KeyType.TAK, 8, tmk)
        tdk, tdk_c, tdk_cv = None, None, None
        if mode == "004":
            tdk, tdk_c, tdk_cv = await hsm.generate_exported(KeyType.TDK, 16, tmk)
    except HsmUnavailable as exc:
        raise Decline(codes.SYSTEM_MALFUNCTION, f"HSM unavailable: {exc}") from exc
    except KeysError as exc:
        raise Decline(
            codes.SECURITY_FAILURE, f"sign-on key generation failed: {type(exc).__name__}"
        ) from exc
    field62 = subfields.format_signon_keys(
        SignOnKeys(pik_c, pik_cv, mak_c, mak_cv, tdk_c, tdk_cv), mode
    )
    operator = str(req.get(63, ""))[:3].strip() or None  # number only: a password may follow
    keys = await host.store.sign_on(
        terminal.tid,
        pik_token=pik.to_text(),
        mak_token=mak.to_text(),
        tdk_token=tdk.to_text() if tdk is not None else None,
        operator=operator,
        now=now_ms(host),
    )
    host.estate.forget_terminal(terminal.tid)
    if keys == "current":  # a first sign-on: this connection holds the session
        ex.conn.proven_mak = mak.to_text()
    elif keys == "replaced":
        detail = "a sign-on replaced keys the terminal had not proven"
        host.security.record("keys_pending_replaced", peer=ex.conn.peer, tid=terminal.tid,
                             detail=detail)  # fmt: skip
    sent = req.get(62)
    tusn = subfields.parse_tusn(sent) if isinstance(sent, bytes) else None
    log.info("signed_on", tid=terminal.tid, mode=mode, operator=operator, tusn=tusn,
             keys=keys, pik_kcv=pik.check_value, mak_kcv=mak.check_value)  # fmt: skip
    ex.code = "00"
    ex.response_fields[60] = Field60("00", terminal.current_batch, mode).format()
    ex.response_fields[62] = field62


async def sign_off(host: Host, ex: Exchange) -> None:
    """End the session, only for the terminal itself: an 0820 carries no MAC, so a sign-off
    from a connection that never proved the terminal's keys could come from anyone."""
    terminal = ex.terminal
    try:
        allowed = not terminal.signed_on or await may_sign_off(host, ex)
    except HsmUnavailable as exc:
        raise Decline(codes.SYSTEM_MALFUNCTION, f"HSM unavailable: {exc}") from exc
    if not allowed:
        refuse_sign_off(host, ex)
    await host.store.sign_off(terminal.tid)
    host.estate.forget_terminal(terminal.tid)
    log.info("signed_off", tid=terminal.tid)
    ex.code = "00"


async def echo(host: Host, ex: Exchange) -> None:
    ex.code = "00"


# Parameter download (0800, 60.3 360): field 62 of the 0810 is a list of tag (2 digits),
# length (3 digits), value (ASCII) entries. The dialect leaves the layout to the host; this is ours.
PARAMETER_TAGS = {
    "01": "acquirer name",
    "02": "merchant name",
    "03": "host response timeout, seconds",
    "04": "reversal retries before the terminal gives up",
    "05": "card organisation",
    "06": "maximum days a batch may stay open",
}


def format_parameters(params: dict[str, str]) -> bytes:
    return b"".join(
        tag.encode() + f"{len(value.encode()):03d}".encode() + value.encode()
        for tag, value in params.items()
    )


def parse_parameters(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if pos + 5 > len(data):
            raise ValueError(f"parameter entry truncated at byte {pos}")
        tag, length = data[pos : pos + 2].decode(), int(data[pos + 2 : pos + 5])
        out[tag] = data[pos + 5 : pos + 5 + length].decode()
        pos += 5 + length
    return out


async def parameter_download(host: Host, ex: Exchange) -> None:
    settings = host.settings
    params = {
        "01": settings.acquirer.name,
        "02": ex.merchant.name,
        "03": str(int(settings.issuer.timeout + 5)),
        "04": "3",
        "05": settings.acquirer.card_organisation,
        "06": str(settings.flows.batch_max_days),
    }
    ex.code = "00"
    ex.response_fields[60] = str(ex.request.get(60, ""))
    ex.response_fields[62] = format_parameters(params)


async def find_original_for_reversal(host: Host, ex: Exchange) -> None:
    """A reversal reuses the original's STAN; look in today's and yesterday's business date
    (a reversal sent just after cut-over)."""
    req = ex.request
    try:
        batch = field60(ex).batch
    except ValueError as exc:
        raise Decline(codes.FORMAT_ERROR, f"field 60: {exc}") from exc
    today = host.business_date()
    reverses = ex.original.reverses
    for date in (today, today - dt.timedelta(days=1)):
        original: Transaction | None = await host.store.find_transaction(
            ex.terminal.tid, batch, str(req[11]), journal_date(date)
        )
        if original is not None and reverses in (None, original.txn_type):
            ex.original.row = original
            return


async def reverse_original(host: Host, ex: Exchange) -> None:
    """Undo the original once. A reversal is always acknowledged (00): for an unknown or
    already reversed original the acknowledgement has no effect anywhere."""
    ex.code = "00"
    original = ex.original.row
    reason = str(ex.request.get(39, "06"))
    if original is None:
        log.info("reversal_unknown_original", tid=ex.terminal.tid, stan=ex.request.get(11))
        return
    ex.rrn = original.rrn
    ex.business_date = day = parse_date(original.business_date)
    needs_issuer = original.status in ("approved", "pending", "timeout") and original.issuer_link
    payload = None
    if needs_issuer:
        rrn = original.rrn or host.rrn_for(original.id, day)
        payload = undo_payload(host, original.issuer_link, original, rrn)
        if payload is None:
            # A QR void or refund: the wallet gave the money back and nothing takes that back.
            log.info("reversal_of_refund_ignored", tid=ex.terminal.tid, original=original.id)
            return
    try:
        await host.store.record_reversal(
            original.id,
            f"terminal reversal, reason {reason}",
            link=original.issuer_link if payload else None,
            payload=payload,
        )
    except AlreadyReversed:
        log.info("reversal_repeated", tid=ex.terminal.tid, original=original.id)
        return
    if payload is not None:
        host.saf_wakeup()
