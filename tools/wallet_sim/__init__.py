"""wallet-sim: a QR wallet platform for the host's wallet link (docs/qr.md). Users with
balances, rotating one-time payment codes, "user paying" above a password threshold, orders
paid by scanning, signed notifications with retries, refunds, fault injection, a record and a
daily bill."""
