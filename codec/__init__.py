"""Bytes <-> ISO 8583 messages for the terminal and issuer dialects.

Pure: no sockets, no clocks, no databases. Everything here is tested with plain bytes.
"""
