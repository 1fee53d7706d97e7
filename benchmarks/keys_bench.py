"""Operations per second of the SoftHSM calls the host makes per transaction.

Run: .venv/bin/python benchmarks/keys_bench.py [--seconds 0.5]

"cold" clears every SoftHSM cache before each call (cipher objects, DUKPT keys), which is the
cost of the first transaction of a session or device; "warm" is the steady state. For DUKPT,
"warm, next KSN" walks fresh consecutive counters of one device once each (the IPEK and the
cached counter path are reused, the final key is new), "warm, same KSN" repeats one KSN (as the
PIN and MAC steps of one transaction do).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from keys import des, dukpt, pinblock
from keys.hsm import DukptSource, SoftHSM
from keys.mac import unionpay_ecb_mac, x919_mac
from keys.tokens import KeyType

PAN = "6222021234567890123"
K2 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
ZPK = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")
AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")


def rate(fn: Callable[[int], object], seconds: float) -> tuple[float, float]:
    """(operations per second, microseconds per operation) of fn(i) over ``seconds``."""
    n, i = 0, 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn(i)
            i += 1
        n += 50
        now = time.perf_counter()
        if now >= deadline:
            break
    per = (now - start) / n
    return 1 / per, per * 1e6


def once_each(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """(operations per second, microseconds per operation) of fn(0..n-1), each once."""
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    per = (time.perf_counter() - start) / n
    return 1 / per, per * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = ap.parse_args()
    hsm = SoftHSM(SoftHSM.generate_lmk(), clear_test_keys=True)  # published test keys
    data = bytes(range(200))

    tak = hsm.import_clear(KeyType.TAK, K2[:8])
    tak2 = hsm.import_clear(KeyType.TAK, K2)
    up_mac = unionpay_ecb_mac(K2[:8], data)
    x_mac = x919_mac(K2, data)
    pik = hsm.import_clear(KeyType.PIK, K2)
    zpk = hsm.import_clear(KeyType.ZPK, ZPK)
    block = des.encrypt_ecb(K2, pinblock.encode(0, "123456", PAN))

    tbdk = hsm.import_clear(KeyType.BDK, K2)
    ipek = dukpt.derive_ipek(K2, bytes.fromhex("FFFF9876543210E00000"))
    tksns = [
        bytes.fromhex("FFFF9876543210") + (0xE00001 + i).to_bytes(3, "big") for i in range(4000)
    ]
    tksns = [k for k in tksns if bin(int.from_bytes(k[-3:], "big") & 0x1FFFFF).count("1") <= 10]
    tblocks = {}

    def tdes_block(k: bytes) -> bytes:
        b = tblocks.get(k)
        if b is None:
            tk = dukpt.derive_transaction_key(ipek, k)
            b = tblocks[k] = des.encrypt_ecb(dukpt.pin_key(tk), pinblock.encode(0, "1234", PAN))
        return b

    abdk = hsm.import_clear(KeyType.BDK_AES, AES_BDK)
    ik = dukpt.derive_initial_key(AES_BDK, bytes.fromhex("1234567890123456"))
    aksns = [bytes.fromhex("1234567890123456") + (i + 1).to_bytes(4, "big") for i in range(4000)]
    ablocks = {}

    def aes_block(k: bytes) -> bytes:
        b = ablocks.get(k)
        if b is None:
            dk = dukpt.derive_aes_derivation_key(ik, k)
            pk = dukpt.derive_working_key(
                dk, k, dukpt.KeyUsage.PIN_ENCRYPTION, dukpt.DerivedKeyType.AES128
            )
            b = ablocks[k] = pinblock.encode(4, "1234", PAN, key=pk)
        return b

    n_pre = 1500
    for k in tksns[:n_pre]:
        tdes_block(k)
    for k in aksns[:n_pre]:
        aes_block(k)

    def cold(fn):
        def run(i):
            hsm.clear_caches()
            return fn(i)

        return run

    def up(i):
        assert hsm.verify_mac(tak, data, up_mac)

    def x9(i):
        assert hsm.verify_mac(tak2, data, x_mac, "x9.19")

    def tr(i):
        return hsm.translate_pin(block, PAN, pik, zpk)

    def tdukpt_next(i):
        k = tksns[i % n_pre]
        return hsm.translate_pin(tdes_block(k), PAN, DukptSource(tbdk, k), zpk)

    def tdukpt_same(i):
        k = tksns[0]
        return hsm.translate_pin(tdes_block(k), PAN, DukptSource(tbdk, k), zpk)

    def adukpt_next(i):
        k = aksns[i % n_pre]
        return hsm.translate_pin(aes_block(k), PAN, DukptSource(abdk, k), zpk)

    def adukpt_same(i):
        k = aksns[0]
        return hsm.translate_pin(aes_block(k), PAN, DukptSource(abdk, k), zpk)

    rows = [
        ("MAC verify, UnionPay ECB, 200 B", up, None),
        ("MAC verify, X9.19, 200 B", x9, None),
        ("PIN translate PIK->ZPK", tr, None),
        ("TDES DUKPT derive + translate", tdukpt_next, tdukpt_same),
        ("AES DUKPT derive + translate", adukpt_next, adukpt_same),
    ]
    print(f"{'operation':36} {'cold ops/s':>11} {'us':>7} {'warm ops/s':>11} {'us':>7}  note")
    for name, warm_fn, same_fn in rows:
        c_ops, c_us = rate(cold(warm_fn), args.seconds)
        hsm.clear_caches()
        if same_fn:
            warm_fn(0)  # first transaction of the device: IPEK/IK and path now cached
            w_ops, w_us = once_each(lambda i, f=warm_fn: f(i + 1), n_pre - 1)
        else:
            w_ops, w_us = rate(warm_fn, args.seconds)
        note = "warm = next KSN of the device" if same_fn else ""
        print(f"{name:36} {c_ops:11,.0f} {c_us:7.1f} {w_ops:11,.0f} {w_us:7.1f}  {note}")
        if same_fn:
            s_ops, s_us = rate(same_fn, args.seconds)
            print(f"{'':36} {'':11} {'':7} {s_ops:11,.0f} {s_us:7.1f}  warm = same KSN again")


if __name__ == "__main__":
    main()
