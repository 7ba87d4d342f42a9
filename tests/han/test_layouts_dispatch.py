"""decode_notification dispatch, and garbage trees: nothing but FrameError ever escapes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.hanport.han import cosem
from custom_components.hanport.han.dlms import axdr
from custom_components.hanport.han.dlms.axdr import Data, DateTimeField
from custom_components.hanport.han.dlms.notification import Notification
from custom_components.hanport.han.errors import FrameError, RejectReason
from custom_components.hanport.han.layouts import ALL_UNITS, EXTRA_UNITS, decode_notification
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import UNITS, Protocol, Reading

OB = cosem.obis


def decode(body: Data, *, title: bytes | None = None, country: str | None = None) -> Reading:
    n = Notification(0, None, body, title)
    return decode_notification(n, protocol=Protocol.APDU, options=DecodeOptions(country=country))


@pytest.mark.parametrize(
    "body",
    [
        None,
        5,
        b"KFM_001",
        "Kamstrup_V0001",
        (),
        (1.5, 2.5),
        (None, 1),
        (True,),
        ("unknown", 1),
        (b"\x01\x02\x03", 1),  # neither an OBIS code, a clock nor a list id
        (1, 2, 3),  # integers, but not the E450 shape
        ((1, 2), 3),
        ([1], 2),
    ],
)
def test_unknown_bodies_are_unknown_layout(body: Data) -> None:
    with pytest.raises(FrameError) as err:
        decode(body)
    assert err.value.reason is RejectReason.UNKNOWN_LAYOUT
    assert "no layout" in str(err.value)


@pytest.mark.parametrize(
    ("body", "manufacturer"),
    [
        ([(OB(1, 0, 1, 7, 0), 1, (0, 27))], None),
        (("Kamstrup_V0001", OB(1, 1, 1, 7, 0), 1), "Kamstrup"),
        ((b"KFM_001", b"1", b"MA105H2E", 1, 2, 3, 4, 5, 6), "Kaifa"),
        ((7,), "Kaifa"),
        ((OB(1, 0, 0, 2, 129), b"KFM_001", OB(1, 0, 1, 7, 0), 7), "Kaifa"),
        ((OB(1, 0, 1, 7, 0), 1, (0, 27)), None),
        ((bytes.fromhex("07E8010101000000FF800000"), OB(1, 0, 1, 7, 0), 1, (0, 27)), None),
        ((DateTimeField(0x19, bytes(12)), OB(1, 0, 1, 7, 0), 1, (0, 27)), None),
        ((*range(13), b"1"), "Landis+Gyr"),
    ],
)
def test_dispatch(body: Data, manufacturer: str | None) -> None:
    reading = decode(body)
    assert reading.manufacturer == manufacturer
    assert reading.protocol is Protocol.APDU
    assert reading.values


def test_every_published_name_has_a_unit() -> None:
    assert set(UNITS) <= set(ALL_UNITS)
    assert set(EXTRA_UNITS) <= set(ALL_UNITS)
    assert EXTRA_UNITS["frequency"] == "Hz"
    assert set(EXTRA_UNITS).isdisjoint(UNITS)
    # Per-phase energy registers are canonical names (they get entities).
    assert UNITS["active_energy_import_l1"] == UNITS["active_energy_export_l3"] == "kWh"


# ---------------------------------------------------------------- garbage trees

_OBIS_CODES = [
    OB(1, 0, 1, 7, 0),
    OB(1, 1, 1, 8, 0),
    OB(1, 0, 31, 7, 0),
    OB(1, 1, 32, 7, 0),
    OB(1, 0, 13, 7, 0),
    OB(0, 0, 1, 0, 0),
    OB(0, 1, 1, 0, 0),
    OB(1, 1, 0, 2, 129),
    OB(0, 0, 96, 1, 0),
    OB(0, 0, 96, 1, 7),
    OB(1, 1, 0, 0, 1),
    OB(1, 1, 96, 1, 1),
    OB(1, 0, 99, 99, 0),
]
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=14),
    st.sampled_from(_OBIS_CODES),
    st.sampled_from([b"KFM_001", "Kamstrup_V0001", b"Kamstrup_V0001", "KFM_001", "AIDON_V0001"]),
    st.sampled_from([bytes.fromhex("07E8010101000000FF800000"), bytes(12), b"\xff" * 12]),
    st.text(max_size=20),
    st.builds(DateTimeField, st.sampled_from([0x19, 0x1A, 0x1B]), st.binary(max_size=12)),
    st.tuples(st.integers(-30, 30), st.integers(0, 255)),
)
trees = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=40), st.lists(children, max_size=40).map(tuple)
    ),
    max_leaves=80,
)


def _decode_or_reason(
    body: Data, *, title: bytes | None = None, country: str | None = None
) -> Reading | RejectReason:
    try:
        return decode(body, title=title, country=country)
    except FrameError as err:
        return err.reason


def _check(result: Reading | RejectReason) -> None:
    if isinstance(result, RejectReason):
        assert result is RejectReason.UNKNOWN_LAYOUT
        return
    reading = result
    for name, value in reading.values.items():
        assert name in ALL_UNITS, name
        assert isinstance(value, float), name
        assert math.isfinite(value), name
        if name.startswith("power_factor"):
            assert 0.0 <= value <= 1.0


@settings(max_examples=600, deadline=None)
@given(
    trees,
    st.sampled_from([None, b"LGZ12345", b"KFM12345", b"SAGY1234"]),
    st.sampled_from([None, "NO", "SE", "DK", "FI"]),
)
def test_random_trees_raise_nothing_but_frame_error(
    body: Data, title: bytes | None, country: str | None
) -> None:
    _check(_decode_or_reason(body, title=title, country=country))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["Kamstrup_V0001", b"KFM_001", _OBIS_CODES[7], bytes(12), 5]),
    st.lists(_scalars, max_size=40),
)
def test_random_lists_behind_a_real_header_raise_nothing_but_frame_error(
    head: Data, rest: list[Data]
) -> None:
    bodies: list[Data] = [(head, *rest), [(head, *rest)], [(head, r) for r in rest]]
    for body in bodies:
        _check(_decode_or_reason(body))


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_random_axdr_bytes_raise_nothing_but_frame_error(raw: bytes) -> None:
    try:
        body, _ = axdr.decode(raw)
    except FrameError:
        return
    _check(_decode_or_reason(body))
