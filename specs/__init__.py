"""Declarative data: dialect field tables, transaction types, response codes, cert suites."""
