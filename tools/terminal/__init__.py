"""A UnionPay-style POS terminal: the device model (keys, STAN, batch) and its TCP client."""
