"""Kaifa ``KFM_001``: NO positional lists and the SE OBIS/value-pair list.

No scalers anywhere: power W, current mA, voltage 0.1 V, energy Wh. On IT
meters (MA304H3E/MA304T3) UL2 is sent as 0, so it is not a value of the reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..cosem import obis
from ..dlms import axdr
from ..reading import ListKind
from ..scaling import Scheme
from . import _wire
from ._common import (
    CLOCK_OBIS,
    ClockStyle,
    Ident,
    Keys,
    Register,
    Shape,
    Spec,
    Topology,
    implicit,
    topology_from_values,
)

LIST_ID: Final = b"KFM_001"
_KAIFA: Final = Scheme.KAIFA  # mA, 0.1 V, W, Wh
_U32: Final = axdr.UINT32

POWERS: Final = (
    implicit("active_power_import", 1, 7, _U32, _KAIFA),
    implicit("active_power_export", 2, 7, _U32, _KAIFA),
    implicit("reactive_power_import", 3, 7, _U32, _KAIFA),
    implicit("reactive_power_export", 4, 7, _U32, _KAIFA),
)
CURRENTS: Final = tuple(
    implicit(f"current_l{n}", c, 7, _U32, _KAIFA) for n, c in ((1, 31), (2, 51), (3, 71))
)
VOLTAGES: Final = tuple(
    implicit(f"voltage_l{n}", c, 7, _U32, _KAIFA) for n, c in ((1, 32), (2, 52), (3, 72))
)
ENERGIES: Final = (
    implicit("active_energy_import", 1, 8, _U32, _KAIFA),
    implicit("active_energy_export", 2, 8, _U32, _KAIFA),
    implicit("reactive_energy_import", 3, 8, _U32, _KAIFA),
    implicit("reactive_energy_export", 4, 8, _U32, _KAIFA),
)
_ZERO_UL2: Final = VOLTAGES[1]  # sent as 0 on IT meters
CLOCK: Final = ClockStyle(deviation=None, status=0x00)


def _kaifa_topology(meter_type: str | None, values: Mapping[str, float]) -> Topology:
    model = (meter_type or "").upper()
    if model.startswith("MA105"):
        return Topology.ONE_PHASE
    if model.startswith(("MA304H3", "MA304T3")):
        return Topology.THREE_WIRE
    if model.startswith("MA304"):
        return Topology.FOUR_WIRE
    return topology_from_values(values)


def _phase_registers(topology: Topology) -> tuple[Register, ...]:
    """Wire order of the phase values; UL2 on IT is a placeholder sent as 0."""
    if topology is Topology.ONE_PHASE:
        return (CURRENTS[0], VOLTAGES[0])
    return CURRENTS + VOLTAGES


def _raw(reg: Register, values: Mapping[str, float], topology: Topology) -> axdr.Typed:
    if topology is Topology.THREE_WIRE and reg is _ZERO_UL2:
        return axdr.Typed(reg.tag, 0)
    return reg.typed(values)


def _frame(apdu: bytes, src: bytes) -> bytes:
    return _wire.build_hdlc_frame(_wire.LLC + apdu, dest=b"\x01", src=src, control=0x10)


class _Kaifa(Spec):
    """What the Norwegian and Swedish Kaifa lists share."""

    manufacturer = "Kaifa"
    list_version = "KFM_001"
    clock = CLOCK
    _defaults: Mapping[Topology, str] = {
        Topology.ONE_PHASE: "MA105H2E",
        Topology.THREE_WIRE: "MA304H3E",
        Topology.FOUR_WIRE: "MA304H4",
    }

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """P+ only; or powers, currents, voltages (no UL2 on IT); plus energies in list 3."""
        if kind is ListKind.POWER:
            return POWERS[:1]
        phase = tuple(
            reg
            for reg in _phase_registers(topology)
            if not (topology is Topology.THREE_WIRE and reg is _ZERO_UL2)
        )
        regs = POWERS + phase
        return regs + ENERGIES if kind is ListKind.ENERGY else regs

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """MA105 = 1-phase, MA304H3/T3 = IT, other MA304 = TN; else from the values."""
        return _kaifa_topology(meter_type, values)

    def default_meter_type(self, topology: Topology) -> str | None:
        """MA105H2E / MA304H3E / MA304H4."""
        return self._defaults[topology]

    def identity(self, ident: Ident, shape: Shape) -> Ident:
        """Return the identity; list 1 (a one-value structure) is still Kaifa's alone."""
        who = Spec.identity(self, ident, shape)
        return Ident(self.manufacturer, who.meter_id, who.meter_type, None)


class KaifaNo(_Kaifa):
    """Positional structure of 1, 9/13 or 14/18 values; ``09 0C`` APDU clock; 01 / 02 01 / 10."""

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Bare values in the KFM_001 order."""
        if shape.kind is ListKind.POWER:
            body: list[axdr.Encodable] = [POWERS[0].typed(reading_values)]
        else:
            meter_type = ident.meter_type or self._defaults[shape.topology]
            body = [
                LIST_ID,
                ident.need_id("KFM_001").encode("latin-1"),
                meter_type.encode("latin-1"),
            ]
            body += [reg.typed(reading_values) for reg in POWERS]
            body += [
                _raw(reg, reading_values, shape.topology)
                for reg in _phase_registers(shape.topology)
            ]
            if shape.kind is ListKind.ENERGY:
                body.append(self.clock.encode(ident.meter_time))
                body += [reg.typed(reading_values) for reg in ENERGIES]
        apdu = _wire.encode_data_notification(
            tuple(body),
            invoke_id=0x40000000,
            timestamp=self.clock.encode(ident.meter_time),
            datetime_style="tagged",
        )
        return _frame(apdu, b"\x02\x01")


class KaifaSe(_Kaifa):
    """Swedish MA304H4 firmware: OBIS/value pairs, clock at UTC+1; HDLC 01 / 00 01 / 10."""

    kinds = (ListKind.ENERGY,)
    topologies = (Topology.THREE_WIRE, Topology.FOUR_WIRE)
    clock = ClockStyle(deviation=-60, status=0x00)

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Structure of 2 x 18 elements, no APDU clock."""
        meter_type = ident.meter_type or self._defaults[shape.topology]
        body: list[axdr.Encodable] = [
            obis(1, 0, 0, 2, 129),
            LIST_ID,
            obis(0, 0, 96, 1, 0),
            ident.need_id("KFM_001").encode("latin-1"),
            obis(0, 0, 96, 1, 7),
            meter_type.encode("latin-1"),
        ]
        for reg in POWERS + _phase_registers(shape.topology):
            body += [reg.code, _raw(reg, reading_values, shape.topology)]
        body += [CLOCK_OBIS, self.clock.encode(ident.meter_time)]
        for reg in ENERGIES:
            body += [reg.code, reg.typed(reading_values)]
        apdu = _wire.encode_data_notification(tuple(body), invoke_id=0x40000000)
        return _frame(apdu, b"\x00\x01")
