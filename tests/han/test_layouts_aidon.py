"""Aidon NO lists 1/2/3, the Swedish 27-item list and L&G Embriq, from trees written by hand.

Trees follow protocol.md §4.2: an array of ``structure(obis, value[, structure(scaler, unit)])``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from custom_components.hanport.han import cosem
from custom_components.hanport.han.cosem import Unit
from custom_components.hanport.han.dlms import axdr
from custom_components.hanport.han.dlms.axdr import Data
from custom_components.hanport.han.dlms.notification import Notification
from custom_components.hanport.han.errors import FrameError, RejectReason
from custom_components.hanport.han.layouts import decode_notification
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Protocol, Reading

OB = cosem.obis
# Plain ints, as the A-XDR decoder produces them.
W, VAR, A, V, WH, VARH, HZ = (
    int(u)
    for u in (
        Unit.WATT,
        Unit.VAR,
        Unit.AMPERE,
        Unit.VOLT,
        Unit.WATT_HOUR,
        Unit.VAR_HOUR,
        Unit.HERTZ,
    )
)


def decode(body: Data, *, timestamp: datetime | None = None, frame: bytes = b"") -> Reading:
    n = Notification(0x40000000, timestamp, body)
    return decode_notification(n, protocol=Protocol.HDLC, options=DecodeOptions(), frame=frame)


def reg(c: int, value: int, scaler: int, unit: int, d: int = 7) -> Data:
    return (OB(1, 0, c, d, 0), value, (scaler, unit))


def ident(
    meter_type: str, list_id: str = "AIDON_V0001", meter_id: str = "7359990000000042"
) -> list[Data]:
    return [
        (OB(1, 1, 0, 2, 129), list_id),
        (OB(0, 0, 96, 1, 0), meter_id),
        (OB(0, 0, 96, 1, 7), meter_type),
    ]


POWERS: list[Data] = [reg(1, 2100, 0, W), reg(2, 0, 0, W), reg(3, 0, 0, VAR), reg(4, 310, 0, VAR)]


def currents(*phases: int) -> list[Data]:
    raw = {1: 125, 2: 36, 3: 88}
    return [reg(11 + 20 * p, raw[p], -1, A) for p in phases]


def voltages(*phases: int) -> list[Data]:
    raw = {1: 2312, 2: 2298, 3: 2305}
    return [reg(12 + 20 * p, raw[p], -1, V) for p in phases]


# Norwegian local time, deviation 0 as Aidon sends it; Sunday sent as day-of-week 0.
CLOCK_RAW = bytes.fromhex("07E8030A00") + bytes.fromhex("0E000000") + bytes.fromhex("000000")
CLOCK = (OB(0, 0, 1, 0, 0), CLOCK_RAW)
ENERGIES: list[Data] = [
    reg(1, 1234567, 1, WH, d=8),
    reg(2, 89, 1, WH, d=8),
    reg(3, 4321, 1, VARH, d=8),
    reg(4, 765432, 1, VARH, d=8),
]
LIST2_6515 = ident("6515") + POWERS + currents(1) + voltages(1)
LIST2_6525 = ident("6525") + POWERS + currents(1, 3) + voltages(1, 2, 3)
LIST2_6534 = ident("6534") + POWERS + currents(1, 2, 3) + voltages(1, 2, 3)


def test_list1_is_active_power_only_and_names_no_manufacturer() -> None:
    # Byte for byte from protocol.md §4.2: 01 01 02 03 09 06 <1-0:1.7.0> 06 <u32> 02 02 0F 00 16 1B
    body, _ = axdr.decode(bytes.fromhex("0101020309060100010700FF060000047E02020F00161B"))
    reading = decode(body, frame=b"raw")
    assert dict(reading.values) == {"active_power_import": 1150.0}
    assert reading.list_kind is ListKind.POWER
    # Aidon and the L&G E350 send this list identically: no manufacturer is claimed.
    assert reading.manufacturer is None
    assert (reading.meter_id, reading.meter_type, reading.list_version) == (None, None, None)
    assert reading.meter_time is None
    assert reading.protocol is Protocol.HDLC
    assert reading.frame == b"raw"


def test_list2_single_phase_6515_has_only_l1() -> None:
    reading = decode(LIST2_6515)
    assert len(LIST2_6515) == 9
    assert reading.manufacturer == "Aidon"
    assert reading.meter_id == "7359990000000042"
    assert reading.meter_type == "6515"
    assert reading.list_version == "AIDON_V0001"
    assert dict(reading.values) == {
        "active_power_import": 2100.0,
        "active_power_export": 0.0,
        "reactive_power_import": 0.0,
        "reactive_power_export": 310.0,
        "current_l1": 12.5,
        "voltage_l1": 231.2,
    }
    assert reading.list_kind is ListKind.STATUS


def test_list2_three_wire_6525_has_no_il2_and_none_is_invented() -> None:
    reading = decode(LIST2_6525)
    assert len(LIST2_6525) == 12
    assert "current_l2" not in reading.values
    assert reading.values["current_l1"] == 12.5
    assert reading.values["current_l3"] == 8.8
    # UL1..UL3 are line voltages on 3-wire meters and all three are sent.
    assert reading.values["voltage_l2"] == 229.8


def test_list2_four_wire_6534_has_all_phases() -> None:
    reading = decode(LIST2_6534)
    assert len(LIST2_6534) == 13
    assert {k: reading.values[k] for k in ("current_l2", "voltage_l3")} == {
        "current_l2": 3.6,
        "voltage_l3": 230.5,
    }


@pytest.mark.parametrize(("list2", "count"), [(LIST2_6515, 14), (LIST2_6525, 17), (LIST2_6534, 18)])
def test_list3_adds_local_clock_and_energy_in_10_wh(list2: list[Data], count: int) -> None:
    body = [*list2, CLOCK, *ENERGIES]
    assert len(body) == count
    header = datetime(2024, 3, 10, 14, 0, 10, tzinfo=UTC)
    reading = decode(body, timestamp=header)
    # The clock item wins over the header, and deviation 0 is Norwegian local time.
    assert reading.meter_time == datetime(2024, 3, 10, 14, 0, 0)
    assert reading.meter_time_is_local
    assert reading.values["active_energy_import"] == 12345.67
    assert reading.values["active_energy_export"] == 0.89
    assert reading.values["reactive_energy_import"] == 43.21
    assert reading.values["reactive_energy_export"] == 7654.32
    assert reading.list_kind is ListKind.ENERGY


def test_current_is_signed_and_negative_on_export() -> None:
    body = [*ident("6534"), reg(1, 0, 0, W), reg(2, 1800, 0, W), reg(31, -76, -1, A)]
    reading = decode(body)
    assert reading.values["current_l1"] == -7.6


def test_header_time_is_used_when_the_list_has_no_clock() -> None:
    header = datetime(2024, 3, 10, 14, 0, 2)
    assert decode(LIST2_6534, timestamp=header).meter_time == header


def test_invalid_clock_item_falls_back_to_header() -> None:
    invalid = CLOCK_RAW[:11] + b"\x01"  # clock status bit 0: invalid
    header = datetime(2024, 3, 10, 14, 0, 2)
    reading = decode([*LIST2_6534, (OB(0, 0, 1, 0, 0), invalid), *ENERGIES], timestamp=header)
    assert reading.meter_time == header


def se_list() -> list[Data]:
    # AID-SE: no id items, clock first (deviation unspecified), per-phase P/Q, energy scaler 0.
    clock = bytes.fromhex("07E70B0C000A1E14FF8000FF")
    per_phase: list[Data] = []
    for base in (21, 41, 61):
        per_phase += [
            reg(base, 700 + base, 0, W),
            reg(base + 1, 0, 0, W),
            reg(base + 2, 50, 0, VAR),
            reg(base + 3, 0, 0, VAR),
        ]
    energies = [
        reg(1, 23456789, 0, WH, d=8),
        reg(2, 12, 0, WH, d=8),
        reg(3, 345678, 0, VARH, d=8),
        reg(4, 9, 0, VARH, d=8),
    ]
    return [
        (OB(0, 0, 1, 0, 0), clock),
        *POWERS,
        *currents(1, 2, 3),
        *voltages(1, 2, 3),
        *per_phase,
        *energies,
    ]


def test_swedish_27_item_list() -> None:
    body = se_list()
    assert len(body) == 27
    reading = decode(body)
    assert reading.manufacturer == "Aidon"
    assert (reading.meter_id, reading.meter_type, reading.list_version) == (None, None, None)
    assert reading.meter_time == datetime(2023, 11, 12, 10, 30, 20)
    assert reading.values["active_power_import_l1"] == 721.0
    assert reading.values["reactive_power_import_l3"] == 50.0
    assert reading.values["active_power_export_l2"] == 0.0
    # Scaler 0 on the Swedish list: Wh, not 10 Wh.
    assert reading.values["active_energy_import"] == 23456.789
    assert reading.values["reactive_energy_export"] == 0.009
    assert len(reading.values) == 26


def embriq(meter_type: bytes | str, il2: int, ul2: int) -> list[Data]:
    return [
        (OB(1, 1, 0, 2, 129), "EMBRIQ_V1_1"),
        (OB(0, 0, 96, 1, 0), "13572468\x00\x00\x00\x00\x00\x00\x00\x00"),
        (OB(0, 0, 96, 1, 7), meter_type),
        *POWERS,
        reg(31, 2950, -2, A),
        reg(51, il2, -2, A),
        reg(71, 3011, -2, A),
        reg(32, 2344, -1, V),
        reg(52, ul2, -1, V),
        reg(72, 2321, -1, V),
    ]


def test_embriq_strips_padding_and_names_landis_gyr() -> None:
    reading = decode(embriq("ZMF1", 1234, 2301))
    assert reading.manufacturer == "Landis+Gyr"
    assert reading.list_version == "EMBRIQ_V1_1"
    assert reading.meter_id == "13572468"
    assert reading.meter_type == "ZMF1"
    assert reading.values["current_l1"] == 29.5
    assert reading.values["current_l2"] == 12.34
    assert reading.values["voltage_l2"] == 230.1


def test_embriq_three_wire_drops_the_unmeasured_l2_zeros() -> None:
    reading = decode(embriq("ZFF1", 0, 0))
    assert "current_l2" not in reading.values
    assert "voltage_l2" not in reading.values
    assert reading.values["voltage_l1"] == 234.4


def test_embriq_three_wire_keeps_a_non_zero_l2() -> None:
    reading = decode(embriq("ZFF1", 15, 2300))
    assert reading.values["current_l2"] == 0.15
    assert reading.values["voltage_l2"] == 230.0


def test_embriq_four_wire_keeps_zero_l2_as_a_measurement() -> None:
    reading = decode(embriq("ZMF1", 0, 0))
    assert reading.values["current_l2"] == 0.0
    assert reading.values["voltage_l2"] == 0.0


def test_embriq_blank_type_is_none_and_values_stay_as_sent() -> None:
    reading = decode(embriq("\x00\x00\x00\x00", 0, 0))
    assert reading.meter_type is None
    assert reading.values["voltage_l2"] == 0.0


def test_unknown_list_id_names_no_manufacturer() -> None:
    reading = decode(ident("X1", list_id="OTHER_V1") + POWERS)
    assert reading.manufacturer is None
    assert reading.list_version == "OTHER_V1"


def test_unknown_codes_are_skipped_and_frequency_is_kept() -> None:
    body = [
        *POWERS,
        (OB(1, 0, 99, 97, 0), 5, (0, 255)),  # unknown register
        (OB(0, 0, 96, 14, 0), 2),  # tariff indicator: not used
        (OB(1, 0, 14, 7, 0), 4998, (-2, HZ)),
        (OB(1, 0, 1, 8, 1), 1000, (0, WH)),  # tariff register: not published
    ]
    reading = decode(body)
    assert reading.values["frequency"] == 49.98
    assert set(reading.values) == {
        "active_power_import",
        "active_power_export",
        "reactive_power_import",
        "reactive_power_export",
        "frequency",
    }


def test_values_without_scaler_unit_or_with_a_wrong_unit_are_dropped() -> None:
    body = [
        (OB(1, 0, 1, 7, 0), 500),  # no scaler-unit: the resolution is unknown
        (OB(1, 0, 2, 7, 0), 7, (0, W)),
        reg(1, 1000, 0, W, d=8),  # energy register in W: unusable
        (OB(1, 0, 3, 7, 0), "12", (0, VAR)),  # not a number
        (OB(1, 0, 4, 7, 0), True, (0, VAR)),  # a boolean is not a number
        (OB(1, 0, 31, 7, 0), float("nan"), (0, A)),
        (OB(1, 0, 32, 7, 0), 230.5, (0, V)),  # a float is fine
        (OB(1, 0, 51, 7, 0), 5, (0, 1, 2)),  # not a scaler-unit
        (OB(1, 0, 71, 7, 0), 5, (99, A)),  # absurd scaler
    ]
    reading = decode(body)
    assert dict(reading.values) == {"active_power_export": 7.0, "voltage_l1": 230.5}


def test_malformed_elements_are_skipped() -> None:
    body: list[Data] = [
        5,
        (OB(1, 0, 1, 7, 0),),
        (b"\x01\x00\x01", 5, (0, W)),
        ("1-0:1.7.0", 5, (0, W)),
        (OB(1, 0, 1, 7, 0), 5, (0, W), 9),
        reg(2, 9, 0, W),
    ]
    assert dict(decode(body).values) == {"active_power_export": 9.0}


@pytest.mark.parametrize(
    "body",
    [
        [],
        [(OB(1, 0, 99, 97, 0), 5, (0, 255))],
        [(b"garbage", 1)],
        [None, None],
    ],
)
def test_arrays_with_nothing_usable_are_unknown_layouts(body: list[Data]) -> None:
    with pytest.raises(FrameError) as err:
        decode(body)
    assert err.value.reason is RejectReason.UNKNOWN_LAYOUT


def test_identity_only_list_is_a_reading() -> None:
    reading = decode(ident("6534"))
    assert reading.meter_id == "7359990000000042"
    assert dict(reading.values) == {}


def test_aware_clock_item_is_kept_aware() -> None:
    clock = bytes.fromhex("07E8060F06") + bytes.fromhex("0C000000") + bytes.fromhex("FF8880")
    reading = decode([(OB(0, 0, 1, 0, 0), clock), *POWERS])
    assert reading.meter_time == datetime(2024, 6, 15, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert not reading.meter_time_is_local


def test_a_huge_scaler_on_a_huge_float_is_not_published() -> None:
    reading = decode([(OB(1, 0, 1, 7, 0), 1e300, (20, W)), reg(2, 3, 0, W)])
    assert dict(reading.values) == {"active_power_export": 3.0}
