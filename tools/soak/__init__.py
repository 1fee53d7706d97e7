"""The soak run (`make soak`): live purchases through the real host and issuer simulator
processes while they are attacked and killed, then the journal is checked against the
issuer's ledger. The comparison lives in :mod:`tools.soak.compare`; see docs/soak.md."""
