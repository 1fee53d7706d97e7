"""wallet-sim data: the demo users."""
