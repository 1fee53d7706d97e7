"""Merchant operations: settlement, reconciliation, risk, operators, activation, business day,
and real-time notifications (webhooks)."""
