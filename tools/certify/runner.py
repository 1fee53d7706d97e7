"""Runs certification cases against a host over TCP, the way a terminal would, and records every
check with its reason, so a failed case says what was expected and what came back."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import attrs
import trio

from codec import subfields, txntypes
from codec import terminal as terminal_codec
from codec.dump import format_message, mask_pan, masked_hex
from codec.errors import CodecError
from codec.framing import parse_envelope, prefix_length
from codec.message import Message
from keys.mac import unionpay_ecb_mac, verify
from tools.certify.suite import Case, Step, Suite
from tools.terminal.client import TerminalClient
from tools.terminal.device import TYPES, Device, TerminalError
from tools.terminal.state import from_profile

BINARY_FIELDS = (52, 55, 62)
DEBITS = txntypes.DEBITS
FOLLOW_UPS = (*txntypes.UNDOING, *txntypes.COMPLETING)  # their original no longer counts


@attrs.define
class Check:
    step: int
    name: str
    ok: bool | None  # None: skipped (e.g. no simulator to look at)
    detail: str = ""


@attrs.define
class StepRecord:
    number: int
    send: str
    request: str = ""  # masked dump
    response: str = ""
    code: str | None = None
    elapsed_ms: float = 0.0
    request_hex: str = ""  # the frame as sent, sensitive bytes masked (codec.dump.masked_hex)
    response_hex: str = ""


@attrs.define
class CaseResult:
    suite: str
    case: Case
    status: str = "passed"  # passed, failed, error
    checks: list[Check] = attrs.field(factory=list)
    steps: list[StepRecord] = attrs.field(factory=list)
    error: str = ""
    duration: float = 0.0

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]


@attrs.define
class SuiteResult:
    suite: Suite
    cases: list[CaseResult]
    started: str
    duration: float
    target: str

    def count(self, status: str) -> int:
        return sum(1 for c in self.cases if c.status == status)


class Runner:
    """``sim`` (optional) is an in-process issuer simulator for issuer-side expectations."""

    def __init__(self, host: str, port: int, *, sim=None, timeout: float = 15.0, stans=None,
                 tids: dict[str, str] | None = None, wallet: str | None = None):  # fmt: skip
        from tools.certify.wallet import WalletControl

        self.host, self.port, self.sim, self.timeout = host, port, sim, timeout
        self.wallet = WalletControl(wallet) if wallet else None
        self.devices: dict[str, Device] = {}
        self.stans: dict[str, int] = stans if stans is not None else {}
        self.tids = tids or {}  # demo TID -> the TID this run uses for it (certify's own)

    def device_for(self, case: Case) -> Device:
        key = case.tid or case.profile
        if key not in self.devices:
            device = from_profile(case.profile).device()
            if case.tid:
                device.tid = case.tid
            else:
                device.tid = self.tids.get(device.tid, device.tid)
            device.stan = self.stans.get(device.tid, 0)
            self.devices[key] = device
        return self.devices[key]

    async def run_suite(self, suite: Suite) -> SuiteResult:
        started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        t0 = time.monotonic()
        results = [await self.run_case(suite, case) for case in suite.cases]
        return SuiteResult(
            suite, results, started, time.monotonic() - t0, f"{self.host}:{self.port}"
        )

    async def run_case(self, suite: Suite, case: Case) -> CaseResult:
        result = CaseResult(suite.name, case)
        t0 = time.monotonic()
        run = _CaseRun(self, case, result)
        try:
            with trio.fail_after(self.timeout * (len(case.steps) + 2)):
                await run.run()
        except (TerminalError, CodecError, OSError, trio.TooSlowError, ValueError) as exc:
            result.status = "error"
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            await run.close()
            device = run.device
            self.stans[device.tid] = device.stan
        if result.status == "passed" and result.failures:
            result.status = "failed"
        result.duration = time.monotonic() - t0
        return result


class _CaseRun:
    def __init__(self, runner: Runner, case: Case, result: CaseResult):
        self.runner, self.case, self.result = runner, case, result
        self.device = runner.device_for(case)
        self.client: TerminalClient | None = None
        self.requests: dict[int, Message] = {}
        self.responses: dict[int, Message | None] = {}
        self.types: dict[int, str] = {}
        self.status: dict[int, str] = {}  # step -> approved/declined/undone (for totals)
        self.codes: dict[int, str] = {}  # step -> the payment code it sent (QR)
        self.saved_faults: dict | None = None  # wallet-sim's settings before this case

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        if self.saved_faults is not None and self.runner.wallet is not None:
            await self.runner.wallet.settings(self.saved_faults)
            self.saved_faults = None

    async def connection(self) -> TerminalClient:
        if self.client is None:
            self.client = await TerminalClient.connect(
                self.runner.host, self.runner.port, self.device, timeout=self.runner.timeout
            )
        return self.client

    async def run(self) -> None:
        if self.case.sign_on:
            client = await self.connection()
            await client.sign_on()
        for number, step in enumerate(self.case.steps, 1):
            await self.step(number, step)

    # -- one step --------------------------------------------------------------------------
    async def step(self, number: int, step: Step) -> None:
        record = StepRecord(number, step.send)
        self.result.steps.append(record)
        if step.send == "wallet":
            await self.wallet_step(number, step)
            return
        if ("wallet" in step.expect or step.send == "qr_pay") and self.runner.wallet is None:
            raise ValueError("a QR step needs wallet-sim: run without --host, or --wallet-control")
        before = await self._issuer_before(step)
        wallet_before = await self._wallet_before(step)
        if step.send == "qr_pay":
            self.codes[number] = await self.payment_code(step)
        frame, request = self.build(number, step)
        if request is not None:
            self.requests[number] = request
            self.types[number] = step.send
            record.request = format_message(request)
        record.request_hex = masked_hex(frame, request)
        client = await self.connection()
        t0 = time.monotonic()
        async with trio.open_nursery() as nursery:
            if "confirm_after" in step.params and self.runner.wallet is not None:
                nursery.start_soon(self._confirm_later, step)
            await client.send_raw(frame)
            try:
                body = await client.receive_body()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                body = None
            except trio.TooSlowError:
                body = None
                self.check(number, "answered in time", False, f"nothing in {self.runner.timeout}s")
        record.elapsed_ms = round((time.monotonic() - t0) * 1000, 1)
        if body is None:
            await self.close()
            self.responses[number] = None
            self.expect_closed(number, step, closed=True)
            return
        try:
            env = parse_envelope(body)
            resp = terminal_codec.decode(env.payload)
        except CodecError as exc:
            record.response_hex = masked_hex(body, None)
            self.check(number, "response decodes", False, str(exc))
            return
        record.response_hex = masked_hex(body, resp)
        self.responses[number] = resp
        record.code = str(resp.get(39)) if 39 in resp else None
        record.response = format_message(resp)
        self.expect_closed(number, step, closed=False)
        self.track(number, step, resp)
        self.evaluate(number, step, request, resp, env.payload, env.processing)
        await self._issuer_after(number, step, before, resp.get(39) == "00")
        await self._wallet_after(number, step, wallet_before)
        if step.send == "sign_on" and resp.get(39) == "00":
            self.device.accept_sign_on(resp)

    # -- building --------------------------------------------------------------------------
    def build(self, number: int, step: Step) -> tuple[bytes, Message | None]:
        p = step.params
        d = self.device
        if step.send == "raw":
            if "raw" in p:
                return bytes.fromhex(p["raw"]), None
            body = d.tpdu + d.header + bytes.fromhex(p["payload"])
            length = int(p.get("length", len(body)))
            return length.to_bytes(2, "big") + body, None
        saved_batch = d.batch
        if "batch" in p:
            d.batch = str(p["batch"])
        try:
            msg = self.message(number, step)
        finally:
            d.batch = saved_batch
        fields = {}
        for k, v in p.get("fields", {}).items():
            n = int(k)
            if v == "":
                fields[n] = None
            elif n in BINARY_FIELDS:
                fields[n] = bytes.fromhex(v)
            else:
                fields[n] = str(v)
        if fields:
            msg = msg.with_fields(fields)
        payload = self.encode(msg, p.get("mac"))
        return prefix_length(d.envelope(payload).to_body()), msg

    def encode(self, msg: Message, mac_mode: str | None) -> bytes:
        d = self.device
        if msg.mti[:2] not in ("01", "02", "04") or mac_mode is None:
            return d.encode(msg)
        if mac_mode == "none":
            return terminal_codec.encode(msg.without(64))
        if mac_mode == "bad":
            wrong = bytes.fromhex("0123456789ABCDEF")
            return terminal_codec.encode_with_mac(
                msg.without(64), lambda data: unionpay_ecb_mac(wrong, data).decode("ascii")
            )
        raise ValueError(f"mac must be 'bad' or 'none', not {mac_mode!r}")

    def message(self, number: int, step: Step) -> Message:
        p, d, kind = step.params, self.device, step.send
        stan = None
        if "stan_from" in p:
            stan = str(self.requests[int(p["stan_from"])][11])
        if kind == "sign_on":
            if "mode" in p:
                d.key_mode = str(p["mode"])
            return d.sign_on_request()
        if kind == "sign_off":
            return d.management_request("0820", "002")
        if kind == "echo":
            return d.management_request("0820", "301")
        if kind == "reversal":
            if "original" in p:
                original = self.requests[int(p["original"])]
            else:  # a reversal of a request the host never saw
                original = d.financial_request(
                    "purchase", pan=str(p.get("pan", "6222020000000001")), amount=int(p["amount"])
                )
            return d.reversal_of(original, str(p.get("reason", "98")))
        if kind == "settlement":
            domestic, foreign = self.totals(p.get("totals", "log"))
            return d.settlement_request(domestic, foreign)
        if kind == "batch_upload":
            return d.batch_upload_request(self.records())
        if kind == "batch_upload_end":
            return d.batch_upload_end(int(p.get("count", len(self.records()))))
        kwargs: dict[str, Any] = {"stan": stan}
        if kind == "qr_query":
            orig = self.responses.get(int(p["original"])) if "original" in p else None
            rrn = str(p.get("rrn") or (orig.get(37) if orig is not None else "") or "000000000000")
            return d.financial_request(kind, stan=stan, rrn=rrn)
        if kind in txntypes.QR_SALES:
            extra = {22: "032", **({48: self.codes[number]} if kind == "qr_pay" else {})}
            return d.financial_request(kind, stan=stan, amount=int(p["amount"]), extra=extra)
        original_req = original_resp = None
        if "original" in p:
            original_req = self.requests[int(p["original"])]
            original_resp = self.responses.get(int(p["original"])) or Message("0210", {})
            kwargs["pan"] = str(original_req.get(2)) if 2 in original_req else None
            kwargs["amount"] = int(str(original_req.get(4, "0")))
            rrn = original_resp.get(37)
            kwargs["rrn"] = str(rrn) if rrn else None
            if kind != "refund" and original_resp.get(38):
                kwargs["auth_code"] = str(original_resp[38])
            kwargs["original"] = subfields.Field61(
                subfields.Field60.parse(str(original_req[60])).batch,
                str(original_req[11]),
                str(original_resp.get(13) or dt.date.today().strftime("%m%d")),
            )
        for key in ("pan", "expiry", "track2", "pin"):
            if key in p:
                kwargs[key] = str(p[key])
        if "to" in p:  # a transfer's payee
            kwargs["payee"] = str(p["to"])
        if "amount" in p:
            kwargs["amount"] = int(p["amount"])
        if p.get("pin_key") == "wrong":
            saved = d.pik
            d.pik = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
            try:
                return d.financial_request(kind, **kwargs)
            finally:
                d.pik = saved
        return d.financial_request(kind, **kwargs)

    # -- what the case did so far (settlement from the case's own log) --------------------
    def track(self, number: int, step: Step, resp: Message) -> None:
        approved = resp.get(39) == "00"
        self.status[number] = "approved" if approved else "declined"
        if approved and "original" in step.params:
            orig = int(step.params["original"])
            if step.send in (*FOLLOW_UPS, "reversal"):
                self.status[orig] = "undone"

    def _counted(self):
        for n, kind in self.types.items():
            if self.status.get(n) != "approved" or kind not in txntypes.SETTLED:
                continue
            req = self.requests[n]
            yield n, kind, str(req.get(2, "")), int(str(req.get(4, "0")))

    def totals(self, spec) -> tuple[subfields.SettlementTotals, subfields.SettlementTotals]:
        if isinstance(spec, dict):
            dom = subfields.SettlementTotals(
                int(spec.get("debit_amount", 0)),
                int(spec.get("debit_count", 0)),
                int(spec.get("credit_amount", 0)),
                int(spec.get("credit_count", 0)),
            )
            return dom, subfields.SettlementTotals(0, 0, 0, 0)
        sums = {True: [0, 0, 0, 0], False: [0, 0, 0, 0]}
        for _, kind, pan, amount in self._counted():
            s = sums[pan.startswith("62") or not pan]  # no PAN: a QR sale, domestic
            i = 0 if kind in DEBITS else 2
            s[i] += amount
            s[i + 1] += 1
        return (
            subfields.SettlementTotals(*sums[True], "0"),
            subfields.SettlementTotals(*sums[False], "0"),
        )

    def records(self) -> list[subfields.BatchRecord]:
        out = []
        for n, kind, pan, amount in self._counted():
            org = "00" if pan.startswith("62") else "01"
            stan = str(self.requests[n][11])
            out.append(subfields.BatchRecord(org, pan, amount, stan, TYPES[kind][3]))
        return out

    # -- expectations ----------------------------------------------------------------------
    def check(self, step: int, name: str, ok: bool | None, detail: str = "") -> None:
        self.result.checks.append(Check(step, name, ok, detail))

    def expect_closed(self, number: int, step: Step, *, closed: bool) -> None:
        want = step.expect.get("closed")
        if want is None:
            if closed:
                self.check(number, "host answered", False, "connection closed, no response")
            return
        self.check(
            number,
            "host closed the connection" if want else "host kept the connection",
            closed == bool(want),
            "closed without a response" if closed else "a response came back",
        )

    def evaluate(self, number, step: Step, request, resp: Message, payload, processing):
        e = step.expect
        code = resp.get(39)
        if request is not None:
            want_mti = f"{int(request.mti) + 10:04d}"
            self.check(number, f"response MTI {want_mti}", resp.mti == want_mti, resp.mti)
        if "code" in e:
            self.check(number, f"39 = {e['code']}", code == e["code"], f"got {code}")
        if "codes" in e:
            self.check(number, f"39 in {e['codes']}", code in e["codes"], f"got {code}")
        for n in e.get("present", []):
            self.check(number, f"field {n} present", int(n) in resp, "")
        for n in e.get("absent", []):
            self.check(number, f"field {n} absent", int(n) not in resp, str(resp.get(int(n))))
        for k, v in e.get("equal", {}).items():
            n = int(k)
            want = request.get(n) if v == "$request" and request is not None else v
            got = resp.get(n)
            if isinstance(got, bytes):
                got = got.hex().upper()
            self.check(number, f"field {n} = {want}", str(got) == str(want), f"got {got}")
        if "settlement" in e:
            want = {"balanced": "1", "unbalanced": "2", "error": "3"}[e["settlement"]]
            try:
                dom, _ = subfields.parse_field48_settlement(str(resp.get(48, "")))
                got = dom.result
            except CodecError as exc:
                got = f"unreadable 48 ({exc})"
            self.check(number, f"48 result {e['settlement']} ({want})", got == want, f"got {got}")
        if "processing" in e:
            p = int(e["processing"])
            self.check(number, f"header processing {p}", processing == p, f"got {processing}")
        if e.get("mac") and self.device.mak is not None:
            if 64 not in resp:
                self.check(number, "response MAC valid", False, "no field 64")
            else:
                expected = unionpay_ecb_mac(self.device.mak, terminal_codec.mac_data(payload))
                ok = verify(expected, str(resp[64]).encode("ascii"))
                self.check(number, "response MAC valid", ok, "" if ok else "MAC differs")
        if request is not None and code == "00":
            bad = [n for n in (3, 11, 41, 42) if n in request and resp.get(n) != request.get(n)]
            self.check(number, "3/11/41/42 echoed", not bad, f"not echoed: {bad}" if bad else "")

    # -- issuer side -------------------------------------------------------------------------
    async def _issuer_before(self, step: Step):
        wants = _issuer_wants(step)
        if not wants or self.runner.sim is None:
            return None
        before = []
        for want in wants:
            pan = str(want["pan"])
            card = await self.runner.sim.card(pan)
            holds = len(await self.runner.sim.holds(pan))
            before.append(((card.balance if card is not None else 0), holds))
        return before

    async def _issuer_after(self, number: int, step: Step, before, approved: bool) -> None:
        wants = _issuer_wants(step)
        if not wants:
            return
        if self.runner.sim is None:
            self.check(number, "issuer effect", None, "skipped: no simulator attached")
            return
        for want, card_before in zip(wants, before, strict=True):
            await self._issuer_card(number, want, card_before, approved)

    async def _issuer_card(self, number: int, want: dict, before, approved: bool) -> None:
        sim = self.runner.sim
        pan = str(want["pan"])
        if "delta" in want:
            delta = int(want["delta"])
            got = None
            # Reversals reach the issuer by store-and-forward: give them a moment (an
            # answer other than 00 has nothing on its way).
            with trio.move_on_after(3 if approved else 0.2):
                while True:
                    card = await sim.card(pan)
                    got = card.balance - before[0]
                    if got == delta:
                        break
                    await trio.sleep(0.05)
            self.check(number, f"issuer balance of {mask_pan(pan)} moved {delta}", got == delta,
                       f"moved {got}")  # fmt: skip
        if "holds" in want:  # change in the number of open holds on the card
            moved = len(await sim.holds(pan)) - before[1]
            want_h = int(want["holds"])
            self.check(number, f"issuer open holds moved {want_h}", moved == want_h, str(moved))

    # -- wallet side (QR suite) ------------------------------------------------------------
    async def payment_code(self, step: Step) -> str:
        p, wallet = step.params, self.runner.wallet
        assert wallet is not None
        user = str(p.get("user", "alice"))
        kind = str(p.get("code", "fresh"))
        if kind == "fresh":
            return await wallet.code(user)
        if kind == "expired":
            return await wallet.expired_code(user)
        if kind == "reuse":
            return self.codes[int(p["code_from"])]
        return kind  # a literal code (an unknown one, say)

    async def _confirm_later(self, step: Step) -> None:
        assert self.runner.wallet is not None
        await trio.sleep(float(step.params["confirm_after"]))
        await self.runner.wallet.confirm(str(step.params.get("user", "alice")))

    async def wallet_step(self, number: int, step: Step) -> None:
        p, e, wallet = step.params, step.expect, self.runner.wallet
        if wallet is None:
            self.check(number, "wallet step", None, "skipped: no wallet-sim attached")
            return
        before = await self._wallet_before(step)
        action = str(p.get("action", ""))
        if action == "confirm":
            ok = await wallet.confirm(str(p.get("user", "alice")))
            if "confirmed" in e:
                self.check(number, f"confirmation went through = {e['confirmed']}",
                           ok == bool(e["confirmed"]), f"got {ok}")  # fmt: skip
        elif action == "pay":
            resp = self.responses.get(int(p["qr_from"]))
            qr = str(resp.get(63, ""))[3:] if resp is not None else ""
            result = await wallet.pay(qr, str(p.get("user", "alice")))
            if "paid" in e:
                self.check(number, f"QR paid = {e['paid']}", (result == "paid") == bool(e["paid"]),
                           result)  # fmt: skip
        elif action == "faults":
            if self.saved_faults is None:
                self.saved_faults = await wallet.settings()
            await wallet.settings(dict(p.get("faults", {})))
        elif action == "wait":
            await trio.sleep(float(p.get("seconds", 1)))
        else:
            raise ValueError(f"wallet action must be confirm, pay, faults or wait, not {action!r}")
        await self._wallet_after(number, step, before)

    async def _wallet_before(self, step: Step):
        want = step.expect.get("wallet")
        if not want or self.runner.wallet is None:
            return None
        return await self.runner.wallet.balance(str(want["user"]))

    async def _wallet_after(self, number: int, step: Step, before) -> None:
        want = step.expect.get("wallet")
        if not want:
            return
        if self.runner.wallet is None or before is None:
            self.check(number, "wallet effect", None, "skipped: no wallet-sim attached")
            return
        delta, got = int(want["delta"]), None
        # cancels and refunds may reach the wallet by store-and-forward: give them a moment
        with trio.move_on_after(float(want.get("within", 3))):
            while True:
                got = await self.runner.wallet.balance(str(want["user"])) - before
                if got == delta:
                    break
                await trio.sleep(0.1)
        self.check(number, f"wallet balance of {want['user']} moved {delta}", got == delta,
                   f"moved {got}")  # fmt: skip


def _issuer_wants(step: Step) -> list[dict]:
    """``issuer`` names one card's expected effect, or a list of them (a transfer moves two)."""
    want = step.expect.get("issuer")
    if not want:
        return []
    return list(want) if isinstance(want, list) else [want]
