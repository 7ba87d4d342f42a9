"""COSEM vocabulary: OBIS codes -> canonical names, unit enums, and the 12-byte date-time."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from functools import lru_cache
from typing import Final

from . import reading as r

type Obis = bytes
"""An OBIS code as its six raw bytes A B C D E F."""


def obis(a: int, b: int, c: int, d: int, e: int, f: int = 255) -> Obis:  # noqa: PLR0917
    """Build the raw form of OBIS ``a-b:c.d.e.f``."""
    return bytes((a, b, c, d, e, f))


def obis_str(code: Obis) -> str:
    """``1-0:1.7.0.255`` notation."""
    a, b, c, d, e, f = code
    return f"{a}-{b}:{c}.{d}.{e}.{f}"


class Unit(IntEnum):
    """DLMS unit enumeration values that HAN ports use."""

    WATT = 27
    VOLT_AMPERE = 28
    VAR = 29
    WATT_HOUR = 30
    VOLT_AMPERE_HOUR = 31
    VAR_HOUR = 32
    AMPERE = 33
    VOLT = 35
    HERTZ = 44
    UNITLESS = 255


# Electricity (A=1) quantities by (C, D, E); B (the channel) varies by vendor and is ignored.
ELECTRICITY_NAMES: Final[dict[tuple[int, int, int], str]] = {
    (1, 7, 0): r.ACTIVE_POWER_IMPORT,
    (2, 7, 0): r.ACTIVE_POWER_EXPORT,
    (3, 7, 0): r.REACTIVE_POWER_IMPORT,
    (4, 7, 0): r.REACTIVE_POWER_EXPORT,
    (21, 7, 0): "active_power_import_l1",
    (22, 7, 0): "active_power_export_l1",
    (23, 7, 0): "reactive_power_import_l1",
    (24, 7, 0): "reactive_power_export_l1",
    (41, 7, 0): "active_power_import_l2",
    (42, 7, 0): "active_power_export_l2",
    (43, 7, 0): "reactive_power_import_l2",
    (44, 7, 0): "reactive_power_export_l2",
    (61, 7, 0): "active_power_import_l3",
    (62, 7, 0): "active_power_export_l3",
    (63, 7, 0): "reactive_power_import_l3",
    (64, 7, 0): "reactive_power_export_l3",
    (31, 7, 0): "current_l1",
    (51, 7, 0): "current_l2",
    (71, 7, 0): "current_l3",
    (32, 7, 0): "voltage_l1",
    (52, 7, 0): "voltage_l2",
    (72, 7, 0): "voltage_l3",
    (13, 7, 0): r.POWER_FACTOR,
    (33, 7, 0): "power_factor_l1",
    (53, 7, 0): "power_factor_l2",
    (73, 7, 0): "power_factor_l3",
    (1, 8, 0): r.ACTIVE_ENERGY_IMPORT,
    (2, 8, 0): r.ACTIVE_ENERGY_EXPORT,
    (3, 8, 0): r.REACTIVE_ENERGY_IMPORT,
    (4, 8, 0): r.REACTIVE_ENERGY_EXPORT,
    (14, 7, 0): "frequency",
}

# Abstract (A=0 / A=1 with C in 0, 96) identity objects; B ignored.
CLOCK: Final = (1, 0, 0)  # 0-b:1.0.0 with A=0
LIST_VERSION: Final = (0, 2, 129)  # 1-b:0.2.129
METER_ID_OBJECTS: Final = frozenset({(96, 1, 0), (0, 0, 5), (0, 0, 1)})
METER_TYPE_OBJECTS: Final = frozenset({(96, 1, 7), (96, 1, 1)})

# Canonical name -> the unit factor from the DLMS unit to the canonical unit.
_ENERGY_UNITS: Final = {Unit.WATT_HOUR, Unit.VAR_HOUR, Unit.VOLT_AMPERE_HOUR}


def unit_factor(unit: int) -> float:
    """Factor from a DLMS unit to our canonical unit (Wh -> kWh, everything else 1)."""
    return 0.001 if unit in _ENERGY_UNITS else 1.0


# ---------------------------------------------------------------- date-time

_DT: Final = struct.Struct(">HBBBBBBBhB")
DEVIATION_UNSPECIFIED: Final = -0x8000
STATUS_INVALID: Final = 0x01
STATUS_DST: Final = 0x80


@lru_cache(maxsize=16)
def _zone(deviation: int) -> timezone:
    """Fixed-offset zone for a deviation as sent (minus the UTC offset).

    Cached: a meter sends the same deviation in every frame.
    """
    return timezone(timedelta(minutes=-deviation))


def parse_datetime(raw: bytes) -> datetime | None:
    """Decode a 12-byte COSEM date-time.

    Returns an aware datetime when the deviation is given and non-zero (the
    deviation is *minus* the UTC offset); a naive local wall-clock time when it
    is unspecified (0x8000) or 0 (Aidon sends 0 for Norwegian local time);
    ``None`` when the date or hour is unspecified, the fields are out of range,
    or the clock status says the time is invalid (bit 0; status 0xFF = not
    specified). Unspecified minute/second/hundredths read as 0. The day-of-week
    byte is not checked (Aidon sends Sunday as 0). The DST status bit is not
    applied: the deviation already includes the summer hour, and Kaifa and L&G
    send status 0x00 all year, so the bit cannot tell the two autumn 02:xx apart.
    """
    if len(raw) != 12:
        return None
    year, month, day, _dow, hour, minute, second, hundredths, deviation, status = _DT.unpack(raw)
    if year == 0xFFFF or month > 12 or day > 31 or hour == 0xFF:
        return None
    if status != 0xFF and status & STATUS_INVALID:
        return None
    if minute == 0xFF:
        minute = 0
    if second == 0xFF:
        second = 0
    micro = 0 if hundredths == 0xFF or hundredths > 99 else hundredths * 10_000
    tz: timezone | None = None
    if deviation not in (DEVIATION_UNSPECIFIED, 0):
        if not -900 <= deviation <= 900:
            return None
        tz = _zone(deviation)
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        return None


def encode_datetime(when: datetime, *, deviation: int | None = None, dst: bool = False) -> bytes:
    """Encode a 12-byte COSEM date-time (for the encoder and tests).

    ``deviation`` in minutes as sent (minus the UTC offset); ``None`` sends 0x8000.
    For an aware ``when`` and no ``deviation``, the offset of ``when`` is used.
    """
    if deviation is None and when.tzinfo is not None:
        offset = when.utcoffset()
        deviation = -int(offset.total_seconds() // 60) if offset is not None else None
    dev = DEVIATION_UNSPECIFIED if deviation is None else deviation
    status = STATUS_DST if dst else 0x00
    return _DT.pack(
        when.year,
        when.month,
        when.day,
        when.isoweekday(),
        when.hour,
        when.minute,
        when.second,
        when.microsecond // 10_000,
        dev,
        status,
    )
