"""The issuer-protocol seam (h11's shape): everything that depends on how an issuer speaks, with
no I/O. A link (``host.issuer.link``) keeps the socket, backoff, waiters and outbox; a protocol
object supplies framing, encode/decode, the key that pairs an answer with its request, the
sign-on and echo messages, the request for an exchange and the reversal for a journal row.

ISO 8583:1987 (``Iso8583``, the issuer contract in docs/issuer-contract.md) is the protocol of
today's links; ``links.NAME.protocol`` names one of ``PROTOCOLS``. A second network, or a QR
wallet over HTTP, is another class with the same methods.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol

from codec import issuer as issuer_codec
from codec.framing import LengthPrefixedDecoder, prefix_length
from codec.issuer import original_data
from codec.message import FieldValue, Message
from host.issuer.wallet_protocol import WALLET

if TYPE_CHECKING:
    from host.clock import Moment
    from host.flow.engine import Exchange


class FrameDecoder(Protocol):
    def feed(self, data: bytes) -> list[bytes]: ...


class IssuerProtocol(Protocol):
    name: str

    def frame(self, msg: Message) -> bytes: ...
    def decoder(self, max_frame: int) -> FrameDecoder: ...
    def encode(self, msg: Message) -> bytes: ...
    def decode(self, body: bytes) -> Message: ...
    def match_key(self, msg: Message) -> Hashable: ...
    def management(self, code: str, stan: str, transmission: str) -> Message: ...
    def accepted(self, answer: Message) -> bool: ...
    def request_for(
        self, host: Any, ex: Exchange, mti: str, extra: dict[int, FieldValue] | None, *,
        pan: str, now: Moment,
    ) -> Message: ...  # fmt: skip
    def reversal_for(self, host: Any, original: Any, rrn: str) -> Message: ...
    def undoable(self, original: Any) -> bool: ...
    def repeat(self, msg: Message) -> Message: ...


def original_f7(original: Any) -> str:
    """Field 7 the host sent with a journalled request (kept in ``extra``; older rows: their
    request time)."""
    f7 = (original.extra or {}).get("f7")
    if f7:
        return str(f7)
    transmission = dt.datetime.fromtimestamp(original.requested_at / 1000, dt.UTC)
    return transmission.strftime("%m%d%H%M%S")


class Iso8583:
    """ISO 8583:1987 with a 2-byte length prefix: answers are paired by MTI class, STAN and
    terminal (never STAN alone: two terminals may use one STAN at once); 0800 with 70 for
    sign-on (001) and echo (301); 0420 (0421 repeat) reversals naming the original in 90."""

    name = "iso8583"

    def frame(self, msg: Message) -> bytes:
        return prefix_length(issuer_codec.encode(msg))

    def decoder(self, max_frame: int) -> FrameDecoder:
        return LengthPrefixedDecoder(max_frame)

    def encode(self, msg: Message) -> bytes:
        return issuer_codec.encode(msg)

    def decode(self, body: bytes) -> Message:
        return issuer_codec.decode(body)

    def match_key(self, msg: Message) -> tuple[str, str, str]:
        """MTI class (first 3 digits, the function digit folded so 0200 and 0210 match, and
        0401/0410 too), STAN and terminal."""
        mti = msg.mti
        cls = mti[:2] + str(int(mti[2]) & ~1)
        return cls, str(msg.get(11, "")), str(msg.get(41, ""))

    def management(self, code: str, stan: str, transmission: str) -> Message:
        return Message("0800", {7: transmission, 11: stan, 70: code})

    def accepted(self, answer: Message) -> bool:
        return answer.get(39) == "00"

    def request_for(
        self, host: Any, ex: Exchange, mti: str, extra: dict[int, FieldValue] | None, *,
        pan: str, now: Moment,
    ) -> Message:  # fmt: skip
        """The issuer request for this exchange (docs/issuer-contract.md); ``pan`` and ``now``
        are the flow's own readings of the card and the clock."""
        req = ex.request
        fields: dict[int, FieldValue] = {
            2: pan,
            3: str(req.get(3, "000000")),
            7: ex.issuer.transmission or now.transmission,
            11: str(req[11]),
            12: now.hhmmss,
            13: now.mmdd,
            18: ex.merchant.mcc,
            22: str(req.get(22, "000"))[:3],
            25: str(req.get(25, "00")),
            32: host.acquirer_id,
            37: ex.rrn,
            # a master's void of its secondary's sale goes out under the sale's terminal
            41: ex.issuer.tid or ex.terminal.tid,
            42: ex.terminal.mid,
            43: f"{ex.merchant.name[:40]:<40}",
            49: str(req.get(49, "156")),
        }
        for n in (4, 14, 23):
            if n in req:
                fields[n] = str(req[n])
        track = ex.card.track2
        if track:
            fields[35] = track
        if ex.translated_pin is not None:
            fields[52] = ex.translated_pin
            fields[53] = "2600000000000000"
        if 55 in req:
            fields[55] = req[55]
        if ex.payee_pan:  # a transfer: the card to credit (docs/issuer-contract.md)
            fields[103] = ex.payee_pan
        fields.update(extra or {})
        return Message(mti, fields)

    def reversal_for(self, host: Any, original: Any, rrn: str) -> Message:
        """The 0420 advice that undoes ``original``. It carries no PAN or track: the issuer
        finds the original by terminal + RRN (or 90), and the store-and-forward queue never
        holds card data."""
        f7 = original_f7(original)
        fields: dict[int, FieldValue] = {
            3: original.processing_code or "000000",
            4: f"{original.amount:012d}",
            7: f7,
            11: original.stan,
            25: original.condition_code or "00",
            32: host.acquirer_id,
            37: rrn,
            41: (original.extra or {}).get("issuer_tid") or original.tid,
            42: original.mid,
            49: original.currency,
            90: original_data(original.mti, original.stan, f7, host.acquirer_id),
        }
        return Message("0420", fields)

    def repeat(self, msg: Message) -> Message:
        """A store-and-forward item sent again: 0420 -> 0421."""
        return msg.with_mti(msg.mti[:3] + "1")

    def acknowledges(self, answer: Message) -> bool:
        """Any 0430 acknowledges a reversal (an issuer acknowledges one of an unknown original
        too)."""
        return True

    def result_code(self, answer: Message) -> Any:
        return answer.get(39)

    def undoable(self, original: Any) -> bool:
        return True


ISO8583 = Iso8583()
PROTOCOLS: dict[str, Any] = {ISO8583.name: ISO8583, WALLET.name: WALLET}


class UndoProtocol(Protocol):
    """What undoing a journal row needs of any link's protocol, a card issuer's or a wallet's
    (host.issuer.wallet_protocol): whether the row can be undone, the message that undoes it,
    and its bytes for the store-and-forward queue."""

    def undoable(self, original: Any) -> bool: ...
    def reversal_for(self, host: Any, original: Any, rrn: str) -> Any: ...
    def encode(self, msg: Any) -> bytes: ...


def protocol_for(host: Any, link_name: str | None) -> UndoProtocol:
    """The protocol of a link (a journal row names its link); the default for a link that is
    no longer configured, so its pending reversals can still be built."""
    link = host.links.get(link_name) if link_name else None
    protocol: UndoProtocol = link.protocol if link is not None else ISO8583
    return protocol


def undo_payload(host: Any, link_name: str | None, original: Any, rrn: str) -> bytes | None:
    """The bytes store-and-forward sends to undo ``original`` on its link (a reversal, or a
    wallet's cancel); None when nothing undoes it (a QR refund: the money went back)."""
    protocol = protocol_for(host, link_name)
    if not protocol.undoable(original):
        return None
    return protocol.encode(protocol.reversal_for(host, original, rrn))
