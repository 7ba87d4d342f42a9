"""scaling.py: the one implicit-scaling table, quantities, and exact decimal scaling."""

from __future__ import annotations

import pytest

from custom_components.hanport.han import reading as r
from custom_components.hanport.han import scaling
from custom_components.hanport.han.layouts.obis_array import _QUICK, Collected
from custom_components.hanport.han.scaling import Quantity, Scheme


@pytest.mark.parametrize(
    ("raw", "exponent", "expected"),
    [
        (2343, -1, 234.3),
        (9406459, -2, 94064.59),
        (10494991, -3, 10494.991),
        (1727, 0, 1727.0),
        (5, 3, 5000.0),
        (-76, -1, -7.6),
        (2.5, -1, 0.25),
        (0, -3, 0.0),
    ],
)
def test_scale_is_exact_decimal(raw: float, exponent: int, expected: float) -> None:
    value = scaling.scale(raw, exponent)
    assert value == expected
    assert isinstance(value, float)


@pytest.mark.parametrize(
    ("name", "quantity"),
    [
        (r.ACTIVE_POWER_IMPORT, Quantity.POWER),
        ("reactive_power_export_l3", Quantity.POWER),
        (r.ACTIVE_ENERGY_IMPORT, Quantity.ENERGY),
        ("active_energy_export_l2", Quantity.ENERGY),
        (r.REACTIVE_ENERGY_EXPORT, Quantity.ENERGY),
        ("current_l2", Quantity.CURRENT),
        ("voltage_l3", Quantity.VOLTAGE),
        (r.POWER_FACTOR, Quantity.POWER_FACTOR),
        ("power_factor_l1", Quantity.POWER_FACTOR),
        ("frequency", Quantity.FREQUENCY),
    ],
)
def test_quantity_of(name: str, quantity: Quantity) -> None:
    assert scaling.quantity_of(name) is quantity


def test_every_canonical_name_has_a_quantity() -> None:
    for name in scaling.ALL_UNITS:
        scaling.quantity_of(name)


@pytest.mark.parametrize(
    ("scheme", "name", "raw", "expected"),
    [
        (Scheme.KAIFA, "current_l1", 10250, 10.25),
        (Scheme.KAIFA, "voltage_l2", 2312, 231.2),
        (Scheme.KAIFA, r.ACTIVE_ENERGY_IMPORT, 10494991, 10494.991),
        (Scheme.KAIFA, r.ACTIVE_POWER_IMPORT, 1500, 1500.0),
        (Scheme.KAMSTRUP_NO, r.ACTIVE_ENERGY_IMPORT, 15523251, 155232.51),
        (Scheme.KAMSTRUP_SE, r.ACTIVE_ENERGY_IMPORT, 15523251, 15523.251),
        (Scheme.KAMSTRUP_DK, r.ACTIVE_ENERGY_IMPORT, 1352997, 1352.997),
        (Scheme.KAMSTRUP_DK, "active_energy_import_l1", 1352997, 1352.997),
        (Scheme.KAMSTRUP_NO, "current_l3", 1021, 10.21),
        (Scheme.KAMSTRUP_NO, "voltage_l1", 238, 238.0),
        (Scheme.KAMSTRUP_DK, "voltage_l1", 22199, 221.99),  # 0.01 V firmware
        (Scheme.KAMSTRUP_DK, r.POWER_FACTOR, 94, 0.94),
        (Scheme.LANDIS_GYR_E450, "current_l3", 26, 0.26),
        (Scheme.LANDIS_GYR_E450, "voltage_l3", 236, 236.0),
        (Scheme.LANDIS_GYR_E450, r.ACTIVE_ENERGY_EXPORT, 7619, 7.619),
    ],
)
def test_implicit_table(scheme: Scheme, name: str, raw: int, expected: float) -> None:
    exponent = scaling.implicit_exponent(scheme, name, raw)
    assert exponent is not None
    assert scaling.scale(raw, exponent) == expected


@pytest.mark.parametrize(
    ("scheme", "name"),
    [
        (Scheme.KAIFA, r.POWER_FACTOR),
        (Scheme.KAIFA, "frequency"),
        (Scheme.LANDIS_GYR_E450, r.POWER_FACTOR),
        (Scheme.KAMSTRUP_NO, "frequency"),
    ],
)
def test_unknown_resolution_is_none_never_a_guess(scheme: Scheme, name: str) -> None:
    assert scaling.implicit_exponent(scheme, name, 5) is None
    assert name not in scaling.exponents(scheme)


def test_kamstrup_markets() -> None:
    assert scaling.KAMSTRUP_MARKETS["NO"] is Scheme.KAMSTRUP_NO
    assert scaling.KAMSTRUP_MARKETS["SE"] is Scheme.KAMSTRUP_SE
    assert scaling.KAMSTRUP_MARKETS["DK"] is Scheme.KAMSTRUP_DK
    assert scaling.KAMSTRUP_DEFAULT is Scheme.KAMSTRUP_NO
    # Norway differs from Sweden only in energy resolution.
    no = scaling.IMPLICIT[Scheme.KAMSTRUP_NO]
    se = scaling.IMPLICIT[Scheme.KAMSTRUP_SE]
    assert {q: v for q, v in no.items() if q is not Quantity.ENERGY} == {
        q: v for q, v in se.items() if q is not Quantity.ENERGY
    }
    assert (no[Quantity.ENERGY], se[Quantity.ENERGY]) == (-2, -3)


def test_collector_quick_divisions_are_scale_exactly() -> None:
    """Collected.apply divides integers by a precomputed power of ten: the same float."""
    raws = [0, 1, -1, 7, 2343, -32768, 65535, 2**31 - 1, 2**53 + 1, 2**63 - 1, -(2**64) + 3]
    for scheme in Scheme:
        assert _QUICK[scheme], scheme
        for name in scaling.implicit_plan(scheme):
            for raw in raws:
                collected = Collected()
                collected.pending[name] = raw
                collected.apply(scheme)
                exponent = scaling.implicit_exponent(scheme, name, raw)
                assert exponent is not None
                want = scaling.scale(raw, exponent)
                if name.startswith("power_factor"):
                    want = abs(want)
                    if want > 1.0:
                        assert name not in collected.values
                        continue
                got = collected.values[name]
                assert got == want, (scheme, name, raw)
                assert type(got) is float
