"""P1 ASCII telegrams (Swedish field set; SE, DK, FI and NO markets), CRC-16/ARC.

Energies kWh/kvarh with 3 decimals, powers kW/kvar with 3 decimals (1 W),
voltage and current with 1 decimal. Phase currents are unsigned on the wire;
a decoder derives the sign from the per-phase import/export powers.

The market decides the default meter (its ident) and the clock (SE/DK meters
keep UTC+1 all year); the maker decides the line order, the reactive unit's
spelling and the summer-time flag, as the captured telegrams show:
/ELL5 and /KAM5 list 21,41,61,22,… and /LGF5 (L&G E360) 21,22,41,42,…;
/ELL5 writes "kvar", /KAM5 and /LGF5 "kVAr"; only /KAM5 sends S in summer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Final

from ..dlms import axdr
from ..reading import ListKind, Protocol
from . import _wire
from ._common import (
    EncodeError,
    Ident,
    Keys,
    Register,
    Shape,
    Spec,
    Topology,
    eu_summer_time,
    fixed,
    to_raw,
    topology_from_values,
)

_U32: Final = axdr.UINT32


def _reg(name: str, c: int, d: int, decimals: int) -> Register:
    return fixed(name, c, d, _U32, decimals)


ENERGIES: Final = (
    _reg("active_energy_import", 1, 8, 3),
    _reg("active_energy_export", 2, 8, 3),
    _reg("reactive_energy_import", 3, 8, 3),
    _reg("reactive_energy_export", 4, 8, 3),
)
POWERS: Final = (
    _reg("active_power_import", 1, 7, 0),
    _reg("active_power_export", 2, 7, 0),
    _reg("reactive_power_import", 3, 7, 0),
    _reg("reactive_power_export", 4, 7, 0),
)
_KINDS: Final = (
    ("active_power_import", 21),
    ("active_power_export", 22),
    ("reactive_power_import", 23),
    ("reactive_power_export", 24),
)
VOLTAGES: Final = tuple(_reg(f"voltage_l{n}", 12 + 20 * n, 7, 1) for n in (1, 2, 3))
CURRENTS: Final = tuple(_reg(f"current_l{n}", 11 + 20 * n, 7, 1) for n in (1, 2, 3))


def _phase_power(kind: int, phase: int) -> Register:
    name, c = _KINDS[kind]
    return _reg(f"{name}_l{phase}", c + 20 * (phase - 1), 7, 0)


@dataclass(frozen=True, slots=True)
class _Country:
    """One market's default meter and clock."""

    ident: str  # the ident when the reading names no maker ...
    maker: str  # ... and the maker and model a decoder reads from it
    model: str | None
    zone: tzinfo | None  # the fixed offset the meters keep all year; None: local wall clock


@dataclass(frozen=True, slots=True)
class _Style:
    """How one maker writes its telegram."""

    flag: str  # ident up to the model: FLAG ID, baud character, separator
    by_phase_first: bool = False  # 21,22,41,42,… instead of 21,41,61,22,…
    var_unit: str = "kvar"
    summer_flag: bool = False  # S in summer time (else W all year)


_NORMAL_TIME: Final = timezone(timedelta(hours=1))
_COUNTRIES: Final = {
    "SE": _Country("ELL5\\253833635_A", "ELL", "53833635_A", _NORMAL_TIME),
    "DK": _Country("LGF5E360", "Landis+Gyr", "E360", _NORMAL_TIME),
    "FI": _Country("ADN9 6534", "Aidon", "6534", None),
    "NO": _Country("KAM5", "Kamstrup", None, None),
}
STYLES: Final = {
    "Aidon": _Style("ADN9 "),
    "Kamstrup": _Style("KAM5", var_unit="kVAr", summer_flag=True),
    "Landis+Gyr": _Style("LGF5", by_phase_first=True, var_unit="kVAr"),
    "Kaifa": _Style("KFM5"),
    "Sagemcom": _Style("SAG5"),
    "Iskraemeco": _Style("ISK5"),
    "ELL": _Style("ELL5\\2"),  # the Swedish /ELL5 meter (maker unidentified; escape \\2)
}
"""Maker (as a decoder names it) -> how it writes its telegram."""


def _fixed(raw: int, decimals: int, width: int) -> str:
    """``raw / 10**decimals`` as zero-padded fixed point, exactly (no float formatting)."""
    whole, frac = divmod(abs(raw), 10**decimals)
    return f"{whole:0{width}d}.{frac:0{decimals}d}"


class P1(Spec):
    """One telegram every 10 s with everything; 1-phase meters send the L1 lines only."""

    protocol = Protocol.P1
    kinds = (ListKind.ENERGY,)
    topologies = (Topology.ONE_PHASE, Topology.FOUR_WIRE)

    def __init__(self, country: str) -> None:
        """``country``: SE, DK, FI or NO."""
        self.country = _COUNTRIES[country]

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Energies, powers, per-phase powers, voltages, currents (the market's default order)."""
        return self._ordered(STYLES[self.country.maker], topology)

    @staticmethod
    def _ordered(style: _Style, topology: Topology) -> tuple[Register, ...]:
        phases = (1,) if topology is Topology.ONE_PHASE else (1, 2, 3)
        if style.by_phase_first:
            per_phase = tuple(
                _phase_power(k, p) for pair in ((0, 1), (2, 3)) for p in phases for k in pair
            )
        else:
            per_phase = tuple(_phase_power(k, p) for k in range(4) for p in phases)
        n = len(phases)
        return ENERGIES + POWERS + per_phase + VOLTAGES[:n] + CURRENTS[:n]

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """1-phase when no L3 values are present, else three-phase (IT sends all lines too)."""
        if topology_from_values(values) is Topology.ONE_PHASE:
            return Topology.ONE_PHASE
        return Topology.FOUR_WIRE

    def style(self, ident: Ident) -> tuple[str, _Style]:
        """Return the ident text and the writing style of the reading's maker."""
        if ident.manufacturer is None:
            return self.country.ident, STYLES[self.country.maker]
        style = STYLES.get(ident.manufacturer)
        if style is None:
            raise EncodeError(f"no P1 ident flag for {ident.manufacturer!r}")
        return style.flag + (ident.meter_type or ""), style

    def wall_clock(self, when: datetime) -> datetime:
        """Return the meter's wall-clock time for ``when`` (SE/DK meters keep UTC+1)."""
        if when.tzinfo is not None and self.country.zone is not None:
            when = when.astimezone(self.country.zone)
        return when.replace(tzinfo=None, microsecond=0)

    @staticmethod
    def line(reg: Register, values: Mapping[str, float], style: _Style) -> str:
        """Return one ``OBIS(value*unit)`` line."""
        raw = abs(to_raw(reg.name, values[reg.name], reg.decimals, axdr.INT32))
        code = f"1-0:{reg.code[2]}.{reg.code[3]}.{reg.code[4]}"
        var = style.var_unit
        if reg.code[3] == 8:
            unit = "kWh" if reg.code[2] < 3 else f"{var}h"
            return f"{code}({_fixed(raw, 3, 8)}*{unit})"
        if reg.name.startswith(("active_power", "reactive_power")):
            unit = "kW" if reg.name.startswith("active") else var
            return f"{code}({_fixed(raw, 3, 4)}*{unit})"
        unit = "V" if reg.name.startswith("voltage") else "A"
        return f"{code}({_fixed(raw, 1, 3)}*{unit})"

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Build the telegram with its CRC."""
        text, style = self.style(ident)
        lines: list[str] = []
        if ident.meter_time is not None:
            when = self.wall_clock(ident.meter_time)
            season = "S" if style.summer_flag and eu_summer_time(when) else "W"
            lines.append(f"0-0:1.0.0({when:%y%m%d%H%M%S}{season})")
        registers = self._ordered(style, shape.topology)
        lines += [self.line(reg, reading_values, style) for reg in registers]
        return _wire.build_p1_telegram(text, lines)

    def identity(self, ident: Ident, shape: Shape) -> Ident:
        """Return maker and model as the ident line states them (no meter id is sent)."""
        if ident.manufacturer is None:
            return Ident(self.country.maker, None, self.country.model, None)
        return Ident(ident.manufacturer, None, (ident.meter_type or "").strip(" :") or None, None)

    def readback_time(self, when: datetime | None) -> datetime | None:
        """Return the wall clock, with the market's fixed offset where it has one."""
        if when is None:
            return None
        return self.wall_clock(when).replace(tzinfo=self.country.zone)

    def readback(self, values: dict[str, float]) -> dict[str, float]:
        """Currents come back unsigned, negative where the phase exports more than it imports."""
        for phase in (1, 2, 3):
            name = f"current_l{phase}"
            if name in values:
                export = values.get(f"active_power_export_l{phase}", 0.0)
                imported = values.get(f"active_power_import_l{phase}", 0.0)
                values[name] = -abs(values[name]) if export > imported else abs(values[name])
        return values
