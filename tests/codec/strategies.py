"""Hypothesis strategies that generate valid messages from a dialect table (not hand-listed)."""

from __future__ import annotations

from hypothesis import strategies as st

from codec.dialect import DialectTable, FieldDef
from codec.errors import CodecError
from codec.message import Message

DIGITS = "0123456789"
ANS = "".join(chr(c) for c in range(0x20, 0x7F))
# terminal tracks: digits, the separator, and the hex letters an encrypted track may show
# (D is the separator nibble itself, so it is never a value character)
Z_BCD = DIGITS + "=ABCEF"
Z_ASCII = DIGITS + "="


def value_for(fd: FieldDef, bcd: bool) -> st.SearchStrategy:
    lo = fd.length if fd.prefix == 0 else 0
    hi = fd.length
    if fd.format == "b":
        return st.binary(min_size=lo, max_size=hi)
    alphabet = {
        "n": DIGITS,
        "z": Z_BCD if bcd else Z_ASCII,
        "an": ANS,
        "ans": ANS,
    }[fd.format]
    return st.text(alphabet=alphabet, min_size=lo, max_size=hi)


def messages(table: DialectTable, mtis=("0100", "0200", "0210", "0400", "0800")):
    bcd = table.encoding == "bcd"
    per_field = {fd.number: value_for(fd, bcd) for fd in table.fields}

    @st.composite
    def build(draw):
        chosen = draw(st.sets(st.sampled_from(sorted(per_field)), max_size=len(per_field)))
        fields = {n: draw(per_field[n]) for n in sorted(chosen)}
        return Message(draw(st.sampled_from(mtis)), fields)

    return build()


def decodes_or_codec_error(decode, data: bytes) -> Message | None:
    """The contract for any input: a Message, or a CodecError that says where and why."""
    try:
        result = decode(data)
    except CodecError as e:
        assert e.reason
        assert e.field is not None
        assert isinstance(e.offset, int)
        return None
    assert isinstance(result, Message)
    return result
