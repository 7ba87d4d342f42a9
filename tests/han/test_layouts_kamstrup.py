"""Kamstrup HAN-NVE lists (NO/SE), null padding, market inference and the Danish push list.

Trees written by hand from protocol.md §4.4 and §6 (KAM-NVE / KAM-DK): a flat structure
of ``Kamstrup_V0001`` then OBIS/value pairs, B = 1, no scalers.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from custom_components.hanport.han import cosem
from custom_components.hanport.han.dlms.axdr import Data
from custom_components.hanport.han.dlms.notification import Notification
from custom_components.hanport.han.layouts import decode_notification, kamstrup
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Protocol, Reading
from custom_components.hanport.han.scaling import Scheme

OB = cosem.obis
HEADER = datetime(2024, 2, 1, 12, 0, 5)
NO_TYPE = "6841131BN243101040"
SE_TYPE = "6841131BN245101090"
NO_1PHASE = "6861111BN242101040"


def decode(
    body: Data, *, country: str | None = None, timestamp: datetime | None = HEADER
) -> Reading:
    n = Notification(0, timestamp, body)
    return decode_notification(n, protocol=Protocol.HDLC, options=DecodeOptions(country=country))


def pair(c: int, value: Data, d: int = 7) -> list[Data]:
    return [OB(1, 1, c, d, 0), value]


def ten_second(meter_type: str = NO_TYPE) -> list[Data]:
    return [
        "Kamstrup_V0001",
        OB(1, 1, 0, 0, 5),
        "5706567000000123",
        OB(1, 1, 96, 1, 1),
        meter_type,
        *pair(1, 3210),
        *pair(2, 0),
        *pair(3, 0),
        *pair(4, 412),
        *pair(31, 1375),
        *pair(51, 480),
        *pair(71, 902),
        *pair(32, 231),
        *pair(52, 229),
        *pair(72, 233),
    ]


CLOCK = bytes.fromhex("07E8020104") + bytes.fromhex("0C000500") + bytes.fromhex("800000")


def hourly(meter_type: str = NO_TYPE) -> list[Data]:
    return [
        *ten_second(meter_type),
        OB(0, 1, 1, 0, 0),
        CLOCK,
        *pair(1, 1234567, d=8),
        *pair(2, 12, d=8),
        *pair(3, 40000, d=8),
        *pair(4, 300001, d=8),
    ]


def test_norwegian_10s_list() -> None:
    body = tuple(ten_second())
    assert len(body) == 0x19
    reading = decode(body)
    assert reading.manufacturer == "Kamstrup"
    assert reading.list_version == "Kamstrup_V0001"
    assert reading.meter_id == "5706567000000123"
    assert reading.meter_type == NO_TYPE
    assert reading.meter_time == HEADER
    assert dict(reading.values) == {
        "active_power_import": 3210.0,
        "active_power_export": 0.0,
        "reactive_power_import": 0.0,
        "reactive_power_export": 412.0,
        "current_l1": 13.75,  # 0.01 A
        "current_l2": 4.8,
        "current_l3": 9.02,
        "voltage_l1": 231.0,  # 1 V
        "voltage_l2": 229.0,
        "voltage_l3": 233.0,
    }
    assert reading.list_kind is ListKind.STATUS


def test_norwegian_hourly_list_energy_in_10_wh_and_clock_item() -> None:
    body = tuple(hourly())
    assert len(body) == 0x23
    reading = decode(body, timestamp=datetime(2024, 2, 1, 12, 0, 6))
    assert reading.meter_time == datetime(2024, 2, 1, 12, 0, 5)
    assert reading.values["active_energy_import"] == 12345.67
    assert reading.values["active_energy_export"] == 0.12
    assert reading.values["reactive_energy_import"] == 400.0
    assert reading.values["reactive_energy_export"] == 3000.01
    assert reading.list_kind is ListKind.ENERGY


def test_swedish_type_means_energy_in_wh() -> None:
    reading = decode(tuple(hourly(SE_TYPE)))
    assert reading.values["active_energy_import"] == 1234.567
    assert reading.values["reactive_energy_export"] == 300.001
    # Only energy differs between the markets.
    assert reading.values["current_l1"] == 13.75


@pytest.mark.parametrize(
    ("country", "meter_type", "energy"),
    [
        ("SE", NO_TYPE, 1234.567),  # the user's country overrides the type
        ("se", NO_TYPE, 1234.567),
        ("NO", SE_TYPE, 12345.67),
        ("DK", NO_TYPE, 1234.567),
        ("FI", SE_TYPE, 1234.567),  # unknown market: the type decides
        ("FI", NO_TYPE, 12345.67),
        (None, "000000000000000000", 12345.67),  # nothing known: HAN-NVE (Norway)
        (None, "6841131", 12345.67),
    ],
)
def test_market_resolution(country: str | None, meter_type: str, energy: float) -> None:
    reading = decode(tuple(hourly(meter_type)), country=country)
    assert reading.values["active_energy_import"] == energy


@pytest.mark.parametrize(
    ("meter_type", "market"),
    [
        ("6841121BN243101040", "NO"),
        ("6861111BN242101040", "NO"),
        ("6841138AN243101090", "NO"),
        ("6841131BN245101092", "SE"),
        ("6841131BN249101092", None),
        ("684113112345678901", None),
        ("6841131BN24", None),
        (None, None),
    ],
)
def test_market_from_type(meter_type: str | None, market: str | None) -> None:
    assert kamstrup.market_from_type(meter_type) == market


def test_market_scheme_order() -> None:
    assert kamstrup.market_scheme(DecodeOptions(), None, danish_list=True) is Scheme.KAMSTRUP_DK
    assert kamstrup.market_scheme(DecodeOptions(), None, danish_list=False) is Scheme.KAMSTRUP_NO
    assert (
        kamstrup.market_scheme(DecodeOptions(country="NO"), None, danish_list=True)
        is Scheme.KAMSTRUP_NO
    )
    assert kamstrup.market_scheme(DecodeOptions(), SE_TYPE, danish_list=True) is Scheme.KAMSTRUP_SE


def single_phase_padded() -> tuple[Data, ...]:
    # 1-phase meters keep the 0x23 count and replace absent pairs with two nulls.
    return (
        "Kamstrup_V0001",
        OB(1, 1, 0, 0, 5),
        "5706567000000456",
        OB(1, 1, 96, 1, 1),
        NO_1PHASE,
        *pair(1, 812),
        *pair(2, 0),
        *pair(3, 95),
        *pair(4, 0),
        *pair(31, 371),
        None,
        None,
        None,
        None,
        *pair(32, 228),
        None,
        None,
        None,
        None,
        OB(0, 1, 1, 0, 0),
        CLOCK,
        *pair(1, 55555, d=8),
        *pair(2, 0, d=8),
        *pair(3, 666, d=8),
        *pair(4, 7777, d=8),
    )


def test_single_phase_null_padding_is_skipped() -> None:
    body = single_phase_padded()
    assert len(body) == 0x23
    reading = decode(body)
    assert set(reading.values) == {
        "active_power_import",
        "active_power_export",
        "reactive_power_import",
        "reactive_power_export",
        "current_l1",
        "voltage_l1",
        "active_energy_import",
        "active_energy_export",
        "reactive_energy_import",
        "reactive_energy_export",
    }
    assert reading.values["current_l1"] == 3.71
    assert reading.values["active_energy_import"] == 555.55


def test_single_phase_vendor_doc_variant_without_padding_decodes_the_same() -> None:
    padded = decode(single_phase_padded())
    dropped = decode(tuple(item for item in single_phase_padded() if item is not None))
    assert dropped.values == padded.values
    assert dropped.meter_time == padded.meter_time


def test_old_and_new_firmware_only_differ_in_the_apdu_clock() -> None:
    # 09 0C vs 0C in the APDU header is the APDU decoder's business; the body is the same.
    old = decode(tuple(ten_second()), timestamp=datetime(2017, 10, 20, 3, 43, 30))
    new = decode(tuple(ten_second()), timestamp=datetime(2018, 3, 4, 20, 52))
    assert old.values == new.values
    assert old.meter_time == datetime(2017, 10, 20, 3, 43, 30)


def test_optional_scaler_unit_structs_are_used() -> None:
    body = (
        "Kamstrup_V0001",
        *pair(32, 2301),
        (-1, 35),
        *pair(31, 1234),
        (-3, 33),
        *pair(1, 1500, d=8),
        (2, 30),
        *pair(1, 1000),
    )
    reading = decode(body)
    assert reading.values["voltage_l1"] == 230.1
    assert reading.values["current_l1"] == 1.234
    assert reading.values["active_energy_import"] == 150.0
    assert reading.values["active_power_import"] == 1000.0


def test_high_resolution_voltage_firmware() -> None:
    # A 2025 Danish firmware sends 0.01 V: 22199 is 221.99 V, not 22 kV.
    body = ("Kamstrup_V0001", *pair(32, 22199), *pair(52, 231), *pair(72, 23012))
    reading = decode(body)
    assert reading.values["voltage_l1"] == 221.99
    assert reading.values["voltage_l2"] == 231.0
    assert reading.values["voltage_l3"] == 230.12


def danish_push_list() -> tuple[Data, ...]:
    # KAM-DK "DLMS push 1", 1-phase: energies first, meter number 1-1:0.0.1 as u32,
    # clock 0-1:1.0.0, per-phase P and PF in 0.01, per-phase energy; no type item.
    clock = bytes.fromhex("07E8050E02") + bytes.fromhex("0A0F1EFF") + bytes.fromhex("800080")
    return (
        "Kamstrup_V0001",
        *pair(1, 2345678, d=8),
        *pair(2, 1200, d=8),
        *pair(3, 23456, d=8),
        *pair(4, 345678, d=8),
        OB(1, 1, 0, 0, 1),
        12345678,
        *pair(1, 612),
        *pair(2, 0),
        *pair(3, 0),
        *pair(4, 140),
        OB(0, 1, 1, 0, 0),
        clock,
        *pair(32, 234),
        *pair(31, 288),
        *pair(21, 612),
        *pair(33, 91),
        *pair(13, 91),
        *pair(22, 0),
        *pair(22, 1200, d=8),
        *pair(21, 2345678, d=8),
    )


def test_danish_push_list() -> None:
    body = danish_push_list()
    assert len(body) == 0x25
    reading = decode(body, timestamp=None)
    assert reading.manufacturer == "Kamstrup"
    assert reading.meter_id == "12345678"
    assert reading.meter_type is None
    assert reading.meter_time == datetime(2024, 5, 14, 10, 15, 30)
    assert reading.values["active_energy_import"] == 2345.678  # Wh in Denmark
    assert reading.values["active_energy_import_l1"] == 2345.678
    assert reading.values["active_energy_export_l1"] == 1.2
    assert reading.values["active_power_import_l1"] == 612.0
    assert reading.values["active_power_export_l1"] == 0.0
    assert reading.values["power_factor"] == 0.91
    assert reading.values["power_factor_l1"] == 0.91
    assert reading.values["current_l1"] == 2.88
    assert reading.values["voltage_l1"] == 234.0


def test_power_factor_above_one_is_not_published() -> None:
    body = ("Kamstrup_V0001", *pair(13, 65535), *pair(33, 100))
    values = decode(body).values
    assert "power_factor" not in values
    assert values["power_factor_l1"] == 1.0


def test_list_id_as_octet_string() -> None:
    reading = decode((b"Kamstrup_V0001", *pair(1, 5)))
    assert reading.list_version == "Kamstrup_V0001"
    assert reading.values["active_power_import"] == 5.0


def test_list_id_only_is_a_reading_without_values() -> None:
    reading = decode(("Kamstrup_V0001",))
    assert reading.list_version == "Kamstrup_V0001"
    assert dict(reading.values) == {}


def test_stray_items_and_a_trailing_code_are_ignored() -> None:
    body = ("Kamstrup_V0001", 7, *pair(1, 100), "stray", OB(1, 1, 2, 7, 0))
    assert dict(decode(body).values) == {"active_power_import": 100.0}


def test_is_list_id() -> None:
    assert kamstrup.is_list_id("Kamstrup_V0001")
    assert kamstrup.is_list_id(b"Kamstrup_V0001")
    assert not kamstrup.is_list_id("KFM_001")
    assert not kamstrup.is_list_id(5)
