"""All cryptography of poshost, behind an HSM-like interface. Pure: no sockets, no clocks."""
