"""The acquiring host: Trio server, sessions, flows, router, issuer links, journal, CLI."""
