"""Load generator: N emulated terminals, open-loop at a target rate or as fast as possible."""
