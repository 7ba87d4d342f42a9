"""Kamstrup ``Kamstrup_V0001``: NO/SE 10 s and hourly lists, and the encrypted DK push list.

Flat structure: ``0A 0E "Kamstrup_V0001"`` then ``09 06 <OBIS>`` / value pairs
(OBIS B=1, no scalers). NO/SE: HDLC 2B / 21 / 13, ``0C`` APDU clock; 10 s list
``02 19``, hourly ``02 23``; a 1-phase meter keeps the count and sends each
absent pair as two nulls. DK: HDLC 41 / 03 / 13, GCM-ciphered (SC 0x30).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..cosem import obis
from ..dlms import axdr
from ..reading import ListKind
from . import _wire
from ._common import (
    ClockStyle,
    EncodeError,
    Ident,
    Keys,
    Register,
    Shape,
    Spec,
    Topology,
    cipher_keys,
    implicit,
    topology_from_values,
)

LIST_ID: Final = "Kamstrup_V0001"
_U32, _U16 = axdr.UINT32, axdr.UINT16
CLOCK_OBIS: Final = obis(0, 1, 1, 0, 0)
METER_ID_OBIS: Final = obis(1, 1, 0, 0, 5)
METER_TYPE_OBIS: Final = obis(1, 1, 96, 1, 1)
METER_NUMBER_OBIS: Final = obis(1, 1, 0, 0, 1)  # DK: meter number as uint32
CLOCK: Final = ClockStyle(deviation=None, status="dst")


def _r(name: str, c: int, d: int, tag: int, decimals: int) -> Register:
    return implicit(name, c, d, tag, decimals, b=1)


POWERS: Final = (
    _r("active_power_import", 1, 7, _U32, 0),
    _r("active_power_export", 2, 7, _U32, 0),
    _r("reactive_power_import", 3, 7, _U32, 0),
    _r("reactive_power_export", 4, 7, _U32, 0),
)
CURRENTS: Final = tuple(_r(f"current_l{n}", c, 7, _U32, 2) for n, c in ((1, 31), (2, 51), (3, 71)))
VOLTAGES: Final = tuple(_r(f"voltage_l{n}", c, 7, _U16, 0) for n, c in ((1, 32), (2, 52), (3, 72)))
_ABSENT_ON_1P: Final = CURRENTS[1:] + VOLTAGES[1:]  # sent as null pairs by 1-phase meters


def _energies(decimals: int) -> tuple[Register, ...]:
    return (
        _r("active_energy_import", 1, 8, _U32, decimals),
        _r("active_energy_export", 2, 8, _U32, decimals),
        _r("reactive_energy_import", 3, 8, _U32, decimals),
        _r("reactive_energy_export", 4, 8, _U32, decimals),
    )


def kamstrup_topology(meter_type: str | None, values: Mapping[str, float]) -> Topology:
    """686… = 1-phase, 684-11-21… = 3-wire IT, other 684/685 = 4-wire (KAM-NVE §2.2)."""
    model = meter_type or ""
    if model.startswith("686"):
        return Topology.ONE_PHASE
    if model.startswith("6841121"):
        return Topology.THREE_WIRE
    if model.startswith(("684", "685")):
        return Topology.FOUR_WIRE
    return topology_from_values(values)


class KamstrupNordic(Spec):
    """NO/SE: 10 s list (0x19) and hourly list (0x23); no power-only list."""

    kinds = (ListKind.STATUS, ListKind.ENERGY)
    list_version = LIST_ID
    clock = CLOCK

    def __init__(self, energy_decimals: int, defaults: Mapping[Topology, str]) -> None:
        """``energy_decimals``: 2 for NO (10 Wh), 3 for SE (Wh)."""
        self._energies = _energies(energy_decimals)
        self._defaults = defaults

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Powers, currents, voltages (1-phase: L1 only); energies in the hourly list."""
        if topology is Topology.ONE_PHASE:
            phase: tuple[Register, ...] = (CURRENTS[0], VOLTAGES[0])
        else:
            phase = CURRENTS + VOLTAGES
        regs = POWERS + phase
        return regs + self._energies if kind is ListKind.ENERGY else regs

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """From the type number, else from the phases present."""
        return kamstrup_topology(meter_type, values)

    def default_meter_type(self, topology: Topology) -> str | None:
        """Return a plausible type number of the market."""
        return self._defaults[topology]

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Interleaved structure, nulls for the phases a 1-phase meter lacks."""
        meter_type = ident.meter_type or self._defaults[shape.topology]
        body: list[axdr.Encodable] = [
            LIST_ID,
            METER_ID_OBIS,
            ident.need_id(LIST_ID),
            METER_TYPE_OBIS,
            meter_type,
        ]
        for reg in POWERS + CURRENTS + VOLTAGES:
            if shape.topology is Topology.ONE_PHASE and reg in _ABSENT_ON_1P:
                body += [None, None]
            else:
                body += [reg.code, reg.typed(reading_values)]
        if shape.kind is ListKind.ENERGY:
            body += [CLOCK_OBIS, self.clock.encode(ident.meter_time)]
            for reg in self._energies:
                body += [reg.code, reg.typed(reading_values)]
        apdu = _wire.encode_data_notification(
            tuple(body),
            invoke_id=0,
            timestamp=self.clock.encode(ident.meter_time),
            datetime_style="axdr",
        )
        return _wire.build_hdlc_frame(_wire.LLC + apdu, dest=b"\x2b", src=b"\x21", control=0x13)


DK_ENERGY_DECIMALS: Final = 3  # Wh
_DK_PF: Final = tuple(
    _r(name, c, 7, _U16, 2)
    for name, c in (
        ("power_factor_l1", 33),
        ("power_factor_l2", 53),
        ("power_factor_l3", 73),
    )
)
_DK_TOTAL_PF: Final = _r("power_factor", 13, 7, _U16, 2)
_DK_PHASE_IMPORT: Final = tuple(
    _r(f"active_power_import_l{n}", c, 7, _U32, 0) for n, c in ((1, 21), (2, 41), (3, 61))
)
_DK_PHASE_EXPORT: Final = tuple(
    _r(f"active_power_export_l{n}", c, 7, _U32, 0) for n, c in ((1, 22), (2, 42), (3, 62))
)
_DK_PHASE_ENERGY_EXPORT: Final = tuple(
    _r(f"active_energy_export_l{n}", c, 8, _U32, DK_ENERGY_DECIMALS)
    for n, c in ((1, 22), (2, 42), (3, 62))
)
_DK_PHASE_ENERGY_IMPORT: Final = tuple(
    _r(f"active_energy_import_l{n}", c, 8, _U32, DK_ENERGY_DECIMALS)
    for n, c in ((1, 21), (2, 41), (3, 61))
)


class KamstrupDk(Spec):
    """Danish "DLMS push 1": 1 + 32 pairs (3-phase, ``02 41``) or 1 + 18 (1-phase, ``02 25``).

    Energies Wh, current 0.01 A, voltage 1 V, power factor 0.01, and per-phase
    energies (``active_energy_import_l1`` …, see ``scaling.EXTRA_UNITS``).
    """

    kinds = (ListKind.ENERGY,)
    topologies = (Topology.ONE_PHASE, Topology.FOUR_WIRE)
    list_version = LIST_ID
    clock = CLOCK
    _energies: Final = _energies(DK_ENERGY_DECIMALS)

    def _layout(self, topology: Topology) -> tuple[tuple[Register, ...], tuple[Register, ...]]:
        """Return the registers before and after the clock, in wire order."""
        n = 1 if topology is Topology.ONE_PHASE else 3
        after = (
            VOLTAGES[:n]
            + CURRENTS[:n]
            + _DK_PHASE_IMPORT[:n]
            + _DK_PF[:n]
            + (_DK_TOTAL_PF,)
            + _DK_PHASE_EXPORT[:n]
            + _DK_PHASE_ENERGY_EXPORT[:n]
            + _DK_PHASE_ENERGY_IMPORT[:n]
        )
        return self._energies + POWERS, after

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Return every register of the list, in wire order."""
        before, after = self._layout(topology)
        return before + after

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """1-phase when L2/L3 are absent, otherwise the 3-phase list."""
        if topology_from_values(values) is Topology.ONE_PHASE:
            return Topology.ONE_PHASE
        return Topology.FOUR_WIRE

    def identity(self, ident: Ident, shape: Shape) -> Ident:
        """Meter id but no model string in the list."""
        return Ident(self.manufacturer, ident.meter_id, None, None)

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Plain push list, ciphered, in HDLC 41 / 03 / 13."""
        meter_id = ident.need_id("the Kamstrup DK list")
        if not meter_id.isdigit() or int(meter_id) > 0xFFFF_FFFF:
            raise EncodeError("the Kamstrup DK meter number is a uint32")
        before, after = self._layout(shape.topology)
        body: list[axdr.Encodable] = [LIST_ID]
        for reg in before[:4]:
            body += [reg.code, reg.typed(reading_values)]
        body += [METER_NUMBER_OBIS, axdr.Typed(_U32, int(meter_id))]
        for reg in before[4:]:
            body += [reg.code, reg.typed(reading_values)]
        body += [CLOCK_OBIS, self.clock.encode(ident.meter_time)]
        for reg in after:
            body += [reg.code, reg.typed(reading_values)]
        stamp = self.clock.encode(ident.meter_time)
        apdu = _wire.encode_data_notification(
            tuple(body), invoke_id=0, timestamp=stamp, datetime_style="axdr"
        )
        key, title = cipher_keys(keys, b"KAME", meter_id)
        cipher = _wire.encrypt_apdu(
            apdu,
            key=key,
            auth_key=keys.auth_key,
            system_title=title,
            frame_counter=keys.frame_counter,
            security_control=0x30,
        )
        return _wire.build_hdlc_frame(_wire.LLC + cipher, dest=b"\x41", src=b"\x03", control=0x13)
