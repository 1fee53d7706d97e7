"""Merchant operations: risk limits and events, security events, merchant terms, merchant
settlement and the journal reads of reconciliation.

See ``host.store.ops`` for how these functions are written and called.
"""

from __future__ import annotations

from typing import Any

from host.store.db import Db
from host.store.errors import (
    NotFound,
)
from host.store.estate import get_merchant
from host.store.records import (
    Transaction,
)
from host.store.sql import (
    CARD_DEBITS,
    CREDITS,
    DEBITS,
    MONEY_SUMS,
    SETTLED,
    check_choice,
    where_clause,
)

# ---------------------------------------------------------------------------------------------
# Merchant operations: risk limits and events, merchant terms (host/merchant/risk.py and
# host/merchant/operators.py)


def set_risk_limits(db: Db, scope: str, key: str, values: dict[str, int | None]) -> None:
    """Create or update the override row (scope, key); a value None clears that field (it is
    inherited again), a field not named keeps its value."""
    from host.store.merchant_records import LIMIT_FIELDS

    check_choice(scope, ("mcc", "merchant"), "limit scope")
    unknown = set(values) - set(LIMIT_FIELDS)
    if unknown:
        raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    db.execute(
        "INSERT INTO risk_limits (scope, key, updated_at) VALUES (:scope, :key, :now)"
        " ON CONFLICT (scope, key) DO NOTHING",
        {"scope": scope, "key": key, "now": db.now()},
    )
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer")
        db.execute(
            f"UPDATE risk_limits SET {name} = :v, updated_at = :now"  # noqa: S608 (checked name)
            " WHERE scope = :scope AND key = :key",
            {"v": value, "now": db.now(), "scope": scope, "key": key},
        )


def delete_risk_limits(db: Db, scope: str, key: str) -> None:
    if not db.execute(
        "DELETE FROM risk_limits WHERE scope = :scope AND key = :key", {"scope": scope, "key": key}
    ):
        raise NotFound(f"no {scope} limits for {key}")


def get_risk_limit_rows(db: Db, mid: str, mcc: str) -> list[Any]:
    """The MCC row and the merchant row that apply to ``mid`` (either may be missing)."""
    from host.store.merchant_records import RiskLimitRow

    rows = db.query(
        "SELECT * FROM risk_limits WHERE (scope = 'mcc' AND key = :mcc)"
        " OR (scope = 'merchant' AND key = :mid)",
        {"mcc": mcc, "mid": mid},
    )
    return [RiskLimitRow(**r) for r in rows]


def list_risk_limits(db: Db) -> list[Any]:
    from host.store.merchant_records import RiskLimitRow

    rows = db.query("SELECT * FROM risk_limits ORDER BY scope, key")
    return [RiskLimitRow(**r) for r in rows]


def merchant_risk_totals(db: Db, mid: str, business_date: str, month_start: str) -> dict[str, int]:
    """One aggregate over the merchant's approved rows this month: sales of the day, sales of
    the month, refunds of the month (debits: the registry's ``settles = "debit"`` types)."""
    row = db.query_one(
        "SELECT"  # noqa: S608 (registry type names, never input)
        " COALESCE(SUM(CASE WHEN business_date = :d AND txn_type IN"
        f"   {DEBITS} THEN amount ELSE 0 END), 0) AS day,"
        f" COALESCE(SUM(CASE WHEN txn_type IN {DEBITS}"
        "   THEN amount ELSE 0 END), 0) AS month,"
        f" COALESCE(SUM(CASE WHEN txn_type IN {CREDITS} THEN amount ELSE 0 END), 0) AS refunds"
        " FROM transactions WHERE mid = :mid AND status = 'approved'"
        " AND business_date >= :m AND business_date <= :d",
        {"mid": mid, "d": business_date, "m": month_start},
    )
    return {k: int(row[k]) for k in ("day", "month", "refunds")} if row else {}


def recent_card_debits(db: Db, since_ms: int) -> list[tuple[str, int, int]]:
    """(pan_fingerprint, requested_at, amount) of approved or pending debits since ``since_ms``:
    the seed of the in-memory per-card velocity windows."""
    rows = db.query(
        "SELECT pan_fingerprint, requested_at, amount FROM transactions"  # noqa: S608 (registry type names, never input)
        " WHERE requested_at >= :since AND pan_fingerprint IS NOT NULL"
        " AND status IN ('approved', 'pending')"
        f" AND txn_type IN {CARD_DEBITS}",
        {"since": since_ms},
    )
    return [(r["pan_fingerprint"], int(r["requested_at"]), int(r["amount"])) for r in rows]


def add_risk_event(
    db: Db,
    *,
    mid: str,
    tid: str,
    business_date: str,
    txn_type: str,
    amount: int,
    rule: str,
    response_code: str,
    detail: str,
    pan_masked: str | None = None,
) -> int:
    row = db.query_one(
        "INSERT INTO risk_events (mid, tid, business_date, txn_type, amount, rule,"
        " response_code, detail, pan_masked, created_at) VALUES (:mid, :tid, :d, :type,"
        " :amount, :rule, :code, :detail, :pan, :now) RETURNING id",
        {
            "mid": mid,
            "tid": tid,
            "d": business_date,
            "type": txn_type,
            "amount": amount,
            "rule": rule,
            "code": response_code,
            "detail": detail,
            "pan": pan_masked,
            "now": db.now(),
        },
    )
    assert row is not None
    return row["id"]


def list_risk_events(
    db: Db,
    *,
    mid: str | None = None,
    business_date: str | None = None,
    tid: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Any]:
    from host.store.merchant_records import RiskEvent

    where, params = where_clause(mid=mid, business_date=business_date, tid=tid)
    params.update(limit=int(limit), offset=int(offset))
    rows = db.query(
        f"SELECT * FROM risk_events{where} ORDER BY id DESC LIMIT :limit OFFSET :offset",  # noqa: S608
        params,
    )
    return [RiskEvent(**r) for r in rows]


def add_security_events(db: Db, events: list[dict[str, Any]]) -> None:
    """Several counted events in one statement each (the monitor flushes them together)."""
    for e in events:
        db.execute(
            "INSERT INTO security_events (kind, peer, tid, detail, count, first_at, last_at)"
            " VALUES (:kind, :peer, :tid, :detail, :count, :first_at, :last_at)",
            {
                "kind": e["kind"],
                "peer": e.get("peer"),
                "tid": e.get("tid"),
                "detail": e.get("detail", ""),
                "count": int(e.get("count", 1)),
                "first_at": int(e["first_at"]),
                "last_at": int(e["last_at"]),
            },
        )


def list_security_events(
    db: Db,
    *,
    kind: str | None = None,
    tid: str | None = None,
    peer: str | None = None,
    limit: int = 100,
) -> list[Any]:
    from host.store.merchant_records import SecurityEvent

    where, params = where_clause(kind=kind, tid=tid, peer=peer)
    params.update(limit=int(limit))
    rows = db.query(
        f"SELECT * FROM security_events{where} ORDER BY id DESC LIMIT :limit",  # noqa: S608
        params,
    )
    return [SecurityEvent(**r) for r in rows]


def set_merchant_terms(db: Db, mid: str, values: dict[str, Any]) -> None:
    """Create or update a merchant's terms; None clears a field back to the default."""
    from host.store.merchant_records import BOOL_TERMS, TERMS_FIELDS

    unknown = set(values) - set(TERMS_FIELDS)
    if unknown:
        raise ValueError(f"unknown term(s): {', '.join(sorted(unknown))}")
    get_merchant(db, mid)
    db.execute(
        "INSERT INTO merchant_terms (mid, updated_at) VALUES (:mid, :now)"
        " ON CONFLICT (mid) DO NOTHING",
        {"mid": mid, "now": db.now()},
    )
    for name, value in values.items():
        if name in BOOL_TERMS and value is not None:
            value = int(bool(value))
        db.execute(
            f"UPDATE merchant_terms SET {name} = :v, updated_at = :now WHERE mid = :mid",  # noqa: S608
            {"v": value, "now": db.now(), "mid": mid},
        )


def get_merchant_terms(db: Db, mid: str) -> Any:
    """The merchant's terms (all None when none were set)."""
    from host.store.merchant_records import MerchantTerms

    row = db.query_one("SELECT * FROM merchant_terms WHERE mid = :mid", {"mid": mid})
    return MerchantTerms(mid=mid) if row is None else MerchantTerms(**row)


# ---------------------------------------------------------------------------------------------
# Merchant settlement (host/merchant/settlement.py) and reconciliation (host/merchant/recon.py)

_DAY_TOTALS_SQL = f"""
SELECT mid,
{MONEY_SUMS}FROM transactions
WHERE business_date = :d AND status = 'approved'
  AND txn_type IN {SETTLED}{{extra}}
GROUP BY mid
"""


def merchant_day_totals(db: Db, business_date: str, mid: str | None = None) -> dict[str, Any]:
    """mid -> DayTotals of the approved debits and credits (the registry's ``settles`` types)
    of one business date: what merchant settlement pays, from the journal."""
    from host.store.merchant_records import DayTotals

    params: dict[str, Any] = {"d": business_date}
    extra = ""
    if mid is not None:
        extra, params["mid"] = " AND mid = :mid", mid
    rows = db.query(_DAY_TOTALS_SQL.format(extra=extra), params)
    return {r["mid"]: DayTotals(**{k: int(r[k] or 0) for k in r if k != "mid"}) for r in rows}


def settlement_candidates(db: Db, business_date: str) -> list[str]:
    """Merchants to settle for a date: those with counted transactions that day, and those
    whose latest earlier record carried a balance over. Sorted (the run's fixed order)."""
    mids = set(merchant_day_totals(db, business_date))
    rows = db.query(
        "SELECT s.mid, s.carried_out FROM merchant_settlements s WHERE s.business_date ="
        " (SELECT MAX(p.business_date) FROM merchant_settlements p WHERE p.mid = s.mid"
        "  AND p.business_date < :d)",
        {"d": business_date},
    )
    mids.update(r["mid"] for r in rows if int(r["carried_out"]) != 0)
    return sorted(mids)


_CHANNEL_TOTALS_SQL = f"""
SELECT channel,
{MONEY_SUMS}FROM transactions
WHERE business_date = :d AND status = 'approved' AND mid = :mid
  AND txn_type IN {SETTLED}
GROUP BY channel
"""


def merchant_channel_totals(db: Db, business_date: str, mid: str) -> dict[str, Any]:
    """channel -> DayTotals of one merchant's counted rows of a business date."""
    from host.store.merchant_records import DayTotals

    rows = db.query(_CHANNEL_TOTALS_SQL, {"d": business_date, "mid": mid})
    return {
        r["channel"]: DayTotals(**{k: int(r[k] or 0) for k in r if k != "channel"}) for r in rows
    }


_RECORD_KEY = ("mid", "business_date")


def _with_channels(db: Db, rows: list[dict[str, Any]]) -> list[Any]:
    """Settlement records with their per-channel lines (one query for all of them)."""
    from host.store.merchant_records import ChannelSettlement, MerchantSettlement

    if not rows:
        return []
    params: dict[str, Any] = {}
    keys = []
    for i, r in enumerate(rows):
        params[f"m{i}"], params[f"d{i}"] = r["mid"], r["business_date"]
        keys.append(f"(mid = :m{i} AND business_date = :d{i})")
    lines = db.query(
        "SELECT * FROM merchant_settlement_channels WHERE "  # noqa: S608 (placeholders only)
        + " OR ".join(keys)
        + " ORDER BY channel",
        params,
    )
    by_record: dict[tuple[str, str], list[Any]] = {}
    for line in lines:
        by_record.setdefault((line["mid"], line["business_date"]), []).append(
            ChannelSettlement(**{k: v for k, v in line.items() if k not in _RECORD_KEY})
        )
    return [
        MerchantSettlement(**r, channels=tuple(by_record.get((r["mid"], r["business_date"]), ())))
        for r in rows
    ]


def get_merchant_settlement(db: Db, mid: str, business_date: str) -> Any:
    row = db.query_one(
        "SELECT * FROM merchant_settlements WHERE mid = :mid AND business_date = :d",
        {"mid": mid, "d": business_date},
    )
    return None if row is None else _with_channels(db, [row])[0]


def list_merchant_settlements(
    db: Db, *, mid: str | None = None, business_date: str | None = None, limit: int = 1000
) -> list[Any]:
    where, params = where_clause(mid=mid, business_date=business_date)
    params["limit"] = int(limit)
    rows = db.query(
        f"SELECT * FROM merchant_settlements{where}"  # noqa: S608
        " ORDER BY business_date DESC, mid LIMIT :limit",
        params,
    )
    return _with_channels(db, rows)


def settle_merchant(
    db: Db,
    mid: str,
    business_date: str,
    *,
    cycle: str,
    fee_rate: str,
    min_payout: int,
    payout_date: str,
    channel_rates: dict[str, str] | None = None,
) -> Any:
    """Create the merchant's settlement record for ``business_date`` from the journal, in one
    transaction, exactly once: when the record exists already it is returned unchanged (a
    re-run, or another process that got there first).

    Fees are per channel: each channel's gross at its rate in ``channel_rates`` (default:
    cards at ``fee_rate``), rounded once per merchant, date and channel; the record's fee is
    their sum, and each channel gets its line in ``merchant_settlement_channels``.
    ``fee_rate`` stays the record's card rate."""
    from host.store.merchant_records import DayTotals, fee_for

    existing = get_merchant_settlement(db, mid, business_date)
    if existing is not None:
        return existing
    check_choice(cycle, ("T1", "D0"), "cycle")
    rates = {"card": fee_rate} if channel_rates is None else dict(channel_rates)
    by_channel = merchant_channel_totals(db, business_date, mid)
    missing = sorted(set(by_channel) - set(rates))
    if missing:
        raise ValueError(f"no fee rate for channel(s) {', '.join(missing)}")
    totals = DayTotals(
        *(sum(getattr(t, f) for t in by_channel.values()) for f in
          ("debit_count", "debit_amount", "credit_count", "credit_amount"))
    )  # fmt: skip
    carried_in = _carried_in(db, mid, business_date)
    gross = totals.gross
    fees = {ch: fee_for(t.gross, rates[ch]) for ch, t in by_channel.items()}
    fee = sum(fees.values())
    net = gross - fee
    balance = net + carried_in
    payout = balance if balance >= min_payout and balance > 0 else 0
    params = {
        "mid": mid,
        "d": business_date,
        "cycle": cycle,
        "payout_date": payout_date,
        "dc": totals.debit_count,
        "da": totals.debit_amount,
        "cc": totals.credit_count,
        "ca": totals.credit_amount,
        "gross": gross,
        "rate": rates.get("card", fee_rate),
        "fee": fee,
        "net": net,
        "cin": carried_in,
        "payout": payout,
        "cout": balance - payout,
        "status": "paid" if payout else "carried",
        "now": db.now(),
    }
    inserted = db.execute(
        "INSERT INTO merchant_settlements (mid, business_date, cycle, payout_date, debit_count,"
        " debit_amount, credit_count, credit_amount, gross, fee_rate, fee, net, carried_in,"
        " payout, carried_out, status, created_at) VALUES (:mid, :d, :cycle, :payout_date,"
        " :dc, :da, :cc, :ca, :gross, :rate, :fee, :net, :cin, :payout, :cout, :status, :now)"
        " ON CONFLICT (mid, business_date) DO NOTHING",
        params,
    )
    if inserted:
        for channel, t in sorted(by_channel.items()):
            _insert_channel_line(db, mid, business_date, channel, t, rates[channel], fees[channel])
    return get_merchant_settlement(db, mid, business_date)


def _carried_in(db: Db, mid: str, business_date: str) -> int:
    """What the merchant's previous settlement carried out (a payout below the minimum)."""
    previous = db.query_one(
        "SELECT carried_out FROM merchant_settlements WHERE mid = :mid"
        " AND business_date < :d ORDER BY business_date DESC LIMIT 1",
        {"mid": mid, "d": business_date},
    )
    return int(previous["carried_out"]) if previous else 0


def _insert_channel_line(
    db: Db, mid: str, business_date: str, channel: str, totals: Any, rate: str, fee: int
) -> None:
    db.execute(
        "INSERT INTO merchant_settlement_channels (mid, business_date, channel,"
        " debit_count, debit_amount, credit_count, credit_amount, gross, fee_rate, fee)"
        " VALUES (:mid, :d, :ch, :dc, :da, :cc, :ca, :gross, :rate, :fee)",
        {"mid": mid, "d": business_date, "ch": channel, "dc": totals.debit_count,
         "da": totals.debit_amount, "cc": totals.credit_count, "ca": totals.credit_amount,
         "gross": totals.gross, "rate": rate, "fee": fee},
    )  # fmt: skip


def counted_transactions(db: Db, mid: str, business_date: str) -> list[Transaction]:
    """The journal rows a merchant's settlement counts for a date (approved debits and
    credits), in journal order: the transaction detail file."""
    rows = db.query(
        "SELECT * FROM transactions WHERE mid = :mid AND business_date = :d"  # noqa: S608 (registry type names, never input)
        " AND status = 'approved'"
        f" AND txn_type IN {SETTLED}"
        " ORDER BY id",
        {"mid": mid, "d": business_date},
    )
    return [Transaction(**r) for r in rows]
