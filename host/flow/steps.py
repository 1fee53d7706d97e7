"""Flow steps for financial messages. Each is small, named for what it checks, and either
updates the exchange or raises ``Decline(code)``.

Response codes used here (named from specs/response_codes.toml): 03 merchant, 13 amount,
14 card, 15 no route, 30 format, 58 terminal not permitted, 77 sign on again / batch out of
step, 91 issuer down, 94 duplicate, 96 system malfunction, 97 unknown terminal, 98 outcome
unknown (reversed), 99 PIN format, A0 MAC, A7 security.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
import trio

from codec import responses as codes
from codec import terminal as terminal_codec
from codec.dump import mask_pan
from codec.message import FieldValue
from codec.subfields import Field60
from host.clock import Moment, journal_date, settlement_mmdd
from host.flow.engine import Decline, Exchange
from host.flow.session_guard import mac_matches, try_pending_keys
from host.hsm import HsmUnavailable
from host.issuer.link import IssuerLink, LinkDown, OutcomeUnknown
from host.issuer.protocol import undo_payload
from host.issuer.wallet_link import WalletLink
from host.store.errors import DuplicateTransaction, OriginalConflict
from host.store.records import NewTransaction
from keys.errors import KeysError, PinError
from keys.hsm import DukptSource
from keys.tokens import KeyToken

if TYPE_CHECKING:
    from host.app import Host
    from host.store.records import Terminal

log = structlog.get_logger("poshost.flow")

SIGN_ON_AGAIN = 3  # header processing-requirement nibble


# -- who is speaking -------------------------------------------------------------------------


async def identify_terminal(host: Host, ex: Exchange) -> None:
    tid = str(ex.request.get(41, "")).strip()
    terminal = await host.estate.terminal(tid) if tid else None
    if terminal is None:
        raise Decline(codes.TERMINAL_NOT_REGISTERED, f"unknown terminal {tid!r}")
    ex.terminal = terminal
    ex.conn.terminal_id = tid
    merchant = await host.estate.merchant(terminal.mid)
    if merchant is None or merchant.status != "active":
        raise Decline(codes.INVALID_MERCHANT, "merchant missing or disabled")
    if str(ex.request.get(42, "")).strip() != terminal.mid:
        raise Decline(codes.INVALID_MERCHANT, "field 42 does not name the terminal's merchant")
    ex.merchant = merchant
    if terminal.status != "active":
        raise Decline(codes.NOT_PERMITTED_TO_TERMINAL, "terminal disabled")


async def fresher_terminal(host: Host, ex: Exchange) -> bool:
    """The request disagrees with the cached terminal record (not signed on, another MAK, another
    batch): read the record again, since another process may have changed it (a sign-on or a
    settlement handled by another worker of this host). True when the record was re-read and
    differs."""
    fresh = await host.estate.fresh_terminal(ex.terminal.tid)
    if fresh is None or fresh == ex.terminal:
        return False
    ex.terminal = fresh
    return True


async def require_session(host: Host, ex: Exchange) -> None:
    if not ex.terminal.signed_on or not ex.terminal.mak_token:
        if await fresher_terminal(host, ex) and ex.terminal.signed_on and ex.terminal.mak_token:
            return
        raise Decline(codes.SIGN_ON_AGAIN, "terminal not signed on", processing=SIGN_ON_AGAIN)


async def _mac_proves_keys(host: Host, ex: Exchange, data: bytes, mac: FieldValue) -> bool:
    terminal = ex.terminal
    if await mac_matches(host, terminal.mak_token, data, mac):
        ex.conn.proven_mak = terminal.mak_token
        return True
    if terminal.pending_mak_token and await try_pending_keys(host, ex, data, mac):
        ex.conn.proven_mak = ex.terminal.mak_token
        return True
    return False


async def verify_mac(host: Host, ex: Exchange) -> None:
    """The MAC under the current MAK; failing that, under the pending MAK of a sign-on the
    terminal has not proven yet, which this request then proves (host/flow/session_guard.py);
    failing that, once more with the terminal's record read again (a sign-on another worker
    handled changes the keys behind this worker's cache)."""
    mac = ex.request.get(64)
    if mac:
        data = terminal_codec.mac_data(ex.envelope.payload)
        try:
            if await _mac_proves_keys(host, ex, data, mac) or (
                await fresher_terminal(host, ex) and await _mac_proves_keys(host, ex, data, mac)
            ):
                ex.mac_ok = True
                return
        except HsmUnavailable as exc:
            raise Decline(codes.SYSTEM_MALFUNCTION, f"HSM unavailable: {exc}") from exc
    terminal = ex.terminal
    why = "MAC verification failed" if mac else "no MAC"
    host.security.record("mac_failed", peer=ex.conn.peer, tid=terminal.tid, detail=why)
    raise Decline(codes.MAC_FAILED, why, processing=SIGN_ON_AGAIN)


def field60(ex: Exchange) -> Field60:
    """Field 60 of the request, parsed once per exchange (several steps read it); raises
    ValueError when it is malformed, as ``Field60.parse`` does."""
    if ex.f60 is None:
        ex.f60 = Field60.parse(str(ex.request.get(60, "")))
    return ex.f60


async def check_batch(host: Host, ex: Exchange) -> None:
    try:
        f60 = field60(ex)
    except ValueError as exc:
        raise Decline(codes.FORMAT_ERROR, f"field 60: {exc}") from exc
    if f60.batch != ex.terminal.current_batch and not (
        await fresher_terminal(host, ex) and f60.batch == ex.terminal.current_batch
    ):
        raise Decline(
            codes.SIGN_ON_AGAIN,
            f"batch {f60.batch} but host has {ex.terminal.current_batch}",
            processing=SIGN_ON_AGAIN,
        )


async def check_amount(host: Host, ex: Exchange) -> None:
    amount = ex.request.get(4)
    if amount is None or not str(amount).isdigit() or int(amount) <= 0:
        raise Decline(codes.INVALID_AMOUNT, "amount missing or zero")
    if str(ex.request.get(49, "156")) != "156":
        raise Decline(codes.INVALID_AMOUNT, "unsupported currency")


# -- card, route, PIN ------------------------------------------------------------------------


def card_pan(host: Host, ex: Exchange) -> str:
    """The PAN from field 2, else from track 2 (decrypting it with the TDK when 53 says so)."""
    if ex.card.pan:
        return ex.card.pan
    field2 = ex.request.get(2)
    pan = str(field2) if field2 else None
    if not pan:
        track = ex.card.track2 or _clear_track2(host, ex)
        pan = track.split("=", 1)[0] if track else None
    if not pan or not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise Decline(codes.INVALID_CARD, "no usable PAN")
    ex.card.pan = pan
    return pan


def card_fingerprint(host: Host, ex: Exchange) -> str:
    """The keyed hash of the card's PAN, computed once per exchange (the risk check and the
    journal row both need it)."""
    if ex.card.fingerprint is None:
        ex.card.fingerprint = host.fingerprint(card_pan(host, ex))
    return ex.card.fingerprint


def _track_encrypted(ex: Exchange) -> bool:
    security = str(ex.request.get(53, ""))
    return len(security) >= 3 and security[2] == "1"


async def open_track(host: Host, ex: Exchange) -> None:
    """Decrypt an encrypted track 2 (53 digit 3 = 1) with the terminal's TDK through the HSM
    (over the network with ``hsm.kind = "network"``), once; the steps after it read the clear
    track from the exchange. It runs after the MAC check, so a request nobody authenticated
    never gets the HSM to open a track."""
    track = ex.request.get(35)
    if not track or not _track_encrypted(ex):
        return
    if not ex.terminal.tdk_token:
        raise Decline(codes.SECURITY_FAILURE, "encrypted track but no TDK")
    try:
        clear = await host.hsm.decrypt_track(host.token(ex.terminal.tdk_token), str(track))
    except HsmUnavailable as exc:
        raise Decline(codes.SYSTEM_MALFUNCTION, f"HSM unavailable: {exc}") from exc
    except KeysError as exc:
        raise Decline(codes.SECURITY_FAILURE, "track decryption failed") from exc
    ex.card.track2 = clear


def _clear_track2(host: Host, ex: Exchange) -> str | None:
    track = ex.request.get(35)
    if not track:
        return None
    if _track_encrypted(ex):  # every flow that reads a card runs open_track first
        raise Decline(codes.SECURITY_FAILURE, "encrypted track not opened")
    ex.card.track2 = str(track)
    return ex.card.track2


async def select_route(host: Host, ex: Exchange) -> None:
    pan = card_pan(host, ex)
    link = host.router.link_for(pan)
    if link is None or link not in host.links:
        raise Decline(codes.NO_SUCH_ISSUER, f"no route for {mask_pan(pan)}")
    ex.link = link


def _dukpt_source(bdk: KeyToken, ksn: bytes) -> DukptSource:
    """A 10-byte KSN is TDES DUKPT (X9.24-1). A 12-byte one is AES DUKPT (X9.24-3): field 52
    holds 8 bytes, so the PIN pad enciphers format 0 under its 2TDEA PIN working key
    (docs/terminal-dialect.md)."""
    if len(ksn) == 12:
        return DukptSource(bdk, ksn, fmt=0, working_key="TDES2")
    return DukptSource(bdk, ksn)


async def translate_pin(host: Host, ex: Exchange) -> None:
    block = ex.request.get(52)
    if block is None:
        return
    if not isinstance(block, bytes):  # the dialect's 52 is binary: the codec gives bytes
        raise Decline(codes.FORMAT_ERROR, "field 52 is not binary")
    pan = card_pan(host, ex)
    zpk = host.zpks.get(_route(ex))
    if zpk is None:
        raise Decline(codes.SECURITY_FAILURE, f"no ZPK for link {ex.link}")
    terminal = ex.terminal
    try:
        if terminal.key_mode == "dukpt":
            ksn = ex.request.get(62)
            if not isinstance(ksn, bytes) or len(ksn) not in (10, 12):
                raise Decline(codes.PIN_FORMAT_ERROR, "DUKPT terminal sent no KSN in 62")
            if not terminal.bdk_token:
                raise Decline(codes.SECURITY_FAILURE, "DUKPT terminal without a BDK")
            source: KeyToken | DukptSource = _dukpt_source(host.token(terminal.bdk_token), ksn)
        else:
            if not terminal.pik_token:
                raise Decline(
                    codes.SECURITY_FAILURE, "no PIK: sign on first", processing=SIGN_ON_AGAIN
                )
            source = host.token(terminal.pik_token)
        ex.translated_pin = await host.hsm.translate_pin(block, pan, source, zpk)
    except Decline:
        raise
    except HsmUnavailable as exc:
        raise Decline(codes.SYSTEM_MALFUNCTION, f"HSM unavailable: {exc}") from exc
    except PinError as exc:  # the block itself: its format, or a PIN it cannot hold
        raise Decline(codes.PIN_FORMAT_ERROR, "PIN translation failed: PinError") from exc
    except KeysError as exc:  # a key, a usage rule, a KSN: the security processing failed
        reason = f"PIN translation failed: {type(exc).__name__}"
        raise Decline(codes.SECURITY_FAILURE, reason) from exc


# -- journal -----------------------------------------------------------------------------------


def _card_group(host: Host, pan: str | None) -> str:
    if pan is None:
        return "domestic"
    return "domestic" if pan.startswith(host.settings.acquirer.domestic_bins) else "foreign"


def moment(host: Host, ex: Exchange) -> Moment:
    """The host's clock for this exchange, read once: every field and the business date of one
    exchange come from the same second (and the clock is read once, not five times)."""
    if ex.moment is None:
        ex.moment = host.moment()
    return ex.moment


def new_transaction(host: Host, ex: Exchange) -> NewTransaction:
    """The journal row for this request. Field 7 of the issuer request is fixed here and kept
    in ``extra`` so a later void, completion or reversal names this one exactly in 90 (and 41,
    when the issuer knows the row under another terminal)."""
    req = ex.request
    pan = ex.card.pan
    now = moment(host, ex)
    ex.business_date = now.business_date
    if ex.issuer.transmission is None:
        ex.issuer.transmission = now.transmission
    f60 = field60(ex)
    original = ex.original.row
    return NewTransaction(
        tid=ex.terminal.tid,
        mid=ex.terminal.mid,
        batch=f60.batch,
        stan=str(req[11]),
        business_date=journal_date(now.business_date),
        txn_type=ex.txn.name,
        mti=req.mti,
        amount=int(req.get(4, "0") or 0),
        currency=str(req.get(49, "156")),
        processing_code=str(req.get(3, "")),
        condition_code=str(req.get(25, "")),
        pan_masked=mask_pan(pan) if pan else None,
        pan_fingerprint=card_fingerprint(host, ex) if pan else None,
        card_group=ex.card.group or _card_group(host, pan),
        issuer_link=ex.link,
        original_id=original.id if original is not None else None,
        extra=_extra(ex),
        master_tid=ex.terminal.master_tid,
        channel=ex.channel,
    )


def _extra(ex: Exchange) -> dict[str, str | None]:
    """What a later reversal must send again exactly: field 7, and 41 when the issuer knows
    this row under another terminal (a master's void of its secondary's sale); the channel of
    a QR sale; and a transfer's payee as the journal keeps it: masked 6+4, never clear."""
    extra: dict[str, str | None] = {"f7": ex.issuer.transmission}
    if ex.issuer.tid is not None:
        extra["issuer_tid"] = ex.issuer.tid
    if ex.channel == "qr":
        extra["channel"] = "qr"
    if ex.payee_pan:
        extra["payee"] = mask_pan(ex.payee_pan)
    return extra


async def insert_transaction(host: Host, ex: Exchange, txn: NewTransaction) -> int:
    """Journal ``txn``; when a step set ``ex.original.guard`` (a void, refund or completion
    limited by its original), the check against the original's other children and the insert
    are one database transaction."""
    guard = ex.original.guard
    if guard is None:
        journal_id: int = await host.store.insert_pending(txn)
        return journal_id
    try:
        journal_id = await host.store.insert_pending_child(
            txn,
            sibling_types=guard.sibling_types,
            statuses=guard.statuses,
            max_amount=guard.max_amount,
        )
    except OriginalConflict as exc:
        raise Decline(guard.code, exc.reason) from exc
    return journal_id


async def journal_request(host: Host, ex: Exchange) -> None:
    """The request is durable before anything leaves for the issuer; the unique key
    (terminal, batch, STAN, business date) turns a repeated request into 94."""
    txn = new_transaction(host, ex)
    try:
        journal_id = ex.journal.id = await insert_transaction(host, ex, txn)
    except DuplicateTransaction as exc:
        raise Decline(codes.DUPLICATE, "duplicate (terminal, batch, STAN, date)") from exc
    ex.rrn = host.rrn_for(journal_id, moment(host, ex).business_date)


async def journal_outcome(host: Host, ex: Exchange) -> None:
    """The outcome is durable before the terminal gets its answer."""
    entry = ex.journal
    if entry.id is None or entry.outcome_recorded:
        return
    code = ex.code or "96"
    status = "approved" if code == "00" else entry.failure
    await host.store.record_outcome(
        entry.id,
        status=status,
        response_code=code,
        auth_code=ex.auth_code,
        rrn=ex.rrn,
        settlement_date=_journal_day(ex),
        # a void / cancel / completion void marks what it undoes, in the same transaction
        original_status=ex.original.marks if code == "00" else None,
        extra=entry.outcome_extra,
    )


def _journal_day(ex: Exchange) -> str | None:
    return journal_date(ex.business_date) if ex.business_date is not None else None


# -- the issuer ------------------------------------------------------------------------------


async def authorize(host: Host, ex: Exchange) -> None:
    """Send to the issuer and wait. 91 only when the request certainly never left (link down).
    Once any byte may have left, every outcome but a matched answer is unknown: the issuer may
    have debited the card, so the answer is 98 and a reversal is queued (store-and-forward),
    whether the link timed out, broke, failed, or the host is stopping during the wait."""
    link = _card_link(host, ex)
    msg = link.protocol.request_for(
        host, ex, ex.issuer.mti or ex.request.mti, ex.issuer.extra,
        pan=card_pan(host, ex), now=moment(host, ex),
    )  # fmt: skip
    ex.issuer.request = msg
    try:
        resp = await link.request(msg)
    except LinkDown as exc:
        ex.journal.failure = "error"
        raise Decline(codes.ISSUER_DOWN, f"link {ex.link} down") from exc
    except OutcomeUnknown as exc:
        await outcome_unknown(host, ex, f"98 {type(exc).__name__}")
        raise Decline(
            codes.OUTCOME_UNKNOWN, f"no answer from {ex.link}: {type(exc).__name__}"
        ) from exc
    except BaseException as exc:  # cancelled (host stopping) or a bug: the request may be out
        with trio.CancelScope(shield=True):
            await outcome_unknown(host, ex, f"98 {type(exc).__name__} while waiting")
        raise
    ex.issuer.response = resp
    ex.auth_code = str(resp.get(38, "")) or None
    code = str(resp.get(39, "96"))
    if 54 in resp:
        ex.response_fields[54] = balances_for_terminal(str(resp[54]), ex.terminal)
    for n in (23, 55):  # IC: issuer authentication data / scripts, card sequence number
        if n in resp:
            ex.response_fields[n] = resp[n]
    if code != "00":
        raise Decline(code, "issuer declined")
    ex.code = "00"


def _route(ex: Exchange) -> str:
    """The link ``select_route`` chose (every issuer flow routes before it asks)."""
    if ex.link is None:
        raise RuntimeError("no route selected before the issuer step")
    return ex.link


def _card_link(host: Host, ex: Exchange) -> IssuerLink:
    """The card issuer's link the route chose (a wallet link takes no card request)."""
    link = host.links[_route(ex)]
    if isinstance(link, WalletLink):
        raise RuntimeError(f"link {ex.link} is a wallet link: no card request goes there")
    return link


async def outcome_unknown(host: Host, ex: Exchange, reason: str) -> None:
    """Journal the unknown outcome (timeout, 98) and, for a type the issuer can be asked to
    undo, queue its reversal in the same step: durable before the terminal hears 98."""
    ex.code = "98"
    ex.journal.failure = "timeout"
    if ex.txn.reversible:
        await queue_reversal(host, ex, reason=reason)
        ex.journal.outcome_recorded = True
    log.warning("issuer_outcome_unknown", link=ex.link, tid=ex.terminal.tid,
                stan=ex.request.get(11), reason=reason, reversal=ex.txn.reversible)  # fmt: skip


BALANCE_ENTRY = 20  # account type n2, amount type n2, currency an3, sign C/D, amount n12


def balances_for_terminal(balances: str, terminal: Terminal) -> str:
    """Field 54 as this terminal can take it. Many terminals have a 20-byte field 54 and reject
    the whole answer when it holds two entries (40), so the default is one entry: the available
    balance (amount type 02) when the issuer sent it, else the first; a terminal whose profile
    asks for two gets both."""
    if (getattr(terminal, "balance_entries", None) or 1) >= 2:
        return balances
    entries = [balances[i : i + BALANCE_ENTRY] for i in range(0, len(balances), BALANCE_ENTRY)]
    available = [e for e in entries if e[2:4] == "02"]
    return (available or entries)[0] if entries else balances


async def queue_reversal(host: Host, ex: Exchange, reason: str) -> None:
    """Record the unknown outcome and queue the reversal, exactly once, in one transaction."""
    journal_id = ex.journal.id
    if journal_id is None or ex.rrn is None:
        raise RuntimeError("a reversal needs the journal row and RRN of its request")
    original = await host.store.get_transaction(journal_id)
    link = _route(ex)
    payload = undo_payload(host, link, original, ex.rrn)
    if payload is None:  # a QR refund: money already went back, it stays
        log.warning("not_undoable", txn=journal_id, type=original.txn_type, reason=reason)
        return
    await host.store.record_unknown_outcome(
        journal_id, reason, link=link, payload=payload, rrn=ex.rrn,
        settlement_date=_journal_day(ex),
    )  # fmt: skip
    host.saf_wakeup()


# -- the answer ----------------------------------------------------------------------------------

MAC_MTI_CLASSES = ("01", "02", "04")


async def respond(host: Host, ex: Exchange) -> None:
    """Build the response: echo 3, 11, 41, 42 (4 when approved), the host's time, settlement
    date, RRN, auth code and card organisation; MAC it with the terminal's MAK."""
    req = ex.request
    code = ex.code or "96"
    now = moment(host, ex)
    extra: dict[int, FieldValue | None] = {
        12: now.hhmmss,
        13: now.mmdd,
        32: host.acquirer_id,
    }
    if ex.business_date is not None:
        extra[15] = settlement_mmdd(ex.business_date)
    for n in (2, 14, 22, 25, 49, 60):
        if n in req and n not in ex.response_fields:
            extra[n] = req[n]
    if ex.rrn:
        extra[37] = ex.rrn
    if ex.auth_code:
        extra[38] = ex.auth_code
    if req.mti[:2] in MAC_MTI_CLASSES:
        extra[63] = host.settings.acquirer.card_organisation
    extra.update(ex.response_fields)
    ex.response = req.response(code, extra=extra)


async def encode_response(host: Host, ex: Exchange) -> bytes:
    """The answer's bytes, MACed under the terminal's MAK when its class carries a MAC. The MAC
    is computed over the encoded message, so encode first, then await the HSM, then append.
    With the HSM unreachable an approval raises HsmUnavailable (the dispatcher answers 96 and
    reverses it); a decline goes without a MAC."""
    resp = ex.response
    if resp is None:
        raise RuntimeError(f"flow {ex.txn.name} built no response")
    terminal = ex.found_terminal  # None when the request was refused before identification
    needs_mac = resp.mti[:2] in MAC_MTI_CLASSES
    if needs_mac and terminal is not None and terminal.mak_token and terminal.signed_on:
        mak = host.token(terminal.mak_token)
        head = terminal_codec.mac_head(resp)
        try:
            return terminal_codec.with_mac(head, await host.hsm.generate_mac(mak, head))
        except HsmUnavailable:
            if ex.approved:
                raise
            # A decline may go without a MAC (the terminal accepts that, as for a MAC error):
            # during an outage the terminal gets its 96 without another error line per answer.
    return terminal_codec.encode(resp.without(64))


async def checkpoint(host: Host, ex: Exchange) -> None:
    """Give other connections a turn between CPU-heavy steps under load."""
    await trio.lowlevel.checkpoint()
