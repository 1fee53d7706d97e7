"""The issuer side: BIN routing, the issuer-protocol seam, links and store-and-forward."""
