"""The one table of implicit vendor/country scaling, and exact decimal scaling.

Meters that send bare numbers (Kaifa, Kamstrup, the Austrian L&G E450) leave the
resolution implicit; it lives in ``IMPLICIT`` below and nowhere else, so a
Swedish-vs-Norwegian mistake can only be made (and fixed) in one place. Meters
that send a scaler-unit (Aidon, Austrian OBIS arrays) never use this table.

An exponent ``e`` means ``canonical value = raw * 10**e`` in the canonical unit
of ``reading.UNITS`` (W, var, A, V, kWh, kvarh, power factor 0..1).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from . import reading as r


class Quantity(StrEnum):
    """What a canonical value measures (decides its implicit resolution)."""

    POWER = "power"  # W and var
    ENERGY = "energy"  # kWh and kvarh
    CURRENT = "current"
    VOLTAGE = "voltage"
    POWER_FACTOR = "power_factor"
    FREQUENCY = "frequency"


class Scheme(StrEnum):
    """An implicit-resolution scheme: one vendor layout in one market."""

    KAIFA = "kaifa"  # KFM_001 positional and the Swedish OBIS variant
    KAMSTRUP_NO = "kamstrup_no"  # HAN-NVE lists as configured for Norway
    KAMSTRUP_SE = "kamstrup_se"  # same lists, Swedish firmware (energy in Wh)
    KAMSTRUP_DK = "kamstrup_dk"  # Danish push list (decrypted)
    LANDIS_GYR_E450 = "landis_gyr_e450"  # Austrian proprietary 14-item structure


_P, _E, _I, _U, _PF = (
    Quantity.POWER,
    Quantity.ENERGY,
    Quantity.CURRENT,
    Quantity.VOLTAGE,
    Quantity.POWER_FACTOR,
)

IMPLICIT: Final[MappingProxyType[Scheme, MappingProxyType[Quantity, int]]] = MappingProxyType(
    {
        # KFM_001: W/var, current in mA (the vendor doc's "0.1 A" is wrong), 0.1 V, Wh.
        Scheme.KAIFA: MappingProxyType({_P: 0, _I: -3, _U: -1, _E: -3}),
        # KAM-NVE: W/var, 0.01 A, 1 V, energy in 10 Wh in Norway ...
        Scheme.KAMSTRUP_NO: MappingProxyType({_P: 0, _I: -2, _U: 0, _E: -2, _PF: -2}),
        # ... but in Wh on Swedish meters (AMSR #239: 10x too high otherwise).
        Scheme.KAMSTRUP_SE: MappingProxyType({_P: 0, _I: -2, _U: 0, _E: -3, _PF: -2}),
        # KAM-DK push list: Wh energies, 0.01 A, 1 V, power factor in 0.01.
        Scheme.KAMSTRUP_DK: MappingProxyType({_P: 0, _I: -2, _U: 0, _E: -3, _PF: -2}),
        # AMSR gh501 breakdown: U in V, I in 0.01 A, P in W, energy in Wh.
        Scheme.LANDIS_GYR_E450: MappingProxyType({_P: 0, _I: -2, _U: 0, _E: -3}),
    }
)
"""Scheme -> quantity -> decimal exponent to the canonical unit."""

HIGH_RESOLUTION: Final[MappingProxyType[Scheme, MappingProxyType[Quantity, tuple[int, int]]]] = (
    MappingProxyType(
        {
            scheme: MappingProxyType({_U: (1000, -2)})
            for scheme in (Scheme.KAMSTRUP_NO, Scheme.KAMSTRUP_SE, Scheme.KAMSTRUP_DK)
        }
    )
)
"""Scheme -> quantity -> (raw threshold, exponent) for firmware that sends finer resolution.

Kamstrup documents voltage in whole volts, but a 2025 Danish firmware sends
0.01 V (raw 22199 for 221.99 V; AMSR ``KamstrupOmnipower_Bornholm_DK_5digitVoltage``).
A mains voltage in whole volts never reaches 1000, one in 0.01 V never falls
below it, so the raw magnitude tells the two apart without guessing.
"""

KAMSTRUP_MARKETS: Final[MappingProxyType[str, Scheme]] = MappingProxyType(
    {"NO": Scheme.KAMSTRUP_NO, "SE": Scheme.KAMSTRUP_SE, "DK": Scheme.KAMSTRUP_DK}
)
"""Country (ISO 3166 alpha-2) -> Kamstrup scheme, for the markets whose resolution is known."""

KAMSTRUP_DEFAULT: Final = Scheme.KAMSTRUP_NO
"""HAN-NVE is the Norwegian specification: its resolution applies when nothing says otherwise."""


# ---------------------------------------------------------------- canonical names -> quantity

EXTRA_UNITS: Final[MappingProxyType[str, str]] = MappingProxyType({"frequency": "Hz"})
"""Value names beyond ``reading.UNITS`` that some layouts publish, with their units."""

ALL_UNITS: Final[MappingProxyType[str, str]] = MappingProxyType({**r.UNITS, **EXTRA_UNITS})
"""Every value name a layout may publish -> its unit."""


def quantity_of(name: str) -> Quantity:
    """Return the quantity a canonical value name measures."""
    return _QUANTITY_OF_NAME[name]


def _quantity_from_name(name: str) -> Quantity:
    if name.startswith(("active_energy", "reactive_energy")):
        return Quantity.ENERGY
    if name.startswith(("active_power", "reactive_power")):
        return Quantity.POWER
    if name.startswith("current"):
        return Quantity.CURRENT
    if name.startswith("voltage"):
        return Quantity.VOLTAGE
    if name.startswith("power_factor"):
        return Quantity.POWER_FACTOR
    return Quantity.FREQUENCY


_QUANTITY_OF_NAME: Final[dict[str, Quantity]] = {
    name: _quantity_from_name(name) for name in ALL_UNITS
}


def _build_exponents() -> dict[Scheme, MappingProxyType[str, int]]:
    out: dict[Scheme, MappingProxyType[str, int]] = {}
    for scheme, by_quantity in IMPLICIT.items():
        out[scheme] = MappingProxyType(
            {
                name: by_quantity[quantity]
                for name, quantity in _QUANTITY_OF_NAME.items()
                if quantity in by_quantity
            }
        )
    return out


_EXPONENTS: Final = _build_exponents()


def exponents(scheme: Scheme) -> MappingProxyType[str, int]:
    """Canonical value name -> exponent for ``scheme`` (names it cannot scale are absent)."""
    return _EXPONENTS[scheme]


type Rule = tuple[int, int | None, int]
"""(exponent, raw threshold or None, exponent at or above the threshold)."""


def _build_plans() -> dict[Scheme, dict[str, Rule]]:
    plans: dict[Scheme, dict[str, Rule]] = {}
    for scheme, table in _EXPONENTS.items():
        finer = HIGH_RESOLUTION.get(scheme, MappingProxyType({}))
        plan: dict[str, Rule] = {}
        for name, exponent in table.items():
            rule = finer.get(_QUANTITY_OF_NAME[name])
            plan[name] = (exponent, None, exponent) if rule is None else (exponent, *rule)
        plans[scheme] = plan
    return plans


_PLANS: Final = _build_plans()


def implicit_plan(scheme: Scheme) -> Mapping[str, Rule]:
    """Return name -> rule for ``scheme``: the whole table resolved once, for the hot path.

    A plain dict behind a read-only type (a mappingproxy costs a lookup per value).
    """
    return _PLANS[scheme]


def implicit_exponent(scheme: Scheme, name: str, raw: int | float) -> int | None:
    """Return the exponent that turns ``raw`` for ``name`` into canonical units, or ``None``."""
    rule = _PLANS[scheme].get(name)
    if rule is None:
        return None
    exponent, threshold, finer = rule
    return finer if threshold is not None and abs(raw) >= threshold else exponent


# ---------------------------------------------------------------- exact decimal scaling

_POW10: Final[tuple[int, ...]] = tuple(10**i for i in range(40))
POW10: Final = _POW10
"""``10**i`` for i < 40: what ``scale`` multiplies or divides by (hot loops inline it)."""
ENERGY_UNIT_EXPONENT: Final = -3
"""Wh -> kWh, varh -> kvarh."""


def scale(raw: int | float, exponent: int) -> float:
    """``raw * 10**exponent`` as the float nearest the decimal result.

    One multiplication or division by an exact power of ten, so 2343 with
    exponent -1 is exactly ``234.3`` (not ``234.30000000000001``).
    """
    if exponent >= 0:
        return float(raw * _POW10[exponent])
    return raw / _POW10[-exponent]
