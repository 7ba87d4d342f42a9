"""Generic OBIS decoding: the lookup table, value helpers, the collector, and the AT/PL layout.

The Austrian/Polish tree is written from TINETZ/NOE (protocol.md §6): a structure of
the clock, then OBIS / value / scaler-unit triples, then the meter number.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from custom_components.hanport.han import cosem
from custom_components.hanport.han.dlms.axdr import Data, DateTimeField
from custom_components.hanport.han.dlms.notification import Notification
from custom_components.hanport.han.encode import Layout, encode_reading
from custom_components.hanport.han.errors import FrameError, RejectReason
from custom_components.hanport.han.layouts import decode_notification, obis_array
from custom_components.hanport.han.layouts.obis_array import Collected, Kind
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import Protocol, Reading
from custom_components.hanport.han.scaling import Scheme
from custom_components.hanport.han.stream import MeterStream

OB = cosem.obis
CEST = timezone(timedelta(hours=2))
# 2024-08-05 (Monday) 10:20:30, deviation -120 (CEST), status 0x80 (DST).
CLOCK = bytes.fromhex("07E8080501") + bytes.fromhex("0A141E00") + bytes.fromhex("FF8880")
KFM_TITLE = b"KFM" + bytes.fromhex("6750000001")


def decode(body: Data, title: bytes | None = KFM_TITLE, ts: datetime | None = None) -> Reading:
    n = Notification(0x8006870E, ts, body, title)
    return decode_notification(n, protocol=Protocol.MBUS, options=DecodeOptions())


def triple(c: int, d: int, value: Data, scaler: int, unit: int) -> list[Data]:
    return [OB(1, 0, c, d, 0), value, (scaler, unit)]


def austrian_list(meter_number: Data = b"987654321012") -> tuple[Data, ...]:
    return (
        CLOCK,
        *triple(1, 8, 4567890, 0, 30),
        *triple(2, 8, 123, 0, 30),
        *triple(1, 7, 1850, 0, 27),
        *triple(2, 7, 0, 0, 27),
        *triple(32, 7, 2311, -1, 35),
        *triple(52, 7, 2299, -1, 35),
        *triple(72, 7, 2320, -1, 35),
        *triple(31, 7, 412, -2, 33),
        *triple(51, 7, 120, -2, 33),
        *triple(71, 7, 333, -2, 33),
        *triple(13, 7, -950, -3, 255),
        meter_number,
    )


def test_austrian_obis_array() -> None:
    body = austrian_list()
    assert len(body) == 35
    reading = decode(body, ts=datetime(2024, 8, 5, 10, 20, 30))
    assert reading.manufacturer == "Kaifa"
    assert reading.meter_id == "987654321012"
    assert reading.meter_time == datetime(2024, 8, 5, 10, 20, 30, tzinfo=CEST)
    assert dict(reading.values) == {
        "active_energy_import": 4567.89,
        "active_energy_export": 0.123,
        "active_power_import": 1850.0,
        "active_power_export": 0.0,
        "voltage_l1": 231.1,
        "voltage_l2": 229.9,
        "voltage_l3": 232.0,
        "current_l1": 4.12,
        "current_l2": 1.2,
        "current_l3": 3.33,
        "power_factor": 0.95,  # magnitude of a signed power factor
    }


@pytest.mark.parametrize(
    ("title", "maker"),
    [
        (b"SAGY" + bytes(4), "Sagemcom"),
        (b"SAG5" + bytes(4), "Sagemcom"),
        (b"ISK" + bytes(5), "Iskraemeco"),
        (b"LGZ" + bytes(5), "Landis+Gyr"),
        (b"XYZ" + bytes(5), None),
        (None, None),
    ],
)
def test_manufacturer_comes_from_the_system_title(title: bytes | None, maker: str | None) -> None:
    assert decode(austrian_list(), title=title).manufacturer == maker


def test_meter_number_as_visible_string_and_header_time_fallback() -> None:
    body = (bytes(12), *austrian_list("  1812200000  ")[1:])  # an all-zero clock: unusable
    header = datetime(2024, 8, 5, 10, 20, 31)
    reading = decode(body, ts=header)
    assert reading.meter_id == "1812200000"
    assert reading.meter_time == header


def test_tagged_date_time_clock_first() -> None:
    body = (DateTimeField(0x19, CLOCK), *austrian_list()[1:])
    assert decode(body).meter_time == datetime(2024, 8, 5, 10, 20, 30, tzinfo=CEST)


def test_obis_first_list_from_an_unknown_maker() -> None:
    body = (*triple(1, 7, 500, 0, 27), OB(0, 0, 96, 1, 0), b"ABC123", OB(0, 0, 1, 0, 0), CLOCK)
    reading = decode(body, title=None)
    assert reading.meter_id == "ABC123"
    assert reading.meter_time == datetime(2024, 8, 5, 10, 20, 30, tzinfo=CEST)
    assert dict(reading.values) == {"active_power_import": 500.0}


def test_obis_meter_id_wins_over_loose_items() -> None:
    body = (CLOCK, OB(0, 0, 96, 1, 0), b"FROM-OBIS", *triple(1, 7, 5, 0, 27), b"LOOSE")
    assert decode(body).meter_id == "FROM-OBIS"


def test_values_without_scaler_unit_are_dropped_in_self_describing_lists() -> None:
    body = (CLOCK, OB(1, 0, 1, 7, 0), 500, *triple(2, 7, 5, 0, 27), b"123")
    assert dict(decode(body).values) == {"active_power_export": 5.0}


@pytest.mark.parametrize(
    "body",
    [
        (CLOCK,),
        (CLOCK, 1, 2, 3),
        (CLOCK, OB(1, 0, 99, 1, 0), 5, (0, 27)),
        (OB(1, 0, 99, 1, 0), 5),
        (CLOCK, OB(1, 0, 1, 7, 0)),
    ],
)
def test_nothing_usable_is_unknown_layout(body: tuple[Data, ...]) -> None:
    with pytest.raises(FrameError) as err:
        decode(body)
    assert err.value.reason is RejectReason.UNKNOWN_LAYOUT


# ---------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (OB(1, 0, 1, 7, 0), (Kind.VALUE, "active_power_import")),
        (OB(1, 1, 1, 7, 0), (Kind.VALUE, "active_power_import")),
        (OB(1, 7, 1, 7, 0), (Kind.VALUE, "active_power_import")),  # any channel
        (OB(1, 0, 1, 7, 0, 101), None),  # a historical value (F != 255)
        (OB(1, 0, 21, 8, 0), (Kind.VALUE, "active_energy_import_l1")),
        (OB(1, 0, 14, 7, 0), (Kind.VALUE, "frequency")),
        (OB(1, 0, 99, 7, 0), None),
        (OB(0, 0, 1, 0, 0), (Kind.CLOCK, "")),
        (OB(0, 1, 1, 0, 0), (Kind.CLOCK, "")),
        (OB(1, 1, 0, 2, 129), (Kind.LIST_VERSION, "")),
        (OB(0, 0, 96, 1, 0), (Kind.METER_ID, "")),
        (OB(0, 0, 96, 1, 1), (Kind.METER_ID, "")),  # DSMR equipment identifier
        (OB(1, 1, 96, 1, 1), (Kind.METER_TYPE, "")),  # Kamstrup meter type
        (OB(0, 0, 96, 1, 7), (Kind.METER_TYPE, "")),
        (OB(1, 1, 0, 0, 5), (Kind.METER_ID, "")),
        (OB(1, 1, 0, 0, 1), (Kind.METER_ID, "")),
        (b"\x01\x00\x01\x07\x00", None),
        (b"", None),
    ],
)
def test_lookup(code: bytes, expected: tuple[Kind, str] | None) -> None:
    target = obis_array.lookup(code)
    assert (target[:2] if target is not None else None) == expected


def test_lookup_flags_energy_and_power_factor() -> None:
    assert obis_array.lookup(OB(1, 0, 1, 8, 0)) == (
        Kind.VALUE,
        "active_energy_import",
        True,
        False,
    )
    assert obis_array.lookup(OB(1, 0, 33, 7, 0)) == (Kind.VALUE, "power_factor_l1", False, True)
    assert obis_array.lookup(OB(1, 0, 32, 7, 0)) == (Kind.VALUE, "voltage_l1", False, False)


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"7359990000000042", "7359990000000042"),
        (b"13943597\x00\x00\x00\x00", "13943597"),
        (b"\x00\x00\x00\x00", None),
        (b"", None),
        (b"\x12\x34\xab", "1234AB"),
        (b"AB\x01C", "41420143"),  # ASCII but not printable
        ("6534", "6534"),
        (" ZFF1 ", "ZFF1"),
        ("\x00\x00", None),
        (21928281, "21928281"),
        (-5, None),
        (True, None),
        (1.5, None),
        (None, None),
        ((1, 2), None),
    ],
)
def test_text(value: Data, expected: str | None) -> None:
    assert obis_array.text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), (-7, -7), (2.5, 2.5), (float("inf"), None), (True, None), ("5", None), (None, None)],
)
def test_number(value: Data, expected: float | None) -> None:
    assert obis_array.number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((0, 27), (0, 27)),
        ((-3, 255), (-3, 255)),
        ((21, 27), None),
        ((0, True), None),
        ((0,), None),
        ([0, 27], None),
        (5, None),
    ],
)
def test_scaler_unit(value: Data, expected: tuple[int, int] | None) -> None:
    assert obis_array.scaler_unit(value) == expected


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("power_factor", -0.5, 0.5),
        ("power_factor_l2", 1.0, 1.0),
        ("power_factor", 1.01, None),
        ("current_l1", -3.0, -3.0),
        ("current_l1", float("inf"), None),
        ("voltage_l1", float("nan"), None),
    ],
)
def test_finish(name: str, value: float, expected: float | None) -> None:
    assert obis_array.finish(name, value) == expected


def test_collector_applies_an_implicit_scheme_to_bare_values_only() -> None:
    collected = obis_array.collect_interleaved(
        (OB(1, 0, 31, 7, 0), 1234, OB(1, 0, 32, 7, 0), 2301, (-1, 35), OB(1, 0, 13, 7, 0), 90), 0
    )
    assert collected.pending == {"current_l1": 1234, "power_factor": 90}
    assert collected.values == {"voltage_l1": 230.1}
    collected.apply(Scheme.KAIFA)  # Kaifa has no power factor resolution: dropped, not guessed
    assert collected.values == {"voltage_l1": 230.1, "current_l1": 1.234}
    assert collected.pending == {}
    assert collected.raw == {"current_l1": 1234, "voltage_l1": 2301, "power_factor": 90}


def test_collector_is_empty() -> None:
    assert Collected().is_empty()
    assert not Collected(meter_id="1").is_empty()
    assert not Collected(list_version="X").is_empty()
    assert not Collected(values={"current_l1": 1.0}).is_empty()


def test_clock_helper() -> None:
    assert obis_array.clock(CLOCK) == (True, datetime(2024, 8, 5, 10, 20, 30, tzinfo=CEST))
    assert obis_array.clock(DateTimeField(0x1A, CLOCK[:5])) == (False, None)
    assert obis_array.clock(b"short") == (False, None)
    assert obis_array.clock(bytes(12)) == (True, None)


def test_clock_item_that_is_not_a_clock_leaves_the_time_unset() -> None:
    collected = obis_array.collect_structs([(OB(0, 0, 1, 0, 0), "noon")])
    assert collected.clock is None


def test_any_channel_is_decoded_through_the_slow_lookup() -> None:
    collected = obis_array.collect_structs([(OB(1, 7, 1, 7, 0), 42, (0, 27))])
    assert collected.values == {"active_power_import": 42.0}


def test_six_character_meter_number_at_the_end_is_the_meter_id() -> None:
    # a trailing 6-byte string has no value after it: it is the meter number, not a code
    reading = decode(austrian_list(b"123456"))
    assert reading.meter_id == "123456"
    assert reading.values["active_power_import"] == 1850.0
    # a code we know with nothing after it is still only a dangling code
    body = (CLOCK, *triple(1, 7, 5, 0, 27), OB(1, 0, 2, 7, 0))
    assert decode(body).meter_id is None


def test_six_character_meter_number_round_trips_through_the_encoder() -> None:
    values = {
        "active_energy_import": 4567.89,
        "active_energy_export": 0.123,
        "active_power_import": 1850.0,
        "active_power_export": 0.0,
        **{f"voltage_l{p}": 230.1 for p in (1, 2, 3)},
        **{f"current_l{p}": 4.12 for p in (1, 2, 3)},
        "power_factor": 0.95,
    }
    sent = Reading(
        protocol=Protocol.MBUS,
        manufacturer="Kaifa",
        meter_id="123456",
        meter_type=None,
        list_version=None,
        meter_time=None,
        values=MappingProxyType(values),
    )
    key = bytes(range(16))
    wire = encode_reading(sent, Layout.OBIS_ARRAY_AT, key=key)
    (got,) = MeterStream(DecodeOptions(key=key)).feed(wire)
    assert (got.meter_id, got.manufacturer, dict(got.values)) == ("123456", "Kaifa", values)


def test_text_memo_is_bounded_and_keeps_bytes_str_and_numbers_apart() -> None:
    obis_array._TEXTS.clear()
    assert obis_array.text(b"6534") == "6534"
    assert obis_array.text("6534") == "6534"
    assert obis_array.text(b"\x01\x02") == "0102"
    assert obis_array.text(1) == "1"
    assert obis_array.text(True) is None  # True == 1, but numbers are never memoised
    assert obis_array.text(b"\x00") is None
    assert obis_array.text(b"\x00") is None  # a memoised None
    for index in range(obis_array._TEXTS_MAX + 10):
        assert obis_array.text(f"id{index}") == f"id{index}"
        assert len(obis_array._TEXTS) <= obis_array._TEXTS_MAX
