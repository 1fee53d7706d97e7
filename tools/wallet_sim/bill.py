"""The wallet's daily bill (docs/qr.md, "The daily bill"): every payment and refund of one
calendar day in the wallet's time zone, as CSV with ``#`` comment lines around it, the way the
wallets' downloadable bills look. ``poshost settle check --wallet-bill FILE`` ties the host's QR
totals to it."""

from __future__ import annotations

import csv
import datetime as dt
import io

from codec import wallet as w
from tools.wallet_sim.ledger import Ledger

COLUMNS = ["time", "type", "trade_no", "out_trade_no", "out_request_no", "store_id",
           "terminal_id", "amount"]  # fmt: skip


def bill_csv(ledger: Ledger, day: str, app_id: str) -> str:
    rows = ledger.bill_rows(day)
    out = io.StringIO()
    out.write(f"# wallet-sim daily bill\n# app_id,{app_id}\n# date,{day}\n")
    out.write(f"# timezone,{ledger.tz.key}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    totals = {"pay": [0, 0], "refund": [0, 0]}
    for r in rows:
        at = dt.datetime.fromtimestamp(r["at"], ledger.tz).strftime("%Y-%m-%d %H:%M:%S")
        writer.writerow([at, r["type"], r["trade_no"], r["out_trade_no"], r["out_request_no"],
                         r["store_id"], r["terminal_id"], w.yuan(r["amount"])])  # fmt: skip
        totals[r["type"]][0] += 1
        totals[r["type"]][1] += r["amount"]
    for kind, (count, amount) in totals.items():
        out.write(f"# total {kind},{count},{w.yuan(amount)}\n")
    return out.getvalue()
