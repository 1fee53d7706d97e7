"""The wallet link's wire shapes (docs/qr.md): HTTP + JSON modelled on the public merchant APIs
of the big QR wallets (Alipay's ``alipay.trade.*`` gateway, WeChat Pay's micropay / native
order). Pure: building and reading the bodies, amounts, order numbers, payment codes and
result codes; signing is ``keys.rsa_sign`` and the I/O is the link's.

A request is one POST of a JSON object to the gateway: ``app_id``, ``method`` (``trade.pay``,
``trade.precreate``, ``trade.query``, ``trade.cancel``, ``trade.close``, ``trade.refund``),
``charset``, ``sign_type`` (RSA2), ``timestamp``, ``version``, optional ``notify_url``, and
``biz_content`` (the business parameters as a JSON string), then ``sign`` over all of them.
The answer is ``{"<method with _>_response": {...}, "sign": "..."}`` signed by the platform
over the response object. An asynchronous notification is a flat JSON object signed the same
way (``sign`` and ``sign_type`` left out of the string).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from codec.errors import CodecError

VERSION = "1.0"
DEMO_APP_ID = "2088000000000001"  # the demo acquirer's application id at wallet-sim
CHARSET = "utf-8"
SIGN_TYPE = "RSA2"
GATEWAY_PATH = "/gateway.do"
METHODS = (
    "trade.pay",  # pay by the customer's payment code (the terminal scanned it)
    "trade.precreate",  # an order whose QR the customer scans
    "trade.query",
    "trade.cancel",  # undo whatever happened: close an unpaid order, refund a paid one
    "trade.close",  # close an unpaid order
    "trade.refund",  # (partial) refund, idempotent on out_request_no
)

# Result codes (``code``), as the wallets name them.
SUCCESS = "10000"
IN_PROCESS = "10003"  # the customer must confirm in the wallet (password): "user paying"
UNKNOWN = "20000"  # the platform could not say: query
INVALID_PARAMETER = "40002"  # includes a bad signature (sub_code isv.invalid-signature)
BUSINESS_FAILED = "40004"  # final: sub_code says why

# Trade states.
WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_CLOSED = "TRADE_CLOSED"
TRADE_FINISHED = "TRADE_FINISHED"
PAID = (TRADE_SUCCESS, TRADE_FINISHED)

# sub_code of a 40004 (ACQ.* as the wallets spell them; AUTH_CODE_EXPIRED/USED are ours, where
# a real wallet folds both into PAYMENT_AUTH_CODE_INVALID).
CODE_INVALID = "ACQ.PAYMENT_AUTH_CODE_INVALID"
CODE_EXPIRED = "ACQ.AUTH_CODE_EXPIRED"
CODE_USED = "ACQ.AUTH_CODE_USED"
BALANCE_NOT_ENOUGH = "ACQ.BUYER_BALANCE_NOT_ENOUGH"
TRADE_HAS_CLOSE = "ACQ.TRADE_HAS_CLOSE"
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"
CONTEXT_INCONSISTENT = "ACQ.CONTEXT_INCONSISTENT"  # same order number, other parameters
REFUND_EXCEEDED = "ACQ.REFUND_AMOUNT_EXCEEDED"
SYSTEM_ERROR = "ACQ.SYSTEM_ERROR"
INVALID_SIGNATURE = "isv.invalid-signature"

NOTIFY_TYPE = "trade_status_sync"
NOTIFY_ACK = b"success"  # the body a receiver answers when it took the notification

# Payment codes: digits, 16 to 24 long, as the wallets issue them (Alipay 25-30..., 16-24
# digits; WeChat Pay 10-15..., 18 digits). The host takes any of these lengths.
CODE_MIN, CODE_MAX = 16, 24
_ORDER_NO = re.compile(r"^(\d{8})(\d{12})$")


def valid_payment_code(code: str) -> bool:
    return code.isdecimal() and CODE_MIN <= len(code) <= CODE_MAX


def mask_code(code: str) -> str:
    """First 6 and last 4, as a PAN: what logs, the journal and receipts may show."""
    if len(code) <= 10:
        return "*" * len(code)
    return code[:6] + "*" * (len(code) - 10) + code[-4:]


def yuan(fen: int) -> str:
    """Amounts on the wallet link are decimal yuan with two places ("10.00")."""
    if fen < 0:
        raise CodecError(f"negative amount {fen}", field="total_amount")
    return f"{fen // 100}.{fen % 100:02d}"


_AMOUNT = re.compile(r"^(\d{1,10})(?:\.(\d{1,2}))?$")


def fen(text: Any, field: str = "total_amount") -> int:
    """``"10.5"`` -> 1050; anything else than a plain non-negative decimal is a CodecError."""
    m = _AMOUNT.match(str(text))
    if m is None:
        raise CodecError(f"not an amount: {str(text)[:20]!r}", field=field)
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def order_number(business_date: str, journal_id: int) -> str:
    """The acquirer's order number (``out_trade_no`` / ``out_request_no``): the business date
    and the journal id, 20 digits. Unique per journal row, recomputable from the row, and it
    names the row back without another table."""
    return f"{business_date}{journal_id:012d}"


def parse_order_number(text: str) -> tuple[str, int]:
    m = _ORDER_NO.match(text or "")
    if m is None:
        raise CodecError("not one of our order numbers", field="out_trade_no")
    return m.group(1), int(m.group(2))


def response_key(method: str) -> str:
    return method.replace(".", "_") + "_response"


@attrs.frozen
class WalletCall:
    """One request to the platform before it is signed: method and business parameters."""

    method: str
    biz: Mapping[str, Any]

    def to_bytes(self) -> bytes:
        """The store-and-forward form (unsigned: it is signed afresh at each send)."""
        return json.dumps({"method": self.method, "biz": dict(self.biz)}, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> WalletCall:
        try:
            raw = json.loads(data)
            method, biz = raw["method"], raw["biz"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CodecError("not a stored wallet call", field="payload") from exc
        if method not in METHODS or not isinstance(biz, dict):
            raise CodecError(f"unknown wallet method {method!r}", field="method")
        return cls(method, biz)


@attrs.frozen
class WalletReply:
    """The platform's answer, its signature checked."""

    method: str
    code: str
    body: Mapping[str, Any]

    @property
    def sub_code(self) -> str:
        return str(self.body.get("sub_code", ""))

    @property
    def trade_status(self) -> str:
        return str(self.body.get("trade_status", ""))

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS

    def get(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default)


def request_params(app_id: str, call: WalletCall, *, timestamp: str,
                   notify_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The unsigned gateway parameters of ``call``."""
    params: dict[str, Any] = {
        "app_id": app_id,
        "method": call.method,
        "charset": CHARSET,
        "sign_type": SIGN_TYPE,
        "timestamp": timestamp,
        "version": VERSION,
        "biz_content": json.dumps(dict(call.biz), sort_keys=True, separators=(",", ":")),
    }
    if notify_url:
        params["notify_url"] = notify_url
    return params


def parse_request(body: bytes) -> tuple[dict[str, Any], WalletCall]:
    """A gateway POST body: (the parameters as sent, the call). Signature not checked here."""
    try:
        params = json.loads(body)
    except ValueError as exc:
        raise CodecError("body is not JSON", field="body") from exc
    if not isinstance(params, dict):
        raise CodecError("body is not a JSON object", field="body")
    for name in ("app_id", "method", "timestamp", "biz_content", "sign"):
        if not isinstance(params.get(name), str) or not params[name]:
            raise CodecError(f"missing {name}", field=name)
    if params["method"] not in METHODS:
        raise CodecError(f"unknown method {params['method'][:40]!r}", field="method")
    try:
        biz = json.loads(params["biz_content"])
    except ValueError as exc:
        raise CodecError("biz_content is not JSON", field="biz_content") from exc
    if not isinstance(biz, dict):
        raise CodecError("biz_content is not a JSON object", field="biz_content")
    return params, WalletCall(params["method"], biz)


def response_body(method: str, response: Mapping[str, Any], sign: str) -> bytes:
    return json.dumps({response_key(method): dict(response), "sign": sign}).encode()


def parse_response(method: str, body: bytes) -> tuple[dict[str, Any], str]:
    """(the response object, its signature) of a gateway answer to ``method``."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise CodecError("answer is not JSON", field="body") from exc
    if not isinstance(data, dict):
        raise CodecError("answer is not a JSON object", field="body")
    response = data.get(response_key(method))
    if not isinstance(response, dict) or not isinstance(response.get("code"), str):
        raise CodecError(f"no {response_key(method)} in the answer", field="body")
    return response, str(data.get("sign", ""))


def parse_notification(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise CodecError("notification is not JSON", field="body") from exc
    if not isinstance(data, dict):
        raise CodecError("notification is not a JSON object", field="body")
    for name in ("notify_id", "notify_time", "out_trade_no", "trade_status", "total_amount",
                 "app_id", "sign"):  # fmt: skip
        if not isinstance(data.get(name), str) or not data[name]:
            raise CodecError(f"missing {name}", field=name)
    return data


def notification_signed_part(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a notification's signature covers: everything but ``sign`` and ``sign_type``."""
    return {k: v for k, v in data.items() if k not in ("sign", "sign_type")}
