"""A foreign acquirer driving the simulator, with frames built byte by byte.

Nothing here uses our codec: requests are assembled and answers taken apart by hand, from ISO
8583:1987 and the issuer dialect (2-byte binary length prefix, ASCII MTI and numeric fields,
binary primary and secondary bitmaps, ASCII LL/LLL length prefixes), as an independent client
(say an npm ``iso_8583`` one) would.
"""

from __future__ import annotations

import json

import attrs
import trio

from tools.issuer_sim.testing import FOREIGN, LOW, PIN, RICH, pin_block, run_sim

T7 = b"1201101010"
TID = b"FOREIGN1"
MID = b"MERCHANT0000001"

# ISO 8583:1987 formats of the fields an answer may carry: (length, prefix digits); b = bytes
ANSWER_FORMATS = {
    2: (19, 2), 3: (6, 0), 4: (12, 0), 7: (10, 0), 11: (6, 0), 32: (11, 2), 37: (12, 0),
    38: (6, 0), 39: (2, 0), 41: (8, 0), 42: (15, 0), 48: (999, 3), 49: (3, 0), 54: (120, 3),
    70: (3, 0),
}  # fmt: skip


def ll(data: bytes) -> bytes:
    return b"%02d" % len(data) + data


def lll(data: bytes) -> bytes:
    return b"%03d" % len(data) + data


def frame(mti: bytes, fields: dict[int, bytes]) -> bytes:
    """Length prefix (2 bytes, binary), MTI (4 ASCII), bitmap(s) (binary), fields in order."""
    bits = set(fields)
    if any(n > 64 for n in bits):
        bits.add(1)
    bitmap = 0
    for n in bits:
        bitmap |= 1 << (128 - n)
    size = 16 if 1 in bits else 8
    bitmap_bytes = bitmap.to_bytes(16, "big")[:size]
    body = mti + bitmap_bytes + b"".join(fields[n] for n in sorted(fields))
    return len(body).to_bytes(2, "big") + body


def parse(body: bytes) -> tuple[str, dict[int, str]]:
    """An answer taken apart with the ISO 8583:1987 formats above."""
    mti = body[:4].decode("ascii")
    bitmap = int.from_bytes(body[4:12], "big")
    pos, bits = 12, [n for n in range(1, 65) if bitmap >> (64 - n) & 1]
    if 1 in bits:
        second = int.from_bytes(body[12:20], "big")
        bits = bits[1:] + [64 + n for n in range(1, 65) if second >> (64 - n) & 1]
        pos = 20
    fields = {}
    for n in bits:
        length, prefix = ANSWER_FORMATS[n]
        if prefix:
            length, pos = int(body[pos : pos + prefix]), pos + prefix
        fields[n] = body[pos : pos + length].decode("ascii")
        pos += length
    assert pos == len(body), "trailing bytes"
    return mti, fields


class Peer:
    """A raw TCP client: sends bytes, reads length-prefixed answers in arrival order."""

    def __init__(self, stream: trio.SocketStream):
        self.stream, self.buf = stream, b""

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def answer(self, timeout: float = 5) -> tuple[str, dict[int, str]] | None:
        """The next answer; None when none comes within ``timeout``."""
        with trio.move_on_after(timeout):
            while True:
                if len(self.buf) >= 2:
                    n = int.from_bytes(self.buf[:2], "big")
                    if len(self.buf) >= 2 + n:
                        body, self.buf = self.buf[2 : 2 + n], self.buf[2 + n :]
                        return parse(body)
                data = await self.stream.receive_some(4096)
                if not data:
                    return None
                self.buf += data
        return None

    async def closed(self, timeout: float) -> bool:
        with trio.move_on_after(timeout):
            while await self.stream.receive_some(4096):
                pass
            return True
        return False


async def peer(port: int) -> Peer:
    return Peer(await trio.open_tcp_stream("127.0.0.1", port))


def financial(
    mti=b"0200", proc=b"000000", amount=b"000000001000", stan=b"000001", rrn=b"RRN000000001",
    pan: bytes | None = RICH.encode(), extra: dict[int, bytes] | None = None,
) -> bytes:  # fmt: skip
    fields = {3: proc, 4: amount, 7: T7, 11: stan, 37: rrn, 41: TID, 42: MID, 49: b"156"}
    if pan is not None:
        fields[2] = ll(pan)
    fields.update(extra or {})
    return frame(mti, {n: v for n, v in fields.items() if v is not None})


def test_bad_content_is_a_30_and_the_link_keeps_serving(config, tmp_path):
    record = tmp_path / "rec.jsonl"
    config = attrs.evolve(config, record=record)
    iso_only = {
        15: b"1201",  # settlement date n4
        45: ll(b"B" + RICH.encode() + b"^CARDHOLDER/TEST^3012101"),  # track 1
        60: lll(b"NATIONAL USE"),
        102: ll(b"ACCOUNT-1"),  # account identification 1
    }

    async def body(sim, port):
        p = await peer(port)
        # a bad amount and a good request in one write: the good one is not lost
        bad = financial(amount=b"00000000ABCD", stan=b"000001", rrn=b"RRN000000001")
        good = financial(stan=b"000002", rrn=b"RRN000000002")
        await p.send(bad + good)
        answers = {f[11]: (mti, f) for mti, f in [await p.answer(), await p.answer()]}
        mti, f = answers["000001"]
        assert (mti, f[39], f[41], f[37]) == ("0210", "30", "FOREIGN1", "RRN000000001")
        assert 4 not in f and 38 not in f
        assert answers["000002"][1][39] == "00"
        # fields only ISO 8583:1987 defines are ignored; the request is served
        await p.send(financial(stan=b"000003", rrn=b"RRN000000003", extra=iso_only))
        mti, f = await p.answer()
        assert (mti, f[39], f[11]) == ("0210", "00", "000003")
        # a length prefix that is not digits: 30 with what was read before it
        broken = financial(stan=b"000004", rrn=b"RRN000000004", extra={60: b"ABCxyz"})
        await p.send(broken)
        mti, f = await p.answer()
        assert (mti, f[39], f[11]) == ("0210", "30", "000004")
        # a frame without an MTI cannot be answered; the link stays up
        await p.send(frame(b"HELO", {11: b"000005"}))
        assert await p.answer(timeout=0.3) is None
        await p.send(financial(stan=b"000006", rrn=b"RRN000000006"))
        assert (await p.answer())[1][39] == "00"
        assert (await sim.card(RICH)).balance == 10_000_000 - 3 * 1_000
        await p.stream.aclose()

    run_sim(config, body)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    outcomes = {(ln["request"].get("11"), ln["outcome"]) for ln in lines}
    assert ("000001", "format error") in outcomes and ("000004", "format error") in outcomes
    assert (None, "refused") in outcomes and len(lines) == 6
    errors = [ln.get("error") for ln in lines]
    assert "field 4: not numeric" in errors
    assert RICH not in record.read_text() and "CARDHOLDER" not in record.read_text()


def test_repeats_are_answered_with_the_iso_8583_1987_mti(config):
    async def body(sim, port):
        p = await peer(port)
        await p.send(financial(stan=b"000010", rrn=b"RRN000000010"))
        assert (await p.answer())[1][39] == "00"
        original = b"0200" + b"000010" + T7 + b"0" * 22
        for mti, answer in ((b"0400", "0410"), (b"0401", "0410"), (b"0420", "0430")):
            await p.send(financial(mti, stan=b"000010", rrn=b"RRN000000010", extra={90: original}))
            got, f = await p.answer()
            assert (got, f[39], f[11]) == (answer, "00", "000010")
        await p.send(financial(b"0421", stan=b"000010", rrn=b"RRN000000010", extra={90: original}))
        assert (await p.answer())[0] == "0430"
        assert (await sim.card(RICH)).balance == 10_000_000  # reversed once
        # an advice and its repeat (0221): one refund, the same answer, MTI 0230
        refund = {"proc": b"200000", "amount": b"000000000500", "stan": b"000011"}
        await p.send(financial(b"0220", rrn=b"RRN000000011", **refund))
        first = await p.answer()
        await p.send(financial(b"0221", rrn=b"RRN000000011", **refund))
        again = await p.answer()
        assert (first[0], again[0], again[1][39]) == ("0230", "0230", "00")
        assert (await sim.card(RICH)).balance == 10_000_000 + 500
        await p.stream.aclose()

    run_sim(config, body)


def test_a_duplicate_is_the_same_request_not_the_same_rrn(config):
    async def body(sim, port):
        p = await peer(port)
        first = financial(stan=b"000020", rrn=b"RRN000000020", amount=b"000000002000")
        await p.send(first)
        _, a = await p.answer()
        await p.send(first)  # a true repeat: the first answer, no second debit
        _, b = await p.answer()
        assert (b[39], b[38]) == ("00", a[38])
        assert (await sim.card(RICH)).balance == 10_000_000 - 2_000
        # the same 41 + 11 + 7 + 37 with another card and amount: 94, nothing moves
        other = financial(stan=b"000020", rrn=b"RRN000000020", pan=FOREIGN.encode())
        await p.send(other)
        assert (await p.answer())[1][39] == "94"
        # a reused 37 under a new STAN is a new request: served and debited
        reused = financial(stan=b"000021", rrn=b"RRN000000020", pan=FOREIGN.encode())
        await p.send(reused)
        _, c = await p.answer()
        assert c[39] == "00" and c[38] != a[38]
        assert (await sim.card(FOREIGN)).balance == 2_000_000 - 1_000
        # a declined void can be retried (same 37 naming the purchase, new STAN)
        original = b"0200" + b"000020" + T7 + b"0" * 22
        void = {"proc": b"200000", "rrn": b"RRN000000020", "extra": {90: original}}
        await p.send(financial(stan=b"000022", amount=b"000000002001", **void))
        assert (await p.answer())[1][39] == "64"
        await p.send(financial(stan=b"000023", amount=b"000000002000", **void))
        assert (await p.answer())[1][39] == "00"
        assert (await sim.card(RICH)).balance == 10_000_000
        await p.stream.aclose()

    run_sim(config, body)


def test_what_foreign_acquirers_send(config):
    async def body(sim, port):
        p = await peer(port)
        # track 2 only, no field 2: the card number and expiry come from the track
        track = ll(RICH.encode() + b"=30121010000000000")
        await p.send(financial(stan=b"000030", rrn=b"RRN000000030", pan=None, extra={35: track}))
        _, f = await p.answer()
        assert f[39] == "00" and 2 not in f
        assert (await sim.card(RICH)).balance == 10_000_000 - 1_000
        # a plain authorization (0100, 3 = 000000) holds the amount
        await p.send(
            financial(b"0100", stan=b"000031", rrn=b"RRN000000031", amount=b"000000050000")
        )
        mti, f = await p.answer()
        assert (mti, f[39]) == ("0110", "00")
        assert [h.amount for h in await sim.holds(RICH)] == [50_000]
        # a partial reversal: field 95 says only 300.00 of 500.00 happened
        await p.send(financial(stan=b"000032", rrn=b"RRN000000032", amount=b"000000050000"))
        assert (await p.answer())[1][39] == "00"
        original = b"0200" + b"000032" + T7 + b"0" * 22
        replacement = b"000000030000" + b"0" * 30
        partial = financial(
            b"0400", stan=b"000032", rrn=b"RRN000000032", amount=b"000000050000",
            extra={90: original, 95: replacement},
        )  # fmt: skip
        await p.send(partial)
        mti, f = await p.answer()
        assert (mti, f[39]) == ("0410", "00")
        assert (await sim.card(RICH)).balance == 10_000_000 - 1_000 - 30_000
        await p.send(partial.replace(b"0400", b"0401", 1))  # its repeat gives back nothing more
        assert (await p.answer())[0] == "0410"
        assert (await sim.card(RICH)).balance == 10_000_000 - 1_000 - 30_000
        # a balance inquiry repeated with the same 37 (and 11): today's balance, not the first
        inquiry = financial(
            proc=b"310000", amount=None, stan=b"000033", rrn=b"RRN000000033", pan=LOW.encode(),
            extra={52: pin_block(PIN, LOW)},
        )  # fmt: skip
        await p.send(inquiry)
        _, f = await p.answer()
        assert f[39] == "00" and f[54][:20] == "0001156C000000001000"
        await p.send(
            financial(stan=b"000034", rrn=b"RRN000000034", pan=LOW.encode(), amount=b"000000000400")
        )
        assert (await p.answer())[1][39] == "00"
        await p.send(inquiry)
        _, f = await p.answer()
        assert f[39] == "00" and f[54][:20] == "0001156C000000000600"  # 10.00 - 4.00
        await p.stream.aclose()

    run_sim(config, body)


def test_a_half_sent_frame_times_out(config):
    config = attrs.evolve(config, frame_timeout=0.3)

    async def body(sim, port):
        p, other = await peer(port), await peer(port)
        await p.send(financial()[:20])  # the prefix promises more than ever comes
        assert await p.closed(timeout=5)
        await other.send(financial(stan=b"000040", rrn=b"RRN000000040"))
        assert (await other.answer())[1][39] == "00"
        assert sim.stats["frame_timeouts"] == 1
        await other.stream.aclose()

    run_sim(config, body)
