"""Certification suites (TOML), read by tools.certify."""
