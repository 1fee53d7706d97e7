"""`poshost hsm-sim`: a network HSM on top of ``keys/`` speaking the payShield-style command
subset of keys/hsm_wire.py on its own socket (docs/hsm.md)."""
