"""Issuer simulator data: demo configuration and cards, example rules and scripts."""
