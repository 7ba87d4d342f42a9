"""The one reading model every layout produces and every consumer reads.

Values use fixed canonical names and units so that nothing downstream needs to
know which meter, list or protocol a number came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Final


class Protocol(StrEnum):
    """How the message reached us on the wire."""

    HDLC = "hdlc"
    MBUS = "mbus"
    P1 = "p1"
    APDU = "apdu"  # bare DLMS APDU as some bridges forward it


class ListKind(IntEnum):
    """Which push list a reading corresponds to (derived from its values)."""

    POWER = 1  # list 1: active power only
    STATUS = 2  # list 2: power, current, voltage
    ENERGY = 3  # list 3 / hourly list: also cumulative energy registers


# Canonical value names and their units.
ACTIVE_POWER_IMPORT: Final = "active_power_import"
ACTIVE_POWER_EXPORT: Final = "active_power_export"
REACTIVE_POWER_IMPORT: Final = "reactive_power_import"
REACTIVE_POWER_EXPORT: Final = "reactive_power_export"
ACTIVE_ENERGY_IMPORT: Final = "active_energy_import"
ACTIVE_ENERGY_EXPORT: Final = "active_energy_export"
REACTIVE_ENERGY_IMPORT: Final = "reactive_energy_import"
REACTIVE_ENERGY_EXPORT: Final = "reactive_energy_export"
POWER_FACTOR: Final = "power_factor"

PHASES: Final = ("l1", "l2", "l3")


def _build_units() -> dict[str, str]:
    units: dict[str, str] = {
        ACTIVE_POWER_IMPORT: "W",
        ACTIVE_POWER_EXPORT: "W",
        REACTIVE_POWER_IMPORT: "var",
        REACTIVE_POWER_EXPORT: "var",
        POWER_FACTOR: "",
        ACTIVE_ENERGY_IMPORT: "kWh",
        ACTIVE_ENERGY_EXPORT: "kWh",
        REACTIVE_ENERGY_IMPORT: "kvarh",
        REACTIVE_ENERGY_EXPORT: "kvarh",
    }
    for phase in PHASES:
        units[f"active_power_import_{phase}"] = "W"
        units[f"active_power_export_{phase}"] = "W"
        units[f"reactive_power_import_{phase}"] = "var"
        units[f"reactive_power_export_{phase}"] = "var"
        units[f"current_{phase}"] = "A"
        units[f"voltage_{phase}"] = "V"
        units[f"power_factor_{phase}"] = ""
        units[f"active_energy_import_{phase}"] = "kWh"
        units[f"active_energy_export_{phase}"] = "kWh"
    return units


UNITS: Final[MappingProxyType[str, str]] = MappingProxyType(_build_units())
"""Canonical value name -> unit. Layouts may add other names (see CONTRIBUTING)."""

ENERGY_NAMES: Final = frozenset(
    {ACTIVE_ENERGY_IMPORT, ACTIVE_ENERGY_EXPORT, REACTIVE_ENERGY_IMPORT, REACTIVE_ENERGY_EXPORT}
)
"""The meter's total energy registers (what makes a reading list 3)."""
PHASE_ENERGY_NAMES: Final = frozenset(
    f"active_energy_{direction}_{phase}" for direction in ("import", "export") for phase in PHASES
)
"""Per-phase energy registers (e.g. Kamstrup DK): cumulative like the totals, never accounted."""
REGISTER_NAMES: Final = ENERGY_NAMES | PHASE_ENERGY_NAMES
"""Every cumulative register: kept across a silence and never averaged."""
_POWER_ONLY: Final = frozenset({ACTIVE_POWER_IMPORT, ACTIVE_POWER_EXPORT})


@dataclass(frozen=True, slots=True)
class Reading:
    """One decoded message from a meter.

    ``meter_time`` is timezone-aware when the meter states its UTC offset; when
    it does not (most Nordic meters), it is a *naive* datetime holding the
    meter's local wall-clock time (see ``meter_time_is_local``). It is ``None``
    when the message carries no clock or the meter flags its clock invalid.

    ``values`` holds only what the meter sent, already scaled to the canonical
    units in ``UNITS``; a value the meter did not send is absent, never 0.
    """

    protocol: Protocol
    manufacturer: str | None
    meter_id: str | None
    meter_type: str | None
    list_version: str | None
    meter_time: datetime | None
    values: MappingProxyType[str, float]
    frame: bytes = field(default=b"", compare=False, repr=False)
    """The raw bytes of the frame(s) this reading came from (for diagnostics)."""

    @property
    def meter_time_is_local(self) -> bool:
        """True when ``meter_time`` is local wall-clock time without an offset."""
        return self.meter_time is not None and self.meter_time.tzinfo is None

    @property
    def list_kind(self) -> ListKind:
        """List 1, 2 or 3, judged from which values are present."""
        keys = self.values.keys()
        if not ENERGY_NAMES.isdisjoint(keys):
            return ListKind.ENERGY
        if keys <= _POWER_ONLY:
            return ListKind.POWER
        return ListKind.STATUS


def make_values(values: dict[str, float]) -> MappingProxyType[str, float]:
    """Freeze a values dict for a Reading."""
    return MappingProxyType(values)
