"""Aidon (NO ``AIDON_V0001``, SE 27-item) and the Aidon-like L&G E350 ``EMBRIQ_V1_1``.

Body: an array of structures, each ``02 03 <OBIS> <value> 02 02 0F <scaler> 16 <unit>``
for a register, ``02 02 <OBIS> 0A <ascii>`` for an identity string and
``02 02 <OBIS> 09 0C <12>`` for the list-3 clock. HDLC 41 / 08 83 / 13, no APDU clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..cosem import Unit, obis
from ..dlms import axdr
from ..reading import ListKind
from . import _wire
from ._common import (
    CLOCK_OBIS,
    ClockStyle,
    EncodeError,
    Ident,
    Keys,
    Register,
    Shape,
    Spec,
    Topology,
    register,
    topology_from_values,
)

_W, _VAR, _A, _V, _WH, _VARH = (
    Unit.WATT,
    Unit.VAR,
    Unit.AMPERE,
    Unit.VOLT,
    Unit.WATT_HOUR,
    Unit.VAR_HOUR,
)
_U32, _I16, _U16 = axdr.UINT32, axdr.INT16, axdr.UINT16

LIST_ID_OBIS: Final = obis(1, 1, 0, 2, 129)
METER_ID_OBIS: Final = obis(0, 0, 96, 1, 0)
METER_TYPE_OBIS: Final = obis(0, 0, 96, 1, 7)

POWERS: Final = (
    register("active_power_import", 1, 7, _U32, (0, _W)),
    register("active_power_export", 2, 7, _U32, (0, _W)),
    register("reactive_power_import", 3, 7, _U32, (0, _VAR)),
    register("reactive_power_export", 4, 7, _U32, (0, _VAR)),
)


def _currents(scaler: int) -> tuple[Register, ...]:
    return tuple(
        register(f"current_l{n}", c, 7, _I16, (scaler, _A)) for n, c in ((1, 31), (2, 51), (3, 71))
    )


VOLTAGES: Final = tuple(
    register(f"voltage_l{n}", c, 7, _U16, (-1, _V)) for n, c in ((1, 32), (2, 52), (3, 72))
)


def _energies(scaler: int) -> tuple[Register, ...]:
    return (
        register("active_energy_import", 1, 8, _U32, (scaler, _WH)),
        register("active_energy_export", 2, 8, _U32, (scaler, _WH)),
        register("reactive_energy_import", 3, 8, _U32, (scaler, _VARH)),
        register("reactive_energy_export", 4, 8, _U32, (scaler, _VARH)),
    )


def _register_item(reg: Register, value: axdr.Typed) -> axdr.Encodable:
    return (reg.code, value, reg.scaler_unit())


def _notification_frame(items: list[axdr.Encodable]) -> bytes:
    apdu = _wire.encode_data_notification(items, invoke_id=0x40000000, datetime_style="none")
    return _wire.build_hdlc_frame(_wire.LLC + apdu, dest=b"\x41", src=b"\x08\x83", control=0x13)


_AIDON_CLOCK: Final = ClockStyle(deviation=0, status=0x00, sunday_zero=True)


class AidonNo(Spec):
    """``AIDON_V0001``: list 1 (P+), list 2 (9/12/13 items), list 3 (14/17/18 items)."""

    manufacturer = "Aidon"

    list_version = "AIDON_V0001"
    clock = _AIDON_CLOCK
    _models: Mapping[str, Topology] = {
        "6515": Topology.ONE_PHASE,
        "6525": Topology.THREE_WIRE,
        "6540": Topology.THREE_WIRE,
        "6534": Topology.FOUR_WIRE,
        "6550": Topology.FOUR_WIRE,
    }
    _defaults: Mapping[Topology, str] = {
        Topology.ONE_PHASE: "6515",
        Topology.THREE_WIRE: "6525",
        Topology.FOUR_WIRE: "6534",
    }
    current_scaler = -1
    energy_scaler = 1

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """P+ only; or powers, currents, voltages per wiring; plus energies in list 3."""
        if kind is ListKind.POWER:
            return POWERS[:1]
        currents = _currents(self.current_scaler)
        if topology is Topology.ONE_PHASE:
            phase: tuple[Register, ...] = (currents[0], VOLTAGES[0])
        elif topology is Topology.THREE_WIRE:  # Aidon drops IL2 on IT
            phase = (currents[0], currents[2], *VOLTAGES)
        else:
            phase = (*currents, *VOLTAGES)
        regs = POWERS + phase
        return regs + _energies(self.energy_scaler) if kind is ListKind.ENERGY else regs

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """From the model number (65x5/65x4), else from the phases present."""
        model = self._models.get(meter_type or "")
        return model if model is not None else topology_from_values(values)

    def default_meter_type(self, topology: Topology) -> str | None:
        """6515 / 6525 / 6534."""
        return self._defaults[topology]

    def has_time(self, kind: ListKind) -> bool:
        """Only list 3 carries the clock."""
        return kind is ListKind.ENERGY

    def meter_id_text(self, meter_id: str) -> str:
        """Return the meter id string as sent."""
        return meter_id

    def _slots(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Return every register slot the list sends, in wire order."""
        return self.registers(kind, topology)

    def value(self, reg: Register, values: Mapping[str, float]) -> axdr.Typed:
        """Return one register's typed value."""
        return reg.typed(values)

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Array of OBIS structures in an unciphered HDLC frame."""
        regs = self._slots(shape.kind, shape.topology)
        if shape.kind is ListKind.POWER:
            return _notification_frame([_register_item(regs[0], regs[0].typed(reading_values))])
        meter_type = ident.meter_type or self.default_meter_type(shape.topology) or ""
        items: list[axdr.Encodable] = [
            (LIST_ID_OBIS, self.list_version),
            (METER_ID_OBIS, self.meter_id_text(ident.need_id(str(self.list_version)))),
            (METER_TYPE_OBIS, meter_type),
        ]
        energies = 4 if shape.kind is ListKind.ENERGY else 0
        items += [
            _register_item(reg, self.value(reg, reading_values))
            for reg in regs[: len(regs) - energies]
        ]
        if energies:
            items.append((CLOCK_OBIS, self.clock.encode(ident.meter_time)))
            items += [
                _register_item(reg, self.value(reg, reading_values)) for reg in regs[-energies:]
            ]
        return _notification_frame(items)


class Embriq(AidonNo):
    """L&G E350 ``EMBRIQ_V1_1``: Aidon's shape; current 0.01 A, meter id NUL-padded to 16.

    The captured meter is 3-wire (type ``ZF…``) and sends all 13 list-2 items
    with 0 in the IL2 and UL2 slots it does not measure, so those two are not
    values of the reading. Only lists 1 and 2 are documented by captures;
    list 3 follows Aidon's (clock + four energies, energy scaler +1).
    """

    manufacturer = "Landis+Gyr"

    list_version = "EMBRIQ_V1_1"
    topologies = (Topology.THREE_WIRE,)
    current_scaler = -2
    _unmeasured: Final = ("current_l2", "voltage_l2")

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Return Aidon's registers without the unmeasured IL2/UL2."""
        slots = self._slots(kind, topology)
        return tuple(reg for reg in slots if reg.name not in self._unmeasured)

    def _slots(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Return every register slot of the list, IL2/UL2 included."""
        return AidonNo.registers(self, kind, Topology.FOUR_WIRE)

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """Return 3-wire: the only E350 wiring documented."""
        return Topology.THREE_WIRE

    def default_meter_type(self, topology: Topology) -> str | None:
        """Return the captured E350 type."""
        return "ZFF1"

    def meter_id_text(self, meter_id: str) -> str:
        """Pad the meter id with NUL bytes to 16 characters, as the E350 sends it."""
        if len(meter_id) > 16:
            raise EncodeError("EMBRIQ_V1_1 meter ids have at most 16 characters")
        return meter_id.ljust(16, "\x00")

    def value(self, reg: Register, values: Mapping[str, float]) -> axdr.Typed:
        """Return 0 in the IL2/UL2 slots."""
        if reg.name in self._unmeasured:
            return axdr.Typed(reg.tag, 0)
        return reg.typed(values)


class AidonSe(Spec):
    """Swedish Aidon HDLC list: 27 items, clock first, per-phase powers, energy scaler 0."""

    manufacturer = "Aidon"

    kinds = (ListKind.ENERGY,)
    topologies = (Topology.FOUR_WIRE,)
    clock = ClockStyle(deviation=None, status=0xFF, sunday_zero=True)
    _per_phase: Final = tuple(
        register(f"{kind}_power_{direction}_l{phase}", base + offset, 7, _U32, (0, unit))
        for phase, base in ((1, 21), (2, 41), (3, 61))
        for offset, kind, direction, unit in (
            (0, "active", "import", _W),
            (1, "active", "export", _W),
            (2, "reactive", "import", _VAR),
            (3, "reactive", "export", _VAR),
        )
    )

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Return the 26 registers after the clock."""
        return POWERS + _currents(-1) + VOLTAGES + self._per_phase + _energies(0)

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """Return three-phase: the 27-item list is the only one documented."""
        return Topology.FOUR_WIRE

    def identity(self, ident: Ident, shape: Shape) -> Ident:
        """Return no id or model: the list carries no identity items."""
        return Ident(self.manufacturer, None, None, None)

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Clock item, then the 26 registers; no identity items."""
        items: list[axdr.Encodable] = [(CLOCK_OBIS, self.clock.encode(ident.meter_time))]
        items += [
            _register_item(reg, reg.typed(reading_values))
            for reg in self.registers(shape.kind, shape.topology)
        ]
        return _notification_frame(items)
