"""The authorization decision: pure functions, no I/O.

``parse_request`` turns a Message-like object (``.mti`` and ``.get(n)``) into an
:class:`AuthRequest`; ``decide`` takes that request, the card's state, the PIN check result and
the original transaction (when the request names one) and returns a :class:`Decision`: the
response code and the effect to apply. The ledger applies the effect inside one SQLite
transaction; it never decides anything itself.
"""

from __future__ import annotations

from typing import Protocol

import attrs

# kinds, named as in codec.txntypes
BALANCE_INQUIRY = "balance_inquiry"
PURCHASE = "purchase"
VOID = "void"
REFUND = "refund"
PREAUTH = "preauth"
PREAUTH_CANCEL = "preauth_cancel"
COMPLETION = "completion"
COMPLETION_VOID = "completion_void"
COMPLETION_ADVICE = "completion_advice"
TRANSFER = "transfer"
REVERSAL = "reversal"
NETWORK = "network"
UNSUPPORTED = "unsupported"

REVERSAL_MTIS = frozenset({"0400", "0401", "0420", "0421"})

# which kind each original-naming kind expects as its original
ORIGINAL_KIND = {
    VOID: PURCHASE,
    PREAUTH_CANCEL: PREAUTH,
    COMPLETION: PREAUTH,
    COMPLETION_ADVICE: PREAUTH,
    COMPLETION_VOID: COMPLETION,
}


class MessageLike(Protocol):
    mti: str

    def get(self, n: int, default=None): ...


def base_mti(mti: str) -> str:
    """The MTI with ISO 8583:1987's repeat flag cleared: 0201 -> 0200, 0221 -> 0220. A repeat
    is the same request sent again, so it is classified and keyed as the first one."""
    return mti[:3] + "0" if len(mti) == 4 and mti[3] == "1" else mti


def classify(mti: str, proc: str, cond: str) -> str:
    """Transaction kind from MTI, processing code (3) and POS condition code (25)."""
    if mti in REVERSAL_MTIS:
        return REVERSAL
    mti = base_mti(mti)
    if mti in ("0800", "0820"):
        return NETWORK
    p = proc[:2]
    pre = cond == "06"
    if mti == "0200":
        if p == "31":
            return BALANCE_INQUIRY
        if p == "00":
            return COMPLETION if pre else PURCHASE
        if p == "20":
            return COMPLETION_VOID if pre else VOID
        if p == "40" and not pre:
            return TRANSFER
    elif mti == "0100":
        if p in ("03", "00"):  # 00: a plain authorization, which holds funds like a pre-auth
            return PREAUTH
        if p == "20":
            return PREAUTH_CANCEL
    elif mti == "0220":
        if p == "20" and not pre:
            return REFUND
        if p == "00" and pre:
            return COMPLETION_ADVICE
    return UNSUPPORTED


def _s(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)


@attrs.frozen
class AuthRequest:
    kind: str
    mti: str
    proc: str
    cond: str
    pan: str
    amount: int
    tid: str
    rrn: str
    stan: str
    f7: str
    expiry: str  # 14, "" if absent
    has_pin: bool
    orig_mti: str = ""
    orig_stan: str = ""
    orig_f7: str = ""
    original_kind: str = ""  # for a reversal: the kind of what it reverses
    replacement: int | None = None  # a reversal's field 95 actual amount, when not all zeros
    payee: str = ""  # a transfer's card to credit (103)

    @property
    def dedupe_key(self) -> str:
        """One row per request: the message class (0100, 0200, 0220, or any reversal), terminal
        (41), STAN (11), transmission time (7) and RRN (37). A repeat of a request carries the
        same 11, 7 and 37; a new request with a reused 37 (or STAN) is a new request. Whether a
        same-key request is a true repeat is the ledger's call (same card, amount, code)."""
        cls = "reversal" if self.kind == REVERSAL else base_mti(self.mti)
        return f"{cls}|{self.tid}|{self.stan}|{self.f7}|{self.rrn}"

    @property
    def account_type(self) -> str:
        return self.proc[2:4] if len(self.proc) >= 4 else "00"


def track2_pan(track: str) -> tuple[str, str]:
    """(PAN, expiry YYMM) from track 2 equivalent data (PAN, '=' or 'D', YYMM, ...)."""
    pan, sep, rest = track.upper().replace("D", "=").partition("=")
    return pan, (rest[:4] if sep and rest[:4].isdigit() else "")


def _replacement(f95: str) -> int | None:
    """Field 95's first part (actual transaction amount n12); None when absent or all zeros,
    which ISO 8583:1987 reads as a full reversal."""
    head = f95[:12]
    if len(head) == 12 and head.isdigit() and int(head):
        return int(head)
    return None


def parse_request(msg: MessageLike) -> AuthRequest:
    mti = msg.mti
    proc = _s(msg.get(3)).strip()
    cond = _s(msg.get(25)).strip()
    f90 = _s(msg.get(90))
    orig_mti, orig_stan, orig_f7 = (
        (f90[0:4], f90[4:10], f90[10:20]) if len(f90) >= 20 else ("", "", "")
    )
    if orig_mti.strip("0") == "":
        orig_mti = ""
    kind = classify(mti, proc, cond)
    original_kind = ""
    if kind == REVERSAL:
        guess = orig_mti or {"03": "0100"}.get(proc[:2], "0200")
        original_kind = classify(guess, proc, cond)
    amount_s = _s(msg.get(4)).strip()
    pan = _s(msg.get(2)).strip()
    expiry = _s(msg.get(14)).strip()
    if not pan and msg.get(35) is not None:  # track-2-only request
        pan, track_expiry = track2_pan(_s(msg.get(35)).strip())
        expiry = expiry or track_expiry
    return AuthRequest(
        kind=kind,
        mti=mti,
        proc=proc,
        cond=cond,
        pan=pan,
        amount=int(amount_s) if amount_s.isdigit() else 0,
        tid=_s(msg.get(41)).strip(),
        rrn=_s(msg.get(37)).strip(),
        stan=_s(msg.get(11)).strip(),
        f7=_s(msg.get(7)).strip(),
        expiry=expiry,
        has_pin=msg.get(52) is not None,
        orig_mti=orig_mti,
        orig_stan=orig_stan,
        orig_f7=orig_f7,
        original_kind=original_kind,
        replacement=_replacement(_s(msg.get(95))) if kind == REVERSAL else None,
        payee=_s(msg.get(103)).strip() if kind == TRANSFER else "",
    )


@attrs.frozen
class CardState:
    pan: str
    expiry: str
    status: str
    pvki: int
    pvv: str
    pin_tries: int
    max_pin_tries: int
    currency: str
    balance: int
    daily_limit: int
    spent_today: int  # already reset to 0 when the stored date is not today
    held: int  # sum of open holds

    @property
    def available(self) -> int:
        return self.balance - self.held


@attrs.frozen
class Hold:
    id: int
    pan: str
    amount: int
    status: str  # open | completed | released


@attrs.frozen
class Original:
    id: int
    kind: str
    pan: str
    amount: int
    code: str
    undone: bool  # voided / cancelled / completed-void by a later request
    reversed: bool
    hold: Hold | None  # the hold it created (preauth) or touched


@attrs.frozen
class Effect:
    balance: int = 0  # added to the balance
    spent: int = 0  # added to today's spend
    new_hold: int = 0  # amount of a hold to create (preauth)
    hold_id: int | None = None  # existing hold to move from -> to
    hold_from: str = ""
    hold_to: str = ""
    undo: int | None = None  # id of the original this request undoes (void, cancel)
    credit: int = 0  # added to the balance of credit_pan (a transfer's payee)
    credit_pan: str = ""

    def to_json(self) -> dict:
        return {k: v for k, v in attrs.asdict(self).items() if v not in (0, None, "")}

    @classmethod
    def from_json(cls, d: dict) -> Effect:
        return cls(**d)


NO_EFFECT = Effect()


@attrs.frozen
class Decision:
    code: str
    effect: Effect = NO_EFFECT
    pin_tries: int | None = None  # new PIN try counter, when it changes
    balances: str | None = None  # field 54 for a balance inquiry


def expired(expiry: str, today_yymm: str) -> bool:
    """A card is valid through the end of its expiry month."""
    return len(expiry) == 4 and expiry < today_yymm


def format_balances(card: CardState, account_type: str) -> str:
    """Field 54: ledger (01) and available (02) balance, each acct n2 type n2 ccy n3 C/D n12."""

    def one(amount_type: str, amount: int) -> str:
        sign = "C" if amount >= 0 else "D"
        return f"{account_type}{amount_type}{card.currency}{sign}{abs(amount):012d}"

    return one("01", card.balance) + one("02", card.available)


def _card_checks(req: AuthRequest, card: CardState | None, today_yymm: str) -> str | None:
    if card is None:
        return "14"
    if card.status == "lost":
        return "41"
    if card.status == "stolen":
        return "43"
    if card.status == "blocked":
        return "62"
    if expired(card.expiry, today_yymm) or (req.expiry and req.expiry != card.expiry):
        return "54"
    return None


def _pin_check(card: CardState, pin_ok: bool | None) -> Decision | None:
    """None when the PIN is fine or absent; a decline otherwise."""
    if pin_ok is None:
        return None
    if card.pin_tries >= card.max_pin_tries:
        return Decision("75")
    if not pin_ok:
        tries = card.pin_tries + 1
        return Decision("75" if tries >= card.max_pin_tries else "55", pin_tries=tries)
    return None


def _over_limit(card: CardState, amount: int) -> bool:
    return card.daily_limit > 0 and card.spent_today + amount > card.daily_limit


def _original_problem(req: AuthRequest, original: Original | None) -> str | None:
    if original is None or original.pan != req.pan or original.code != "00" or original.reversed:
        return "25"
    if original.undone:
        return "94"
    return None


def _can_receive(payee: CardState | None) -> bool:
    """A transfer may credit an active card of ours. Unknown, lost, stolen and blocked payees
    all get the same 14: the payer learns nothing about someone else's card."""
    return payee is not None and payee.status == "active"


def decide(
    req: AuthRequest,
    card: CardState | None,
    pin_ok: bool | None,
    original: Original | None,
    today_yymm: str,
    completion_tolerance_pct: int = 15,
    payee: CardState | None = None,
) -> Decision:
    """The response code and the effect for one request (not a reversal, not network).
    ``payee`` is the card a transfer credits (103), None when unknown."""
    kind = req.kind
    if kind in (REVERSAL, NETWORK):
        raise ValueError(f"decide() does not handle {kind}")
    if kind == UNSUPPORTED:
        return Decision("40")
    if kind == COMPLETION_ADVICE:
        if card is None:
            return Decision("14")
        if original is None or original.pan != req.pan or original.reversed:
            return Decision("25")
        return Decision("00", _completion_effect(req, original))
    if kind == REFUND:
        if card is None:
            return Decision("14")
        problem = _card_checks(req, card, "0000")  # status only: refunds to expired cards are fine
        if problem:
            return Decision(problem)
        if req.amount <= 0:
            return Decision("13")
        return Decision("00", Effect(balance=req.amount))

    problem = _card_checks(req, card, today_yymm)
    if problem:
        return Decision(problem)
    assert card is not None
    pin = _pin_check(card, pin_ok)
    if pin is not None:
        return pin
    pin_reset = 0 if (pin_ok and card.pin_tries) else None

    def ok(effect: Effect = NO_EFFECT, balances: str | None = None) -> Decision:
        return Decision("00", effect, pin_tries=pin_reset, balances=balances)

    def decline(code: str) -> Decision:
        return Decision(code, pin_tries=pin_reset)

    if kind == BALANCE_INQUIRY:
        return ok(balances=format_balances(card, req.account_type))
    if kind in (PURCHASE, PREAUTH):
        if req.amount <= 0:
            return decline("13")
        if card.available < req.amount:
            return decline("51")
        if _over_limit(card, req.amount):
            return decline("61")
        if kind == PURCHASE:
            return ok(Effect(balance=-req.amount, spent=req.amount))
        return ok(Effect(new_hold=req.amount, spent=req.amount))
    if kind == TRANSFER:
        if req.amount <= 0:
            return decline("13")
        if not _can_receive(payee):
            return decline("14")
        assert payee is not None
        if payee.pan == card.pan:
            return decline("12")
        if card.available < req.amount:
            return decline("51")
        if _over_limit(card, req.amount):
            return decline("61")
        return ok(
            Effect(balance=-req.amount, spent=req.amount, credit=req.amount, credit_pan=payee.pan)
        )

    problem = _original_problem(req, original)
    if problem:
        return decline(problem)
    assert original is not None
    if kind in (VOID, COMPLETION_VOID):
        if req.amount and req.amount != original.amount:
            return decline("64")
        return ok(Effect(balance=original.amount, spent=-original.amount, undo=original.id))
    hold = original.hold
    if hold is None or hold.status != "open":
        return decline("94")
    if kind == PREAUTH_CANCEL:
        if req.amount and req.amount != hold.amount:
            return decline("64")
        return ok(
            Effect(
                spent=-hold.amount,
                hold_id=hold.id,
                hold_from="open",
                hold_to="released",
                undo=original.id,
            )
        )
    if kind == COMPLETION:
        if req.amount <= 0:
            return decline("13")
        if req.amount * 100 > hold.amount * (100 + completion_tolerance_pct):
            return decline("64")
        if card.available + hold.amount < req.amount:
            return decline("51")
        return ok(_completion_effect(req, original))
    return decline("40")  # pragma: no cover - every kind handled above


def _completion_effect(req: AuthRequest, original: Original) -> Effect:
    hold = original.hold
    if hold is not None and hold.status == "open":
        return Effect(
            balance=-req.amount,
            spent=req.amount - hold.amount,
            hold_id=hold.id,
            hold_from="open",
            hold_to="completed",
        )
    return Effect(balance=-req.amount, spent=req.amount)


def inverse(effect: Effect) -> Effect:
    """The effect that undoes ``effect`` (what a reversal applies). ``new_hold`` is undone by
    the ledger (it releases the hold the original created)."""
    return Effect(
        balance=-effect.balance,
        spent=-effect.spent,
        hold_id=effect.hold_id,
        hold_from=effect.hold_to,
        hold_to=effect.hold_from,
        credit=-effect.credit,
        credit_pan=effect.credit_pan,
    )


PARTIAL_KINDS = frozenset({PURCHASE, PREAUTH, COMPLETION, TRANSFER})


def partial_reversal(
    kind: str, effect: Effect, amount: int, replacement: int
) -> tuple[Effect, Effect] | None:
    """A partial reversal (field 95: the amount that really happened) of a purchase, a
    pre-authorization, a completion or a transfer (the payee gives back what the payer gets
    back): (what to apply now, the original's effect from now on).
    None when the kind has no partial form (its reversal is full). The caller checks
    ``0 < replacement < amount``."""
    if kind not in PARTIAL_KINDS:
        return None
    delta = amount - replacement
    if kind == PREAUTH:  # the hold shrinks (the ledger updates its amount); no money moved
        return Effect(spent=-delta), attrs.evolve(effect, new_hold=replacement, spent=replacement)
    now = Effect(balance=delta, spent=-delta)
    remaining = attrs.evolve(effect, balance=-replacement, spent=effect.spent - delta)
    if kind == TRANSFER:
        now = attrs.evolve(now, credit=-delta, credit_pan=effect.credit_pan)
        remaining = attrs.evolve(remaining, credit=replacement)
    return now, remaining
