"""Merchant operations."""
