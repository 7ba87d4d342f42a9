"""Kaifa KFM_001 positional lists, the IT quirk, and the Swedish OBIS variant (hand-written trees).

Positional order from protocol.md §4.3 / KFM_001: id, meter id, type, P+, P-, Q+, Q-,
IL1[, IL2, IL3], UL1[, UL2, UL3][, clock, A+, A-, R+, R-]; mA, 0.1 V, Wh, no scalers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from custom_components.hanport.han import cosem
from custom_components.hanport.han.dlms.axdr import Data, DateTimeField
from custom_components.hanport.han.dlms.notification import Notification
from custom_components.hanport.han.errors import FrameError, RejectReason
from custom_components.hanport.han.layouts import decode_notification, kaifa
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Protocol, Reading

OB = cosem.obis
HEADER = datetime(2024, 1, 15, 8, 0, 10)


def decode(body: Data, *, timestamp: datetime | None = HEADER) -> Reading:
    n = Notification(0x40000000, timestamp, body)
    return decode_notification(n, protocol=Protocol.HDLC, options=DecodeOptions())


def ids(model: bytes) -> tuple[Data, ...]:
    return (b"KFM_001", b"6970631400000077", model)


POWERS = (2450, 0, 12, 480)
# Clock as Kaifa sends it in list 3: deviation unspecified, local time.
CLOCK = bytes.fromhex("07E8010F01080000FF800000")
ENERGY = (12345678, 910, 54321, 2345678)


def three_phase(model: bytes, ul2: int = 2301) -> tuple[Data, ...]:
    return (*ids(model), *POWERS, 10250, 3400, 7800, 2312, ul2, 2298)


def single_phase() -> tuple[Data, ...]:
    return (*ids(b"MA105H2E"), *POWERS, 10250, 2312)


def test_list1_is_active_power_with_header_time() -> None:
    reading = decode((1320,))
    assert reading.manufacturer == "Kaifa"
    assert dict(reading.values) == {"active_power_import": 1320.0}
    assert reading.meter_time == HEADER
    assert reading.list_kind is ListKind.POWER
    assert reading.meter_id is None


def test_list2_single_phase_9_items() -> None:
    body = single_phase()
    assert len(body) == 9
    reading = decode(body)
    assert reading.meter_id == "6970631400000077"
    assert reading.meter_type == "MA105H2E"
    assert reading.list_version == "KFM_001"
    assert dict(reading.values) == {
        "active_power_import": 2450.0,
        "active_power_export": 0.0,
        "reactive_power_import": 12.0,
        "reactive_power_export": 480.0,
        "current_l1": 10.25,  # mA
        "voltage_l1": 231.2,  # 0.1 V
    }


def test_list2_three_phase_13_items_with_a_7_byte_type() -> None:
    body = three_phase(b"MA304H4")
    assert len(body) == 13
    reading = decode(body)
    assert reading.meter_type == "MA304H4"
    assert reading.values["current_l2"] == 3.4
    assert reading.values["current_l3"] == 7.8
    assert reading.values["voltage_l2"] == 230.1
    assert reading.values["voltage_l3"] == 229.8


@pytest.mark.parametrize("make", [single_phase, lambda: three_phase(b"MA304H4D")])
def test_list3_adds_clock_and_energy_in_wh(make: Callable[[], tuple[Data, ...]]) -> None:
    body = (*make(), CLOCK, *ENERGY)
    assert len(body) in (14, 18)
    reading = decode(body)
    assert reading.meter_time == datetime(2024, 1, 15, 8, 0, 0)
    assert reading.values["active_energy_import"] == 12345.678
    assert reading.values["active_energy_export"] == 0.91
    assert reading.values["reactive_energy_import"] == 54.321
    assert reading.values["reactive_energy_export"] == 2345.678
    assert reading.list_kind is ListKind.ENERGY


def test_list3_clock_may_be_a_tagged_date_time() -> None:
    body = (*single_phase(), DateTimeField(0x19, CLOCK), *ENERGY)
    assert decode(body).meter_time == datetime(2024, 1, 15, 8, 0, 0)


@pytest.mark.parametrize("model", [b"MA304H3E", b"MA304T3"])
def test_three_wire_it_meter_does_not_publish_its_unmeasured_ul2(model: bytes) -> None:
    reading = decode((*three_phase(model, ul2=0), CLOCK, *ENERGY))
    assert "voltage_l2" not in reading.values
    # UL1/UL3 (line voltages) and all three currents are real and published.
    assert reading.values["voltage_l1"] == 231.2
    assert reading.values["voltage_l3"] == 229.8
    assert reading.values["current_l2"] == 3.4


def test_three_wire_meter_publishes_a_non_zero_ul2_as_sent() -> None:
    assert decode(three_phase(b"MA304H3E", ul2=2290)).values["voltage_l2"] == 229.0


@pytest.mark.parametrize("model", [b"MA304H4", b"MA304T4", b"MA304H4D"])
def test_four_wire_meter_reports_zero_ul2_as_a_lost_phase(model: bytes) -> None:
    assert decode(three_phase(model, ul2=0)).values["voltage_l2"] == 0.0


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("MA304H3E", True),
        ("MA304T3", True),
        ("MA304H4", False),
        ("MA304H4D", False),
        ("MA304T4", False),
        ("MA105H2E", False),
        ("MA304", False),
        (None, False),
    ],
)
def test_is_three_wire(model: str | None, expected: bool) -> None:
    assert kaifa.is_three_wire(model) is expected


def test_list_id_may_be_a_visible_string() -> None:
    body = ("KFM_001", "6970631400000077", "MA105H2E", *POWERS, 10250, 2312)
    reading = decode(body)
    assert reading.list_version == "KFM_001"
    assert reading.meter_type == "MA105H2E"


@pytest.mark.parametrize("count", [2, 10, 12, 15, 17, 19])
def test_unexpected_item_count_is_unknown_layout(count: int) -> None:
    body = (*ids(b"MA304H4"), *([7] * (count - 3)))
    with pytest.raises(FrameError) as err:
        decode(body)
    assert err.value.reason is RejectReason.UNKNOWN_LAYOUT


@pytest.mark.parametrize(
    "body",
    [
        ("1320",),  # list 1 must be an integer: a string is not Kaifa
        (*ids(b"MA105H2E"), *POWERS, "10250", 2312),  # a string in a value slot
        (*ids(b"MA105H2E"), *POWERS, 10250, True),  # a boolean in a value slot
        (*ids(b"MA105H2E"), *POWERS, 10250, 2312, 5, *ENERGY),  # no clock in list 3
        (*ids(b"MA105H2E"), *POWERS, 10250, 2312, CLOCK, 1, 2, 3, None),
    ],
)
def test_wrong_types_in_a_positional_list_are_unknown_layout(body: tuple[Data, ...]) -> None:
    with pytest.raises(FrameError) as err:
        decode(body)
    assert err.value.reason is RejectReason.UNKNOWN_LAYOUT


def swedish_obis_list() -> tuple[Data, ...]:
    # Swedish MA304H4 firmware: OBIS/value pairs, list id 1-0:0.2.129.255, same implicit units.
    clock = bytes.fromhex("07E8071406") + bytes.fromhex("0C1E0000") + bytes.fromhex("FFC400")
    pairs: list[Data] = [
        OB(1, 0, 0, 2, 129),
        b"KFM_001",
        OB(0, 0, 96, 1, 0),
        b"7340157000000021",
        OB(0, 0, 96, 1, 7),
        b"MA304H4",
    ]
    for code, value in (
        ((1, 7), 1800),
        ((2, 7), 0),
        ((3, 7), 0),
        ((4, 7), 95),
        ((31, 7), 4120),
        ((51, 7), 610),
        ((71, 7), 1500),
        ((32, 7), 2334),
        ((52, 7), 2351),
        ((72, 7), 2340),
    ):
        pairs += [OB(1, 0, code[0], code[1], 0), value]
    pairs += [OB(0, 0, 1, 0, 0), clock]
    for c, value in ((1, 8765432), (2, 0), (3, 12000), (4, 999999)):
        pairs += [OB(1, 0, c, 8, 0), value]
    return tuple(pairs)


def test_swedish_obis_variant() -> None:
    body = swedish_obis_list()
    assert len(body) == 36
    reading = decode(body, timestamp=None)
    assert reading.manufacturer == "Kaifa"
    assert reading.list_version == "KFM_001"
    assert reading.meter_id == "7340157000000021"
    assert reading.meter_type == "MA304H4"
    # Deviation -60 (CET) is stated: the time is aware.
    assert reading.meter_time == datetime(2024, 7, 20, 12, 30, tzinfo=timezone(timedelta(hours=1)))
    assert reading.values["current_l1"] == 4.12
    assert reading.values["voltage_l2"] == 235.1
    assert reading.values["active_energy_import"] == 8765.432
    assert reading.values["reactive_energy_export"] == 999.999
    assert len(reading.values) == 14


def test_swedish_variant_on_a_three_wire_model_drops_ul2_zero() -> None:
    body = list(swedish_obis_list())
    body[5] = b"MA304H3E"
    body[body.index(OB(1, 0, 52, 7, 0)) + 1] = 0
    assert "voltage_l2" not in decode(tuple(body)).values


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ((OB(1, 0, 0, 2, 129), b"KFM_001"), True),
        ((OB(1, 1, 0, 2, 129), "KFM_001"), True),
        ((OB(1, 0, 0, 2, 129), b"AIDON"), False),
        ((OB(1, 0, 1, 7, 0), b"KFM_001"), False),
        ((OB(1, 0, 0, 2, 129),), False),
        ((b"KFM_001", b"KFM_001"), False),
    ],
)
def test_is_obis_list(body: tuple[Data, ...], expected: bool) -> None:
    assert kaifa.is_obis_list(body) is expected
