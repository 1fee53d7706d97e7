"""The wallet protocol (docs/qr.md): the issuer-protocol seam's second protocol, sans-IO.

It builds the calls the QR flows make (pay by code, order, query, cancel, refund), signs a call
into a gateway body and reads a signed answer, decides what a reply means for the terminal, and
gives store-and-forward what it needs: the call that undoes a journal row (``reversal_for``:
cancel, which closes an unpaid order or refunds a paid one), its stored form, and whether a
reply acknowledges it. The link (``host.issuer.wallet_link``) keeps the HTTP client.
"""

from __future__ import annotations

from typing import Any

from codec import responses as codes
from codec import txntypes
from codec import wallet as w
from codec.errors import CodecError
from keys import rsa_sign

# A journal row of a QR sale, which cancel undoes; the rest (voids, refunds) move money back
# to the customer, which no call takes back.
SALES = txntypes.names(lambda t: t.channel == "qr" and t.settles == "debit")

# What a final refusal (40004) means to the terminal.
DECLINES = {
    w.CODE_INVALID: codes.INVALID_CARD,
    w.CODE_USED: codes.INVALID_CARD,
    w.CODE_EXPIRED: codes.EXPIRED_CARD,
    w.BALANCE_NOT_ENOUGH: codes.INSUFFICIENT_FUNDS,
    w.TRADE_HAS_CLOSE: codes.INVALID_TRANSACTION,
    w.TRADE_STATUS_ERROR: codes.INVALID_TRANSACTION,
    w.TRADE_NOT_EXIST: codes.ORIGINAL_NOT_FOUND,
    w.CONTEXT_INCONSISTENT: codes.DUPLICATE,
    w.REFUND_EXCEEDED: codes.AMOUNT_LIMIT,
}


class BadSignature(CodecError):
    """The platform's answer or notification does not carry its valid signature."""


class NotUndoable(Exception):
    """A refund (a QR void or refund) cannot be taken back at the wallet."""


class WalletProtocol:
    name = "wallet"

    # -- store-and-forward -------------------------------------------------------------------
    def encode(self, call: w.WalletCall) -> bytes:
        return call.to_bytes()

    def decode(self, data: bytes) -> w.WalletCall:
        return w.WalletCall.from_bytes(bytes(data))

    def repeat(self, call: w.WalletCall) -> w.WalletCall:
        """Every call is idempotent on its order / request number: sent again as it was."""
        return call

    def acknowledges(self, reply: w.WalletReply) -> bool:
        """A cancel or forwarded refund is done when the platform says so, or refuses it for
        good (40004); an unknown result (20000) or a refused signature (40002) is tried again."""
        return reply.code in (w.SUCCESS, w.BUSINESS_FAILED)

    def result_code(self, reply: w.WalletReply) -> str:
        return reply.code

    def undoable(self, original: Any) -> bool:
        return original.txn_type in SALES

    def reversal_for(self, host: Any, original: Any, rrn: str) -> w.WalletCall:
        """The cancel that undoes a QR sale whatever happened to it; a refund cannot be undone."""
        if not self.undoable(original):
            raise NotUndoable(f"{original.txn_type} {original.id} moved money back already")
        return self.cancel(w.order_number(original.business_date, original.id))

    # -- the calls ------------------------------------------------------------------------------
    def pay(self, out_trade_no: str, amount: int, code: str, *, subject: str, store_id: str,
            terminal_id: str) -> w.WalletCall:  # fmt: skip
        return w.WalletCall("trade.pay", {
            "out_trade_no": out_trade_no, "scene": "bar_code", "auth_code": code,
            "total_amount": w.yuan(amount), "subject": subject, "store_id": store_id,
            "terminal_id": terminal_id,
        })  # fmt: skip

    def precreate(self, out_trade_no: str, amount: int, validity_s: int, *, subject: str,
                  store_id: str, terminal_id: str) -> w.WalletCall:  # fmt: skip
        return w.WalletCall("trade.precreate", {
            "out_trade_no": out_trade_no, "total_amount": w.yuan(amount), "subject": subject,
            "store_id": store_id, "terminal_id": terminal_id,
            "timeout_express": f"{int(validity_s)}s",
        })  # fmt: skip

    def query(self, out_trade_no: str) -> w.WalletCall:
        return w.WalletCall("trade.query", {"out_trade_no": out_trade_no})

    def cancel(self, out_trade_no: str) -> w.WalletCall:
        return w.WalletCall("trade.cancel", {"out_trade_no": out_trade_no})

    def refund(self, out_trade_no: str, request_no: str, amount: int) -> w.WalletCall:
        return w.WalletCall("trade.refund", {
            "out_trade_no": out_trade_no, "out_request_no": request_no,
            "refund_amount": w.yuan(amount),
        })  # fmt: skip

    # -- bytes ------------------------------------------------------------------------------------
    def request_body(self, call: w.WalletCall, *, app_id: str, key: rsa_sign.SigningKey,
                     timestamp: str, notify_url: str | None) -> bytes:  # fmt: skip
        import json

        params = w.request_params(app_id, call, timestamp=timestamp, notify_url=notify_url)
        params["sign"] = rsa_sign.sign(key, params)
        return json.dumps(params).encode()

    def read_reply(self, method: str, body: bytes, platform: rsa_sign.VerifyKey) -> w.WalletReply:
        response, signature = w.parse_response(method, body)
        if not rsa_sign.verify(platform, response, signature):
            raise BadSignature("the answer's signature does not verify", field="sign")
        return w.WalletReply(method, str(response["code"]), response)

    # -- meaning ----------------------------------------------------------------------------------
    def decline_code(self, reply: w.WalletReply) -> str:
        """The terminal's code for a final refusal: 40004 by its sub_code; a refused request
        (40002: our signature or parameters) is a system malfunction on our side."""
        if reply.code == w.BUSINESS_FAILED:
            return DECLINES.get(reply.sub_code, codes.DO_NOT_HONOUR)
        return codes.SYSTEM_MALFUNCTION

    def settled(self, reply: w.WalletReply) -> str | None:
        """ "paid", "declined" (final, nothing paid), or None when the outcome is still open
        (user paying, unknown, not arrived yet)."""
        if reply.code == w.SUCCESS:
            status = reply.trade_status
            if status in w.PAID:
                return "paid"
            if status == w.TRADE_CLOSED:
                return "declined"
            return None
        if reply.code == w.BUSINESS_FAILED and reply.sub_code not in (
            w.TRADE_NOT_EXIST, w.SYSTEM_ERROR,
        ):  # fmt: skip
            return "declined"
        if reply.code == w.INVALID_PARAMETER:
            return "declined"
        return None


WALLET = WalletProtocol()
