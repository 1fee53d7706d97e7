"""Flow steps for financial messages. Each is small, named for what it checks, and either
updates the exchange or raises ``Decline(code)``.

Response codes used here (named from specs/response_codes.toml): 03 merchant, 13 amount,
14 card, 15 no route, 30 format, 58 terminal not permitted, 77 sign on again / batch out of
step, 91 issuer down, 94 duplicate, 96 system malfunction, 97 unknown terminal, 98 outcome
unknown (reversed), 99 PIN format, A0 MAC, A7 security.
"""

from __future__ import annotations

import structlog
import trio

from codec import responses as codes
from codec import terminal as terminal_codec
from codec.dump import mask_pan
from codec.message import FieldValue, Message
from codec.subfields import Field60
from host.flow.engine import Decline, Exchange
from host.flow.session_guard import mac_matches, try_pending_keys
from host.hsm import HsmUnavailable
from host.issuer.link import LinkDown, OutcomeUnknown
from host.store.errors import DuplicateTransaction, OriginalConflict
from host.store.records import NewTransaction
from keys.errors import KeysError
from keys.hsm import DukptSource

log = structlog.get_logger("poshost.flow")

SIGN_ON_AGAIN = 3  # header processing-requirement nibble


# -- who is speaking -------------------------------------------------------------------------


async def identify_terminal(host, ex: Exchange) -> None:
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


async def fresher_terminal(host, ex: Exchange) -> bool:
    """The request disagrees with the cached terminal record (not signed on, another MAK, another
    batch): read the record again, since another process may have changed it (a sign-on or a
    settlement handled by another worker of this host). True when the record was re-read and
    differs."""
    fresh = await host.estate.fresh_terminal(ex.terminal.tid)
    if fresh is None or fresh == ex.terminal:
        return False
    ex.terminal = fresh
    return True


async def require_session(host, ex: Exchange) -> None:
    if not ex.terminal.signed_on or not ex.terminal.mak_token:
        if await fresher_terminal(host, ex) and ex.terminal.signed_on and ex.terminal.mak_token:
            return
        raise Decline(codes.SIGN_ON_AGAIN, "terminal not signed on", processing=SIGN_ON_AGAIN)


async def _mac_proves_keys(host, ex: Exchange, data: bytes, mac) -> bool:
    terminal = ex.terminal
    if await mac_matches(host, terminal.mak_token, data, mac):
        ex.conn.proven_mak = terminal.mak_token
        return True
    if terminal.pending_mak_token and await try_pending_keys(host, ex, data, mac):
        ex.conn.proven_mak = ex.terminal.mak_token
        return True
    return False


async def verify_mac(host, ex: Exchange) -> None:
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
    f60 = ex.notes.get("f60")
    if f60 is None:
        f60 = ex.notes["f60"] = Field60.parse(str(ex.request.get(60, "")))
    return f60


async def check_batch(host, ex: Exchange) -> None:
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


async def check_amount(host, ex: Exchange) -> None:
    amount = ex.request.get(4)
    if amount is None or not str(amount).isdigit() or int(amount) <= 0:
        raise Decline(codes.INVALID_AMOUNT, "amount missing or zero")
    if str(ex.request.get(49, "156")) != "156":
        raise Decline(codes.INVALID_AMOUNT, "unsupported currency")


# -- card, route, PIN ------------------------------------------------------------------------


def card_pan(host, ex: Exchange) -> str:
    """The PAN from field 2, else from track 2 (decrypting it with the TDK when 53 says so)."""
    cached = ex.notes.get("pan")
    if cached:
        return cached
    pan = ex.request.get(2)
    if not pan:
        track = ex.notes.get("track2") or _clear_track2(host, ex)
        pan = track.split("=", 1)[0] if track else None
    if not pan or not str(pan).isdigit() or not 12 <= len(str(pan)) <= 19:
        raise Decline(codes.INVALID_CARD, "no usable PAN")
    ex.notes["pan"] = str(pan)
    return str(pan)


def card_fingerprint(host, ex: Exchange) -> str:
    """The keyed hash of the card's PAN, computed once per exchange (the risk check and the
    journal row both need it)."""
    fingerprint = ex.notes.get("fingerprint")
    if fingerprint is None:
        fingerprint = ex.notes["fingerprint"] = host.fingerprint(card_pan(host, ex))
    return fingerprint


def _clear_track2(host, ex: Exchange) -> str | None:
    track = ex.request.get(35)
    if not track:
        return None
    security = str(ex.request.get(53, ""))
    if len(security) >= 3 and security[2] == "1":
        if not ex.terminal.tdk_token:
            raise Decline(codes.SECURITY_FAILURE, "encrypted track but no TDK")
        try:
            track = host.local_hsm.decrypt_track(host.token(ex.terminal.tdk_token), str(track))
        except KeysError as exc:
            raise Decline(codes.SECURITY_FAILURE, "track decryption failed") from exc
    ex.notes["track2"] = str(track)
    return str(track)


async def select_route(host, ex: Exchange) -> None:
    pan = card_pan(host, ex)
    link = host.router.link_for(pan)
    if link is None or link not in host.links:
        raise Decline(codes.NO_SUCH_ISSUER, f"no route for {mask_pan(pan)}")
    ex.link = link


async def translate_pin(host, ex: Exchange) -> None:
    block = ex.request.get(52)
    if block is None:
        return
    pan = card_pan(host, ex)
    zpk = host.zpks.get(ex.link)
    if zpk is None:
        raise Decline(codes.SECURITY_FAILURE, f"no ZPK for link {ex.link}")
    terminal = ex.terminal
    try:
        if terminal.key_mode == "dukpt":
            ksn = ex.request.get(62)
            if not isinstance(ksn, bytes) or len(ksn) not in (10, 12):
                raise Decline(codes.PIN_FORMAT_ERROR, "DUKPT terminal sent no KSN in 62")
            source = DukptSource(host.token(terminal.bdk_token), ksn)
        else:
            if not terminal.pik_token:
                raise Decline(
                    codes.SECURITY_FAILURE, "no PIK: sign on first", processing=SIGN_ON_AGAIN
                )
            source = host.token(terminal.pik_token)
        ex.translated_pin = await host.hsm.translate_pin(bytes(block), pan, source, zpk)
    except Decline:
        raise
    except HsmUnavailable as exc:
        raise Decline(codes.SYSTEM_MALFUNCTION, f"HSM unavailable: {exc}") from exc
    except KeysError as exc:
        code = "99" if "PIN" in type(exc).__name__ or "pin" in str(exc).lower() else "A7"
        raise Decline(code, f"PIN translation failed: {type(exc).__name__}") from exc


# -- journal -----------------------------------------------------------------------------------


def _card_group(host, pan: str | None) -> str:
    if pan is None:
        return "domestic"
    return "domestic" if pan.startswith(host.domestic_bins) else "foreign"


def moment(host, ex: Exchange):
    """The host's clock for this exchange, read once: every field and the business date of one
    exchange come from the same second (and the clock is read once, not five times)."""
    if ex.moment is None:
        ex.moment = host.moment()
    return ex.moment


def new_transaction(host, ex: Exchange) -> NewTransaction:
    """The journal row for this request. Field 7 of the issuer request is fixed here and kept
    in ``extra`` so a later void, completion or reversal names this one exactly in 90."""
    req = ex.request
    pan = ex.notes.get("pan")
    now = moment(host, ex)
    ex.notes["business_day"] = now.business_date
    ex.business_date = now.yyyymmdd
    if "f7" not in ex.notes:
        ex.notes["f7"] = now.transmission
    f60 = field60(ex)
    return NewTransaction(
        tid=ex.terminal.tid,
        mid=ex.terminal.mid,
        batch=f60.batch,
        stan=str(req[11]),
        business_date=ex.business_date,
        txn_type=ex.txn.name,
        mti=req.mti,
        amount=int(req.get(4, "0") or 0),
        currency=str(req.get(49, "156")),
        processing_code=str(req.get(3, "")),
        condition_code=str(req.get(25, "")),
        pan_masked=mask_pan(pan) if pan else None,
        pan_fingerprint=card_fingerprint(host, ex) if pan else None,
        card_group=_card_group(host, pan),
        issuer_link=ex.link,
        original_id=ex.original.id if ex.original is not None else None,
        extra={"f7": ex.notes["f7"]},
    )


async def insert_transaction(host, ex: Exchange, txn: NewTransaction) -> int:
    """Journal ``txn``; when a step set ``ex.notes['guard']`` (a void, refund or completion
    limited by its original), the check against the original's other children and the insert
    are one database transaction."""
    guard = ex.notes.get("guard")
    if guard is None:
        return await host.store.insert_pending(txn)
    try:
        return await host.store.insert_pending_child(txn, **guard["limits"])
    except OriginalConflict as exc:
        raise Decline(guard["code"], exc.reason) from exc


async def journal_request(host, ex: Exchange) -> None:
    """The request is durable before anything leaves for the issuer; the unique key
    (terminal, batch, STAN, business date) turns a repeated request into 94."""
    txn = new_transaction(host, ex)
    try:
        ex.journal_id = await insert_transaction(host, ex, txn)
    except DuplicateTransaction as exc:
        raise Decline(codes.DUPLICATE, "duplicate (terminal, batch, STAN, date)") from exc
    ex.rrn = host.rrn_for(ex.journal_id, ex.notes["business_day"])


async def journal_outcome(host, ex: Exchange) -> None:
    """The outcome is durable before the terminal gets its answer."""
    if ex.journal_id is None or ex.notes.get("outcome_recorded"):
        return
    code = ex.code or "96"
    status = "approved" if code == "00" else ex.notes.get("status", "declined")
    await host.store.record_outcome(
        ex.journal_id,
        status=status,
        response_code=code,
        auth_code=ex.auth_code,
        rrn=ex.rrn,
        settlement_date=ex.business_date,
        # a void / cancel / completion void marks what it undoes, in the same transaction
        original_status=ex.notes.get("original_status") if code == "00" else None,
    )


# -- the issuer ------------------------------------------------------------------------------


async def authorize(host, ex: Exchange) -> None:
    """Send to the issuer and wait. 91 only when the request certainly never left (link down).
    Once any byte may have left, every outcome but a matched answer is unknown: the issuer may
    have debited the card, so the answer is 98 and a reversal is queued (store-and-forward),
    whether the link timed out, broke, failed, or the host is stopping during the wait."""
    link = host.links[ex.link]
    msg = link.protocol.request_for(
        host, ex, ex.notes.get("issuer_mti", ex.request.mti), ex.notes.get("issuer_extra"),
        pan=card_pan(host, ex), now=moment(host, ex),
    )  # fmt: skip
    ex.issuer_request = msg
    try:
        resp = await link.request(msg)
    except LinkDown as exc:
        ex.notes["status"] = "error"
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
    ex.issuer_response = resp
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


async def outcome_unknown(host, ex: Exchange, reason: str) -> None:
    """Journal the unknown outcome (timeout, 98) and, for a type the issuer can be asked to
    undo, queue its reversal in the same step: durable before the terminal hears 98."""
    ex.code = "98"
    ex.notes["status"] = "timeout"
    if ex.txn.reversible:
        await queue_reversal(host, ex, reason=reason)
        ex.notes["outcome_recorded"] = True
    log.warning("issuer_outcome_unknown", link=ex.link, tid=ex.terminal.tid,
                stan=ex.request.get(11), reason=reason, reversal=ex.txn.reversible)  # fmt: skip


BALANCE_ENTRY = 20  # account type n2, amount type n2, currency an3, sign C/D, amount n12


def balances_for_terminal(balances: str, terminal) -> str:
    """Field 54 as this terminal can take it. Many terminals have a 20-byte field 54 and reject
    the whole answer when it holds two entries (40), so the default is one entry: the available
    balance (amount type 02) when the issuer sent it, else the first; a terminal whose profile
    asks for two gets both."""
    if (getattr(terminal, "balance_entries", None) or 1) >= 2:
        return balances
    entries = [balances[i : i + BALANCE_ENTRY] for i in range(0, len(balances), BALANCE_ENTRY)]
    available = [e for e in entries if e[2:4] == "02"]
    return (available or entries)[0] if entries else balances


async def queue_reversal(host, ex: Exchange, reason: str) -> None:
    """Record the unknown outcome and queue the reversal, exactly once, in one transaction."""
    original = await host.store.get_transaction(ex.journal_id)
    protocol = host.links[ex.link].protocol
    payload = protocol.encode(protocol.reversal_for(host, original, ex.rrn))
    await host.store.record_unknown_outcome(
        ex.journal_id, reason, link=ex.link, payload=payload, rrn=ex.rrn,
        settlement_date=ex.business_date,
    )  # fmt: skip
    host.saf_wakeup()


# -- the answer ----------------------------------------------------------------------------------

MAC_MTI_CLASSES = ("01", "02", "04")


async def respond(host, ex: Exchange) -> None:
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
    if ex.business_date:
        extra[15] = ex.business_date[4:]
    for n in (2, 14, 22, 25, 49, 60):
        if n in req and n not in ex.response_fields:
            extra[n] = req[n]
    if ex.rrn:
        extra[37] = ex.rrn
    if ex.auth_code:
        extra[38] = ex.auth_code
    if req.mti[:2] in MAC_MTI_CLASSES:
        extra[63] = host.card_organisation
    extra.update(ex.response_fields)
    ex.notes["response"] = req.response(code, extra=extra)


async def encode_response(host, ex: Exchange) -> bytes:
    """The answer's bytes, MACed under the terminal's MAK when its class carries a MAC. The MAC
    is computed over the encoded message, so encode first, then await the HSM, then append.
    With the HSM unreachable an approval raises HsmUnavailable (the dispatcher answers 96 and
    reverses it); a decline goes without a MAC."""
    resp: Message = ex.notes["response"]
    terminal = ex.terminal
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


async def checkpoint(host, ex: Exchange) -> None:
    """Give other connections a turn between CPU-heavy steps under load."""
    await trio.lowlevel.checkpoint()
