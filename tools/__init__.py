"""The host's peers: terminal emulator, issuer simulator, load generator, certification, keys."""
