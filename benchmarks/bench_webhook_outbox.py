"""What the webhook outbox costs the journal writer: CPU-µs per ``record_outcome`` on SQLite,
for a merchant without a webhook with the event check off (the code before webhooks) and on,
and for a merchant with a webhook (the event row written in the outcome's transaction).
Groups of 100 outcomes per commit, as the writer's group commit makes them under load.

    python benchmarks/bench_webhook_outbox.py [--n 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import structlog

from host.store import ops, webhooks
from host.store.db import connect
from host.store.records import NewTransaction
from host.store.schema import migrate

PLAIN, HOOKED = "M" * 15, "N" * 15


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        db = connect(f"sqlite:///{tmp}/journal.sqlite", writer=True)
        migrate(db)
        db.begin(immediate=True)
        for mid in (PLAIN, HOOKED):
            ops.add_merchant(db, mid, "SHOP", "5411")
        webhooks.set_webhook(db, HOOKED, "https://shop.example/hook", "s1:x", "ABC123")
        db.commit()
        stan = 0

        def per_outcome(mid: str, notify: bool) -> float:
            nonlocal stan
            ids = []
            db.begin(immediate=True)
            for _ in range(args.n):
                stan += 1
                ids.append(ops.insert_pending(db, NewTransaction(
                    tid="T0000001", mid=mid, batch="000001", stan=f"{stan % 1_000_000:06d}",
                    business_date=f"2026{1 + stan // 1_000_000:04d}", txn_type="purchase",
                    mti="0200", amount=100)))  # fmt: skip
            db.commit()
            start = time.process_time()
            for i in range(0, args.n, 100):
                db.begin(immediate=True)
                for txn_id in ids[i : i + 100]:
                    ops.record_outcome(db, txn_id, status="approved", response_code="00",
                                       notify=notify)  # fmt: skip
                db.commit()
            return (time.process_time() - start) / args.n * 1e6

        print("CPU-µs per record_outcome (SQLite, 100 per commit):")
        for _ in range(args.rounds):
            off, on, hooked = per_outcome(PLAIN, False), per_outcome(PLAIN, True), per_outcome(
                HOOKED, True)  # fmt: skip
            print(f"  no webhook, check off {off:5.1f} | no webhook, check on {on:5.1f}"
                  f" | webhook, event written {hooked:5.1f}")  # fmt: skip
        db.close()


if __name__ == "__main__":
    main()
