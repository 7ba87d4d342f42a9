"""Pieces every vendor encoder shares: value rounding, topology, COSEM clocks.

The encoder writes each value as the integer the meter would send, so a value
is rounded to the layout's resolution once, here, and the decoder reads back
exactly ``raw / 10**decimals``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Final

from ..cosem import Obis, Unit, encode_datetime, obis, parse_datetime
from ..dlms import axdr
from ..dlms.cipher import encrypt_apdu
from ..reading import ListKind, Protocol
from ..scaling import HIGH_RESOLUTION, Scheme, exponents, quantity_of


class Topology(StrEnum):
    """How the meter is wired; decides which phase values a list carries."""

    ONE_PHASE = "1-phase"
    THREE_WIRE = "3-wire"  # IT: line voltages; Aidon drops IL2, Kaifa zeroes UL2
    FOUR_WIRE = "4-wire"  # TN: everything per phase


class EncodeError(ValueError):
    """The reading cannot be written in the requested layout (a caller error)."""


# A-XDR integer types -> inclusive range of the raw value.
_RANGES: Final[dict[int, tuple[int, int]]] = {
    axdr.UINT8: (0, 0xFF),
    axdr.INT8: (-0x80, 0x7F),
    axdr.UINT16: (0, 0xFFFF),
    axdr.INT16: (-0x8000, 0x7FFF),
    axdr.UINT32: (0, 0xFFFF_FFFF),
    axdr.INT32: (-0x8000_0000, 0x7FFF_FFFF),
}


def to_raw(name: str, value: float, decimals: int, tag: int) -> int:
    """Return the integer a meter sends for ``value`` at resolution ``10**-decimals``."""
    raw = round(value * 10.0**decimals)
    low, high = _RANGES[tag]
    if not low <= raw <= high:
        raise EncodeError(f"{name}={value} does not fit the layout's 0x{tag:02X} field")
    return raw


def quantize(value: float, decimals: int) -> float:
    """``value`` exactly as a decoder reads it back (``raw / 10**decimals``)."""
    raw = round(value * 10**decimals)
    return raw / 10**decimals if decimals > 0 else float(raw * 10**-decimals)


@dataclass(frozen=True, slots=True)
class Register:
    """One numeric quantity as a layout sends it.

    ``decimals`` is the resolution (canonical value = raw / 10**decimals);
    ``scaler``/``unit`` are what OBIS-struct layouts write next to the value.
    ``below``: raw magnitudes from here on mean something else to a decoder
    (a finer resolution, ``scaling.HIGH_RESOLUTION``; a power factor above 1),
    so the encoder refuses them.
    """

    name: str
    code: Obis
    tag: int
    decimals: int
    scaler: int = 0
    unit: Unit = Unit.UNITLESS
    below: int | None = None

    def typed(self, values: Mapping[str, float]) -> axdr.Typed:
        """Return the value as an explicitly typed A-XDR number."""
        raw = to_raw(self.name, values[self.name], self.decimals, self.tag)
        if self.below is not None and abs(raw) >= self.below:
            raise EncodeError(f"{self.name}={values[self.name]} would not read back as sent")
        return axdr.Typed(self.tag, raw)

    def scaler_unit(self) -> tuple[axdr.Typed, axdr.Typed]:
        """Return the ``02 02 0F <scaler> 16 <unit>`` structure."""
        return (axdr.Typed(axdr.INT8, self.scaler), axdr.Typed(axdr.ENUM, int(self.unit)))


def register(name: str, c: int, d: int, tag: int, scaler_unit: tuple[int, Unit]) -> Register:
    """Describe a register with an explicit scaler/unit; ``decimals`` follows from them."""
    scaler, unit = scaler_unit
    shift = 3 if unit in (Unit.WATT_HOUR, Unit.VAR_HOUR, Unit.VOLT_AMPERE_HOUR) else 0
    decimals = shift - scaler
    below = _power_factor_limit(name, decimals)
    return Register(name, obis(1, 0, c, d, 0), tag, decimals, scaler, unit, below)


def _power_factor_limit(name: str, decimals: int) -> int | None:
    """Return the raw limit of a power factor: it reads back only up to 1."""
    return 10**decimals + 1 if name.startswith("power_factor") else None


def fixed(name: str, c: int, d: int, tag: int, decimals: int, *, b: int = 0) -> Register:
    """Describe a register whose resolution the format itself fixes (P1 text)."""
    return Register(name, obis(1, b, c, d, 0), tag, decimals)


def implicit(name: str, c: int, d: int, tag: int, scheme: Scheme, *, b: int = 0) -> Register:
    """Describe a register sent without a scaler: its resolution is ``scaling.IMPLICIT``'s."""
    decimals = -exponents(scheme)[name]
    rules = HIGH_RESOLUTION.get(scheme)
    finer = None if rules is None else rules.get(quantity_of(name))
    below = finer[0] if finer is not None else _power_factor_limit(name, decimals)
    return Register(name, obis(1, b, c, d, 0), tag, decimals, below=below)


def require(values: Mapping[str, float], names: Iterable[str], what: str) -> None:
    """Raise ``EncodeError`` naming every value the shape needs but the reading lacks."""
    missing = [name for name in names if name not in values]
    if missing:
        raise EncodeError(f"{what} needs {', '.join(missing)}")


def topology_from_values(values: Mapping[str, float]) -> Topology:
    """Guess the wiring from the phase values present (used when the model is unknown)."""
    if "current_l3" not in values and "voltage_l3" not in values:
        return Topology.ONE_PHASE
    if "current_l2" in values and "voltage_l2" in values:
        return Topology.FOUR_WIRE
    return Topology.THREE_WIRE


# ---------------------------------------------------------------- clocks

CLOCK_OBIS: Final = obis(0, 0, 1, 0, 0)
_DT: Final = struct.Struct(">HBBBBBBBhB")
UNSPECIFIED_DATETIME: Final = _DT.pack(
    0xFFFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, -0x8000, 0xFF
)
"""A COSEM date-time with every field "not specified" (the decoder reads ``None``)."""


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month, 31)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def eu_summer_time(local: datetime) -> bool:
    """Whether a CET wall-clock time falls in EU summer time (for the DST status bit)."""
    start = datetime.combine(_last_sunday(local.year, 3), time(2))
    end = datetime.combine(_last_sunday(local.year, 10), time(3))
    return start <= local.replace(tzinfo=None) < end


@dataclass(frozen=True, slots=True)
class ClockStyle:
    """How one vendor fills the 12-byte date-time.

    ``deviation``: ``None`` sends 0x8000 (local time); an int is sent as is (an
    aware datetime is first converted to that fixed offset, except for Aidon's
    0, which means local time); the string ``"cet"`` sends -60/-120 from the EU
    summer-time rule and ``"offset"`` the offset of an aware datetime (else
    ``"cet"``). Local-time styles write an aware datetime's wall clock as given.
    """

    deviation: int | str | None = None
    status: int | str = 0x00  # an int, or "dst" for 0x80 in summer and 0x00 otherwise
    hundredths: int = 0xFF  # 0xFF: not specified; the decoder reads whole seconds either way
    sunday_zero: bool = False  # Aidon numbers Sunday 0, not 7

    def encode(self, when: datetime | None) -> bytes:
        """Return the 12 bytes for ``when``; all fields unspecified for ``None``."""
        if when is None:
            return UNSPECIFIED_DATETIME
        if isinstance(self.deviation, int) and self.deviation and when.tzinfo is not None:
            # a meter that states a fixed offset (Kaifa SE: UTC+1) shows its own wall clock
            when = when.astimezone(timezone(timedelta(minutes=-self.deviation)))
        summer = eu_summer_time(when)
        deviation: int | None
        if self.deviation == "offset" and when.tzinfo is not None:
            offset = when.utcoffset()
            deviation = -int(offset.total_seconds() // 60) if offset is not None else None
        elif isinstance(self.deviation, str):
            deviation = -120 if summer else -60
        else:
            deviation = self.deviation
        raw = bytearray(encode_datetime(when.replace(tzinfo=None), deviation=deviation))
        if self.sunday_zero and raw[4] == 7:
            raw[4] = 0
        raw[8] = self.hundredths
        raw[11] = (0x80 if summer else 0x00) if self.status == "dst" else int(self.status)
        return bytes(raw)


def decoded_time(style: ClockStyle, when: datetime | None) -> datetime | None:
    """``when`` as the decoder reads it back from ``style`` (whole seconds, its offset)."""
    if when is None:
        return None
    return parse_datetime(style.encode(when))


# ---------------------------------------------------------------- layout specs


@dataclass(frozen=True, slots=True)
class Keys:
    """Ciphering inputs for the encrypted layouts."""

    key: bytes | None
    auth_key: bytes | None
    system_title: bytes | None
    frame_counter: int


@dataclass(frozen=True, slots=True)
class Shape:
    """What one list of one layout carries: its value names in wire order."""

    kind: ListKind
    topology: Topology
    names: tuple[str, ...]


class Spec:
    """One layout: which lists it has, their values, and how to write them."""

    protocol: Protocol = Protocol.HDLC
    manufacturer: str | None = None
    kinds: tuple[ListKind, ...] = (ListKind.POWER, ListKind.STATUS, ListKind.ENERGY)
    topologies: tuple[Topology, ...] = tuple(Topology)
    list_version: str | None = None
    clock: ClockStyle = ClockStyle()

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Return the numeric registers of one list shape, in wire order."""
        raise NotImplementedError

    def decimals(self, name: str) -> int | None:
        """Resolution of ``name`` in this layout (None: not carried)."""
        for kind in self.kinds:
            for register in self.registers(kind, Topology.FOUR_WIRE):
                if register.name == name:
                    return register.decimals
        return None

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """Return the wiring from the meter model, else from the values present."""
        raise NotImplementedError

    def default_meter_type(self, topology: Topology) -> str | None:
        """Return a model string for readings that carry none."""
        return None

    def has_time(self, kind: ListKind) -> bool:
        """Whether the frames of this list carry the meter's clock."""
        return True

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Build the frame bytes."""
        raise NotImplementedError

    def identity(self, ident: Ident, shape: Shape) -> Ident:
        """Return the identity a decoder reads back (list version: ``list_version``)."""
        if shape.kind is ListKind.POWER:
            return Ident(None, None, None, None)
        return Ident(
            self.manufacturer,
            ident.meter_id,
            ident.meter_type or self.default_meter_type(shape.topology),
            None,
        )

    def readback(self, values: dict[str, float]) -> dict[str, float]:
        """Adjust rounded values to what the decoder derives (P1 current signs)."""
        return values

    def readback_time(self, when: datetime | None) -> datetime | None:
        """Return ``when`` as the decoder reads it back from this layout's clock."""
        return decoded_time(self.clock, when)


@dataclass(frozen=True, slots=True)
class Ident:
    """The identity fields of a reading that frames may carry."""

    manufacturer: str | None
    meter_id: str | None
    meter_type: str | None
    meter_time: datetime | None

    def need_id(self, what: str) -> str:
        """Return the meter id; raise ``EncodeError`` when the list must carry one."""
        if self.meter_id is None:
            raise EncodeError(f"{what} carries the meter id; the reading has none")
        return self.meter_id


def encrypt(
    apdu: bytes, keys: Keys, prefix: bytes, meter_id: str, *, security_control: int = 0x30
) -> bytes:
    """Cipher an APDU as the meter does (the key is required).

    The system title defaults to the maker's prefix plus the meter id's digits.
    """
    if keys.key is None:
        raise EncodeError("this layout is encrypted: pass key=")
    title = keys.system_title
    if title is None:
        digits = int("".join(ch for ch in meter_id if ch.isdigit()) or "0")
        size = 8 - len(prefix)
        title = prefix + (digits % 256**size).to_bytes(size, "big")
    return encrypt_apdu(
        apdu,
        key=keys.key,
        auth_key=keys.auth_key,
        system_title=title,
        frame_counter=keys.frame_counter,
        security_control=security_control,
    )
