"""A-XDR Data: every type of protocol.md §3, both length forms, truncation, nesting."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.hanport.han.dlms import axdr
from custom_components.hanport.han.dlms.axdr import Data, DateTimeField, Encodable, Typed
from custom_components.hanport.han.errors import FrameError, RejectReason

H = bytes.fromhex


def _decode_all(buf: bytes) -> Data:
    value, end = axdr.decode(buf)
    assert end == len(buf)
    return value


@pytest.mark.parametrize(
    ("hexdata", "expected"),
    [
        ("00", None),
        ("0300", False),
        ("0301", True),
        ("03FF", True),
        ("05FFFFFFFE", -2),
        ("0580000000", -(2**31)),
        ("06FFFFFFFF", 2**32 - 1),
        ("0F80", -128),
        ("0F7F", 127),
        ("10FF38", -200),
        ("1180", 128),
        ("12FFFF", 65535),
        ("14FFFFFFFFFFFFFFFF", -1),
        ("15FFFFFFFFFFFFFFFF", 2**64 - 1),
        ("161B", 27),
        ("0D42", 0x42),
        ("173FC00000", 1.5),
        ("18C004000000000000", -2.5),
        ("0903010203", b"\x01\x02\x03"),
        ("0900", b""),
        ("0A034B464D", "KFM"),
        ("0A02E6F8", "æø"),  # visible-string bytes read as latin-1, never an error
        ("0C04C3A6C3B8", "æø"),
        ("0C02C3FF", "\ufffd\ufffd"),  # invalid UTF-8 replaced, never an error
        ("040C ABCD".replace(" ", ""), b"\xab\xcd"),  # 12 bits -> 2 bytes
        ("0409FF80", b"\xff\x80"),
        ("0400", b""),
        ("0100", []),
        ("0200", ()),
        ("0102 1101 1102".replace(" ", ""), [1, 2]),
        ("0202 0A0141 00".replace(" ", ""), ("A", None)),
    ],
)
def test_every_type_decodes(hexdata: str, expected: Data) -> None:
    assert _decode_all(H(hexdata)) == expected


def test_float_types_keep_special_values() -> None:
    value = _decode_all(H("177FC00000"))
    assert isinstance(value, float)
    assert math.isnan(value)
    assert _decode_all(H("18FFF0000000000000")) == -math.inf


@pytest.mark.parametrize(("tag", "size"), [(0x19, 12), (0x1A, 5), (0x1B, 4)])
def test_date_types_are_kept_raw(tag: int, size: int) -> None:
    raw = bytes(range(1, size + 1))
    assert _decode_all(bytes((tag,)) + raw) == DateTimeField(tag, raw)
    assert axdr.encode(DateTimeField(tag, raw)) == bytes((tag,)) + raw


def test_decode_starts_at_pos_and_returns_next_position() -> None:
    buf = H("AABB 1101 120300".replace(" ", ""))
    assert axdr.decode(buf, 2) == (1, 4)
    assert axdr.decode(buf, 4) == (0x0300, 7)


@pytest.mark.parametrize("length", [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x1234, 0xFFFF, 0x10000])
def test_length_forms_round_trip(length: int) -> None:
    encoded = axdr.encode_length(length)
    assert len(encoded) == (1 if length < 0x80 else 2 if length <= 0xFF else 3 + (length > 0xFFFF))
    assert axdr.read_length(encoded + b"\xee", 0) == (length, len(encoded))


@pytest.mark.parametrize(
    ("prefix", "payload"),
    [
        ("0981", b"x" * 0x90),
        ("0A81", b"y" * 0x80),
        ("0C82", b"z" * 0x120),
        ("0983", b"w" * 5),  # non-minimal long forms are accepted
        ("0984", b"v" * 3),
    ],
)
def test_long_form_string_lengths(prefix: str, payload: bytes) -> None:
    count = int(prefix[3]) if prefix[2] == "8" else 0
    buf = H(prefix) + len(payload).to_bytes(count, "big") + payload
    value = _decode_all(buf)
    assert (value if isinstance(value, bytes) else str(value).encode()) == payload


def test_long_form_counts_for_containers() -> None:
    items = H("0181 90") + H("1107") * 0x90
    assert _decode_all(items) == [7] * 0x90
    struct_ = H("0282 0100") + H("00") * 0x100
    assert _decode_all(struct_) == (None,) * 0x100
    bits = H("04 81 80") + b"\x55" * 16
    assert _decode_all(bits) == b"\x55" * 16


@pytest.mark.parametrize(
    "hexdata",
    [
        "0980",  # long form with no length bytes
        "0985" + "00" * 5,  # more than 4 length bytes
        "0982 01",  # long form cut short
        "09",  # no length at all
        "0102 11",  # count larger than the elements present
        "01FF",  # count larger than the data
        "0906 010203",  # string longer than the data
        "0A81 FF 41",
        "0411 FF",  # 17 bits need 3 bytes
        "03",  # boolean without its byte
        "13 00",  # compact-array: not a HAN type
        "07 00",  # unassigned tag
        "FF",  # don't-care is not expected in a push body
        "",
    ],
)
def test_malformed_data_raises(hexdata: str) -> None:
    with pytest.raises(FrameError) as err:
        axdr.decode(H(hexdata.replace(" ", "")))
    assert err.value.reason is RejectReason.MALFORMED_APDU


_EVERY_TYPE = H(
    "02 16"
    "00 0301 05FFFFFFFE 0600000001 0F80 10FF38 1180 12FFFF 14" + "00" * 8 + "15" + "01" * 8 + "161B"
    "173FC00000 18C004000000000000 0903010203 0A034B464D 0C02C3A6 040CABCD 0D99"
    "19" + "07" * 12 + "1A" + "01" * 5 + "1B" + "02" * 4 + "0101 0201 0981 80" + "AA" * 0x80
)


def test_every_type_in_one_tree() -> None:
    value = _decode_all(_EVERY_TYPE)
    assert isinstance(value, tuple)
    assert len(value) == 0x16
    assert value[-1] == [(b"\xaa" * 0x80,)]


def test_truncation_at_every_position_raises() -> None:
    for cut in range(len(_EVERY_TYPE)):
        with pytest.raises(FrameError) as err:
            axdr.decode(_EVERY_TYPE[:cut])
        assert err.value.reason is RejectReason.MALFORMED_APDU, cut


def test_nesting_limit() -> None:
    depth_ok = H("0101") * axdr.MAX_DEPTH + H("00")
    value = _decode_all(depth_ok)
    for _ in range(axdr.MAX_DEPTH):
        assert isinstance(value, list)
        value = value[0]
    assert value is None
    too_deep = H("0201") * (axdr.MAX_DEPTH + 1) + H("00")
    with pytest.raises(FrameError, match="nested too deep") as err:
        axdr.decode(too_deep)
    assert err.value.reason is RejectReason.MALFORMED_APDU
    # a pathological input cannot reach Python's recursion limit either
    with pytest.raises(FrameError):
        axdr.decode(H("0101") * 5000)


def test_encode_plain_values() -> None:
    assert axdr.encode(None) == H("00")
    assert axdr.encode(True) == H("0301")
    assert axdr.encode(False) == H("0300")
    assert axdr.encode(5) == H("0600000005")
    assert axdr.encode(5, axdr.UINT16) == H("120005")
    assert axdr.encode(1.5) == H("183FF8000000000000")
    assert axdr.encode(b"\x01") == H("090101")
    assert axdr.encode("AB") == H("0A024142")
    assert axdr.encode([1, (2,)], axdr.UINT8) == H("0102 1101 0201 1102".replace(" ", ""))
    assert axdr.encode(Typed(axdr.INT16, -1)) == H("10FFFF")
    assert axdr.encode(Typed(axdr.FLOAT32, 0.5)) == H("173F000000")
    assert axdr.encode(b"\x00" * 200)[:3] == H("0981C8")


def test_encode_rejects_a_date_time_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="12 bytes"):
        axdr.encode(DateTimeField(axdr.DATE_TIME, b"\x00" * 11))


# ----------------------------------------------------------------- round trip

_INT_RANGES = {
    axdr.INT8: (-(2**7), 2**7 - 1),
    axdr.INT16: (-(2**15), 2**15 - 1),
    axdr.INT32: (-(2**31), 2**31 - 1),
    axdr.INT64: (-(2**63), 2**63 - 1),
    axdr.UINT8: (0, 2**8 - 1),
    axdr.UINT16: (0, 2**16 - 1),
    axdr.UINT32: (0, 2**32 - 1),
    axdr.UINT64: (0, 2**64 - 1),
    axdr.ENUM: (0, 255),
}


@st.composite
def _typed_ints(draw: st.DrawFn) -> Typed:
    tag = draw(st.sampled_from(sorted(_INT_RANGES)))
    low, high = _INT_RANGES[tag]
    return Typed(tag, draw(st.integers(low, high)))


def _float32s() -> st.SearchStrategy[Typed]:
    return st.floats(width=32, allow_nan=False).map(lambda v: Typed(axdr.FLOAT32, v))


_date_fields = st.sampled_from([(0x19, 12), (0x1A, 5), (0x1B, 4)]).flatmap(
    lambda ts: st.binary(min_size=ts[1], max_size=ts[1]).map(lambda raw: DateTimeField(ts[0], raw))
)

_leaves: st.SearchStrategy[Encodable] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(0, 2**32 - 1),
    _typed_ints(),
    _float32s(),
    st.floats(allow_nan=False),
    st.binary(max_size=300),
    st.text(st.characters(max_codepoint=0xFF), max_size=140),
    _date_fields,
)

_trees: st.SearchStrategy[Encodable] = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.lists(children, max_size=6).map(tuple)
    ),
    max_leaves=40,
)


def _expected(value: Encodable) -> Data:
    """What ``decode(encode(value))`` must give: ``Typed`` loses its type."""
    if isinstance(value, Typed):
        if value.tag == axdr.FLOAT32:
            return struct.unpack(">f", struct.pack(">f", value.value))[0]  # type: ignore[no-any-return]
        return value.value
    if isinstance(value, list):
        return [_expected(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_expected(v) for v in value)
    return value


@given(_trees)
def test_round_trip_trees(tree: Encodable) -> None:
    encoded = axdr.encode(tree)
    assert _decode_all(encoded) == _expected(tree)


@given(_trees, st.data())
def test_any_truncation_of_a_tree_raises(tree: Encodable, data: st.DataObject) -> None:
    encoded = axdr.encode(tree)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(FrameError) as err:
        axdr.decode(encoded[:cut])
    assert err.value.reason is RejectReason.MALFORMED_APDU


@given(st.binary(max_size=64))
def test_random_bytes_never_raise_anything_but_frame_error(buf: bytes) -> None:
    try:
        axdr.decode(buf)
    except FrameError as err:
        reason: RejectReason | None = err.reason
    else:
        reason = None
    assert reason in {None, RejectReason.MALFORMED_APDU}
