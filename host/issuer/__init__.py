"""Issuer links and their protocols."""
