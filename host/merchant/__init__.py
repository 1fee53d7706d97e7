"""Merchant operations: risk limits, operators and terms, activation, the business day,
merchant settlement and reconciliation, master and secondary terminals (tills), and real-time
notifications (webhooks)."""
