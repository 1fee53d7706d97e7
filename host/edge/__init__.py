"""The network edge: the terminal-facing server (connections, limits, framing) and dispatch,
which turns one framed request into one flow run and one framed response."""
