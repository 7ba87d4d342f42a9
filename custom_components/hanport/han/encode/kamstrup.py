"""Kamstrup ``Kamstrup_V0001``: NO/SE 10 s and hourly lists, and the encrypted DK push list.

Flat structure: ``0A 0E "Kamstrup_V0001"`` then ``09 06 <OBIS>`` / value pairs
(OBIS B=1, no scalers). NO/SE: HDLC 2B / 21 / 13, ``0C`` APDU clock; 10 s list
``02 19``, hourly ``02 23``; a 1-phase meter keeps the count and sends each
absent pair as two nulls. DK: HDLC 41 / 03 / 13, GCM-ciphered (SC 0x30).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..cosem import obis
from ..dlms import axdr
from ..reading import ListKind
from ..scaling import Scheme
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
    encrypt,
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


def _pairs(
    names: str, cs: tuple[int, ...], d: int, tag: int, scheme: Scheme
) -> tuple[Register, ...]:
    """Return ``names.format(n)`` at OBIS 1-1:c.d.0 for each phase ``n`` (1-based)."""
    return tuple(
        implicit(names.format(n), c, d, tag, scheme, b=1) for n, c in enumerate(cs, start=1)
    )


@dataclass(frozen=True, slots=True)
class Registers:
    """Every Kamstrup register at one market's implicit resolution (``scaling.Scheme``)."""

    powers: tuple[Register, ...]
    currents: tuple[Register, ...]
    voltages: tuple[Register, ...]
    energies: tuple[Register, ...]
    phase_import: tuple[Register, ...]  # DK list only, from here on
    phase_export: tuple[Register, ...]
    power_factors: tuple[Register, ...]
    power_factor: Register
    phase_energy_import: tuple[Register, ...]
    phase_energy_export: tuple[Register, ...]

    @classmethod
    def of(cls, scheme: Scheme) -> Registers:
        """Return the registers with ``scheme``'s resolutions."""
        powers = tuple(
            implicit(name, c, 7, _U32, scheme, b=1)
            for c, name in enumerate(
                (
                    "active_power_import",
                    "active_power_export",
                    "reactive_power_import",
                    "reactive_power_export",
                ),
                start=1,
            )
        )
        energies = tuple(
            implicit(reg.name.replace("power", "energy"), reg.code[2], 8, _U32, scheme, b=1)
            for reg in powers
        )
        return cls(
            powers=powers,
            currents=_pairs("current_l{}", (31, 51, 71), 7, _U32, scheme),
            voltages=_pairs("voltage_l{}", (32, 52, 72), 7, _U16, scheme),
            energies=energies,
            phase_import=_pairs("active_power_import_l{}", (21, 41, 61), 7, _U32, scheme),
            phase_export=_pairs("active_power_export_l{}", (22, 42, 62), 7, _U32, scheme),
            power_factors=_pairs("power_factor_l{}", (33, 53, 73), 7, _U16, scheme),
            power_factor=implicit("power_factor", 13, 7, _U16, scheme, b=1),
            phase_energy_import=_pairs("active_energy_import_l{}", (21, 41, 61), 8, _U32, scheme),
            phase_energy_export=_pairs("active_energy_export_l{}", (22, 42, 62), 8, _U32, scheme),
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

    manufacturer = "Kamstrup"

    kinds = (ListKind.STATUS, ListKind.ENERGY)
    list_version = LIST_ID
    clock = CLOCK

    def __init__(self, scheme: Scheme, defaults: Mapping[Topology, str]) -> None:
        """``scheme``: the market's resolution (energy 10 Wh in NO, Wh in SE)."""
        self._regs = Registers.of(scheme)
        self._defaults = defaults

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Powers, currents, voltages (1-phase: L1 only); energies in the hourly list."""
        regs = self._regs
        if topology is Topology.ONE_PHASE:
            phase: tuple[Register, ...] = (regs.currents[0], regs.voltages[0])
        else:
            phase = regs.currents + regs.voltages
        listed = regs.powers + phase
        return listed + regs.energies if kind is ListKind.ENERGY else listed

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
        regs = self._regs
        absent = regs.currents[1:] + regs.voltages[1:]  # null pairs on 1-phase meters
        for reg in regs.powers + regs.currents + regs.voltages:
            if shape.topology is Topology.ONE_PHASE and reg in absent:
                body += [None, None]
            else:
                body += [reg.code, reg.typed(reading_values)]
        if shape.kind is ListKind.ENERGY:
            body += [CLOCK_OBIS, self.clock.encode(ident.meter_time)]
            for reg in regs.energies:
                body += [reg.code, reg.typed(reading_values)]
        apdu = _wire.encode_data_notification(
            tuple(body),
            invoke_id=0,
            timestamp=self.clock.encode(ident.meter_time),
            datetime_style="axdr",
        )
        return _wire.build_hdlc_frame(_wire.LLC + apdu, dest=b"\x2b", src=b"\x21", control=0x13)


class KamstrupDk(Spec):
    """Danish "DLMS push 1": 1 + 32 pairs (3-phase, ``02 41``) or 1 + 18 (1-phase, ``02 25``).

    Energies Wh, current 0.01 A, voltage 1 V, power factor 0.01, and per-phase
    energies (``active_energy_import_l1`` …, see ``reading.PHASE_ENERGY_NAMES``).
    """

    manufacturer = "Kamstrup"

    kinds = (ListKind.ENERGY,)
    topologies = (Topology.ONE_PHASE, Topology.FOUR_WIRE)
    list_version = LIST_ID
    clock = CLOCK
    _regs: Final = Registers.of(Scheme.KAMSTRUP_DK)

    def _layout(self, topology: Topology) -> tuple[tuple[Register, ...], tuple[Register, ...]]:
        """Return the registers before and after the clock, in wire order."""
        n = 1 if topology is Topology.ONE_PHASE else 3
        regs = self._regs
        after = (
            regs.voltages[:n]
            + regs.currents[:n]
            + regs.phase_import[:n]
            + regs.power_factors[:n]
            + (regs.power_factor,)
            + regs.phase_export[:n]
            + regs.phase_energy_export[:n]
            + regs.phase_energy_import[:n]
        )
        return regs.energies + regs.powers, after

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
        cipher = encrypt(apdu, keys, b"KAME", meter_id)
        return _wire.build_hdlc_frame(_wire.LLC + cipher, dest=b"\x41", src=b"\x03", control=0x13)
