"""Merchant operations: what a merchant's terms, terminals and money add up to."""
