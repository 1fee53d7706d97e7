"""Certification suites: declarative TOML files in specs/certification/.

A suite is a list of cases. A case names a terminal profile (``demo:TID``; ``tid`` overrides
the terminal id, e.g. for an unknown terminal), whether it signs on first, and steps. A step
sends one message and states what the answer must be:

    [[case]]
    id = "purchase.approved"
    title = "Purchase with PIN is approved and debits the card"
    profile = "demo:12345678"

    [[case.step]]
    send = "purchase"            # a transaction type, a management message, "reversal" or "raw"
    pan = "6222020000000001"
    amount = 1000
    pin = "1234"
    fields = { 22 = "021" }      # field overrides; "" removes a field
    expect = { code = "00", present = [37, 38], mac = true, issuer = { pan = "...", delta = -10 } }

Other step keys: ``to`` (a transfer's payee PAN, sent in its payee field), ``original`` (the
1-based step whose message is the original of a void, refund, completion, cancel or reversal),
``stan_from`` (reuse a step's STAN: duplicates), ``reason`` (39 of a reversal),
``mac = "bad" | "none"`` (how to MAC the request), ``pin_key = "wrong"``, ``mode`` (sign-on
key layout), ``totals`` (settlement: "log" = the approved debits and credits of the case so
far, or a table of debit_amount, debit_count, credit_amount, credit_count), ``records = "log"``
(batch upload), ``raw`` (hex of a whole frame) or ``payload`` (hex from the MTI on, wrapped in
TPDU + header) with an optional ``length`` (the 2-byte prefix to write instead of the true
one).

Expectations: ``code``, ``codes`` (any of), ``present``, ``absent``, ``equal`` (field ->
value, or "$request" to mean the request's own value), ``mac`` (response MAC valid),
``processing`` (header nibble), ``closed`` (the host closes the connection without answering),
``wallet`` (against wallet-sim: ``{user, delta}``, the user's balance moved by delta),
``confirmed`` / ``paid`` (a wallet step's confirmation or QR payment went through or not),
``issuer`` (against the bundled simulator: the card's balance moved by ``delta``, or
``holds``, the change in the number of open holds on the card; a list of such tables checks
several cards, e.g. a transfer's payer and payee), ``settlement`` (the result digit of 48 in
a 0510: "balanced", "unbalanced" or "error").
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from codec import txntypes

# What a step may send: every terminal transaction of the registry, and raw bytes.
SEND_KINDS = {
    *txntypes.JOURNALLED, *txntypes.QR, *txntypes.MANAGEMENT_NAMES, "reversal", "raw", "wallet",
} - {
    "activation", "parameter_download"
}  # fmt: skip
STEP_KEYS = {
    "send", "pan", "expiry", "track2", "amount", "pin", "pin_key", "fields", "expect",
    "original", "stan_from", "reason", "mac", "mode", "totals", "records", "raw", "payload",
    "length", "note", "batch", "to",
    # QR (specs/certification/qr.toml): the payment code ("fresh", "expired", or "reuse" with
    # code_from = step), its user, a password confirmation while the step waits; wallet steps:
    # action = "confirm" | "pay" (the QR of step qr_from) | "faults" | "wait" (seconds)
    "code", "user", "code_from", "confirm_after", "action", "qr_from", "faults", "seconds",
}  # fmt: skip
EXPECT_KEYS = {
    "code", "codes", "present", "absent", "equal", "mac", "processing", "closed", "issuer",
    "settlement", "wallet", "confirmed", "paid",
}  # fmt: skip
CASE_KEYS = {"id", "title", "profile", "tid", "sign_on", "step", "tags", "requires"}


class SuiteError(ValueError):
    """A suite file that cannot be run; the message names the file, case and key."""


@attrs.frozen
class Step:
    send: str
    params: dict[str, Any]
    expect: dict[str, Any]


@attrs.frozen
class Case:
    id: str
    title: str
    profile: str
    tid: str | None
    sign_on: bool
    steps: tuple[Step, ...]
    tags: tuple[str, ...] = ()


@attrs.frozen
class Suite:
    name: str
    description: str
    path: str
    cases: tuple[Case, ...]


def suite_dir() -> Path:
    return Path(str(resources.files("specs").joinpath("certification")))


def available() -> list[str]:
    return sorted(p.stem for p in suite_dir().glob("*.toml"))


def resolve(name: str) -> Path:
    """A suite by file path, or by name in specs/certification/."""
    p = Path(name)
    if p.suffix == ".toml" and p.exists():
        return p
    candidate = suite_dir() / f"{name}.toml"
    if candidate.exists():
        return candidate
    raise SuiteError(f"no suite {name!r} (known: {', '.join(available())})")


def load(name: str) -> Suite:
    path = resolve(name)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: {exc}") from exc
    return parse(data, str(path))


def parse(data: dict[str, Any], path: str = "<suite>") -> Suite:
    meta = data.get("suite", {})
    cases = []
    seen: set[str] = set()
    for i, c in enumerate(data.get("case", []), 1):
        where = f"{path}: case {c.get('id', i)}"
        unknown = set(c) - CASE_KEYS
        if unknown:
            raise SuiteError(f"{where}: unknown key(s) {sorted(unknown)}")
        if "id" not in c:
            raise SuiteError(f"{where}: needs an id")
        if c["id"] in seen:
            raise SuiteError(f"{where}: duplicate id")
        seen.add(c["id"])
        steps = []
        for j, s in enumerate(c.get("step", []), 1):
            sw = f"{where}, step {j}"
            unknown = set(s) - STEP_KEYS
            if unknown:
                raise SuiteError(f"{sw}: unknown key(s) {sorted(unknown)}")
            if s.get("send") not in SEND_KINDS:
                raise SuiteError(f"{sw}: send must be one of {sorted(SEND_KINDS)}")
            expect = dict(s.get("expect", {}))
            unknown = set(expect) - EXPECT_KEYS
            if unknown:
                raise SuiteError(f"{sw}: unknown expectation(s) {sorted(unknown)}")
            for ref in ("original", "stan_from"):
                if ref in s and not 1 <= int(s[ref]) < j:
                    raise SuiteError(f"{sw}: {ref} must name an earlier step")
            params = {k: v for k, v in s.items() if k not in ("send", "expect")}
            steps.append(Step(s["send"], params, expect))
        if not steps:
            raise SuiteError(f"{where}: no steps")
        cases.append(
            Case(
                id=c["id"],
                title=c.get("title", c["id"]),
                profile=c.get("profile", "demo:12345678"),
                tid=c.get("tid"),
                sign_on=bool(c.get("sign_on", True)),
                steps=tuple(steps),
                tags=tuple(c.get("tags", ())),
            )
        )
    return Suite(
        name=meta.get("name", Path(path).stem),
        description=meta.get("description", ""),
        path=path,
        cases=tuple(cases),
    )
