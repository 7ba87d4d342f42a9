"""The encoder: a Reading -> the exact bytes a given meter would send for it.

It is the inverse of the decoder, used by the simulator, by every layer's
tests, by the benchmark and by the integration tests. Each ``Layout`` is one
real meter family's frame format (addresses, control byte, APDU clock style,
item order, types, null padding, ciphering, segmentation); the list (1/2/3,
10 s/hourly) follows the values present in the reading (``Reading.list_kind``)
and the wiring follows its ``meter_type`` (else the phases present).

The round trip is exact modulo the layout's resolution: every value is
rounded once to the integer the meter sends (``raw = round(value *
10**decimals)``) and a decoder must read back exactly ``raw / 10**decimals``.
``expected_reading`` returns that read-back Reading (values, identity and
clock as the frame states them); ``resolution`` gives the decimals, and
``carried_names`` which values a list needs. Clock times keep whole seconds.

Where no capture documents a shape, the encoder extrapolates and says so in
the vendor module: E350 list 3 (Aidon's), Kaifa SE on IT meters (UL2 = 0), the
three unidentified L&G E450 values (sent as 0), P1 FI/NO field sets (the
Swedish set).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from ..reading import ListKind, Reading
from ..scaling import Scheme
from ._common import (
    EncodeError,
    Ident,
    Keys,
    Shape,
    Spec,
    Topology,
    quantize,
    require,
)
from .aidon import AidonNo, AidonSe, Embriq
from .austria import LgE450At, ObisArrayAt
from .kaifa import KaifaNo, KaifaSe
from .kamstrup import KamstrupDk, KamstrupNordic
from .p1 import P1

__all__ = [
    "EncodeError",
    "Layout",
    "Topology",
    "carried_names",
    "encode_reading",
    "expected_reading",
    "layout_spec",
    "list_kinds",
    "resolution",
    "topologies",
]


class Layout(StrEnum):
    """A meter family's frame format (see each member's comment)."""

    AIDON_NO = "aidon_no"  # AIDON_V0001 lists 1/2/3, HDLC 41/0883/13
    AIDON_SE = "aidon_se"  # Swedish Aidon 27-item HDLC list
    KAIFA_NO = "kaifa_no"  # KFM_001 positional lists 1/2/3, HDLC 01/0201/10
    KAIFA_SE = "kaifa_se"  # Swedish MA304H4 OBIS/value pairs, HDLC 01/0001/10
    KAMSTRUP_NO = "kamstrup_no"  # Kamstrup_V0001 10 s / hourly, energy 10 Wh
    KAMSTRUP_SE = "kamstrup_se"  # same frames, energy Wh
    KAMSTRUP_DK = "kamstrup_dk"  # encrypted DK push list, HDLC 41/03/13, SC 0x30
    LG_E350_NO = "lg_e350_no"  # L&G E350 EMBRIQ_V1_1 (Aidon-like)
    LG_E450_AT = "lg_e450_at"  # L&G E450 Netz Burgenland, encrypted HDLC, 14 positional
    OBIS_ARRAY_AT = "obis_array_at"  # AT/PL OBIS triples over M-Bus, SC 0x20
    P1_SE = "p1_se"  # Swedish P1 telegram
    P1_DK = "p1_dk"  # Danish P1 (L&G E360 line order)
    P1_FI = "p1_fi"  # Finnish P1 (Aidon /ADN9)
    P1_NO = "p1_no"  # Norwegian P1 (Kamstrup /KAM5)


_KAMSTRUP_NO_TYPES: Final = {
    Topology.ONE_PHASE: "6861111BN242101040",
    Topology.THREE_WIRE: "6841121BN243101040",
    Topology.FOUR_WIRE: "6841131BN243101040",
}
_KAMSTRUP_SE_TYPES: Final = {
    Topology.ONE_PHASE: "6861111BN245101040",
    Topology.THREE_WIRE: "6841121BN245101092",
    Topology.FOUR_WIRE: "6841131BN245101092",
}

_SPECS: Final[dict[Layout, Spec]] = {
    Layout.AIDON_NO: AidonNo(),
    Layout.AIDON_SE: AidonSe(),
    Layout.KAIFA_NO: KaifaNo(),
    Layout.KAIFA_SE: KaifaSe(),
    Layout.KAMSTRUP_NO: KamstrupNordic(Scheme.KAMSTRUP_NO, _KAMSTRUP_NO_TYPES),
    Layout.KAMSTRUP_SE: KamstrupNordic(Scheme.KAMSTRUP_SE, _KAMSTRUP_SE_TYPES),
    Layout.KAMSTRUP_DK: KamstrupDk(),
    Layout.LG_E350_NO: Embriq(),
    Layout.LG_E450_AT: LgE450At(),
    Layout.OBIS_ARRAY_AT: ObisArrayAt(),
    Layout.P1_SE: P1("SE"),
    Layout.P1_DK: P1("DK"),
    Layout.P1_FI: P1("FI"),
    Layout.P1_NO: P1("NO"),
}


def layout_spec(layout: Layout) -> Spec:
    """Return the spec object behind a layout (lists, registers, clock style)."""
    return _SPECS[layout]


def list_kinds(layout: Layout) -> tuple[ListKind, ...]:
    """Return the lists this meter family sends (Kamstrup has no power-only list)."""
    return _SPECS[layout].kinds


def _shape(spec: Spec, layout: Layout, kind: ListKind, topology: Topology) -> Shape:
    if kind not in spec.kinds:
        raise EncodeError(f"{layout} sends no list of kind {kind.name}")
    if topology not in spec.topologies:
        raise EncodeError(f"{layout} has no {topology} list")
    names = tuple(reg.name for reg in spec.registers(kind, topology))
    return Shape(kind, topology, names)


def topologies(layout: Layout) -> tuple[Topology, ...]:
    """Return the wirings this layout's lists are documented for."""
    return _SPECS[layout].topologies


def carried_names(
    layout: Layout, kind: ListKind, topology: Topology | None = None
) -> tuple[str, ...]:
    """Return the value names one list of ``layout`` carries, in wire order.

    ``topology`` defaults to 4-wire, or the layout's only wiring (L&G E350: 3-wire).
    """
    spec = _SPECS[layout]
    if topology is None:
        topology = (
            Topology.FOUR_WIRE if Topology.FOUR_WIRE in spec.topologies else spec.topologies[0]
        )
    return _shape(spec, layout, kind, topology).names


def resolution(layout: Layout, name: str) -> int | None:
    """Decimals of ``name`` in ``layout`` (value = raw / 10**decimals); None if not carried."""
    return _SPECS[layout].decimals(name)


def _plan(reading: Reading, layout: Layout) -> tuple[Spec, Shape, Ident]:
    spec = _SPECS[layout]
    kind = reading.list_kind
    topology = spec.topology(reading.meter_type, reading.values)
    shape = _shape(spec, layout, kind, topology)
    require(reading.values, shape.names, f"{layout} {kind.name} ({topology})")
    ident = Ident(reading.manufacturer, reading.meter_id, reading.meter_type, reading.meter_time)
    return spec, shape, ident


def encode_reading(
    reading: Reading,
    layout: Layout,
    *,
    key: bytes | None = None,
    auth_key: bytes | None = None,
    system_title: bytes | None = None,
    frame_counter: int = 1,
) -> bytes:
    """Build the raw bytes ``layout``'s meter sends for ``reading`` (one or more frames).

    The list follows ``reading.list_kind`` and the wiring follows
    ``reading.meter_type`` (else the phases present). Values the list does not
    carry are left out; values it needs but the reading lacks raise
    ``EncodeError`` (a ``ValueError``), as do out-of-range values and an
    encrypted layout without ``key``. ``system_title`` defaults to the
    maker's prefix plus digits of the meter id.
    """
    spec, shape, ident = _plan(reading, layout)
    keys = Keys(key, auth_key, system_title, frame_counter)
    return spec.encode(reading.values, ident, shape, keys)


def expected_reading(reading: Reading, layout: Layout) -> Reading:
    """Return what a correct decoder reads from ``encode_reading(reading, layout)``.

    Values rounded to the layout's resolution (and only those it carries),
    the identity the frame carries, and the clock as the frame states it. It
    assumes the decoder knows the layout's market where the frame cannot say
    (``DecodeOptions.country``: P1 FI/NO clocks have no fixed offset).
    """
    spec, shape, ident = _plan(reading, layout)
    regs = spec.registers(shape.kind, shape.topology)
    values = spec.readback(
        {reg.name: quantize(reading.values[reg.name], reg.decimals) for reg in regs}
    )
    who = spec.identity(ident, shape)
    meter_time: datetime | None = None
    if spec.has_time(shape.kind):
        meter_time = spec.readback_time(reading.meter_time)
    return Reading(
        protocol=spec.protocol,
        manufacturer=who.manufacturer,
        meter_id=who.meter_id,
        meter_type=who.meter_type,
        list_version=spec.list_version if shape.kind is not ListKind.POWER else None,
        meter_time=meter_time,
        values=MappingProxyType(values),
    )
