"""Merchant operations: risk limits, operators and terms, activation, the business day,
merchant settlement and reconciliation."""
