"""Accounting settings and the step-limit parser the options flow uses."""

from __future__ import annotations

import pytest

from custom_components.hanport.accounting.config import (
    DEFAULT_STEP_LIMITS_KW,
    AccountingConfig,
    format_step_limits,
    parse_step_limits,
)

from .meter import OSLO


def test_defaults_are_norwegian() -> None:
    config = AccountingConfig(time_zone=OSLO)
    assert config.capacity_peaks == 3
    assert list(config.step_limits_kw) == [2, 5, 10, 15, 20, 25, 50, 75, 100]
    assert config.max_power_w == pytest.approx(43_500)


@pytest.mark.parametrize("peaks", [0, 6])
def test_peaks_out_of_range(peaks: int) -> None:
    with pytest.raises(ValueError, match="capacity_peaks"):
        AccountingConfig(time_zone=OSLO, capacity_peaks=peaks)


@pytest.mark.parametrize("power", [0.5, 20_000.0])
def test_max_power_out_of_range(power: float) -> None:
    with pytest.raises(ValueError, match="max_power_kw"):
        AccountingConfig(time_zone=OSLO, max_power_kw=power)


@pytest.mark.parametrize(
    "limits", [(), (5.0, 2.0), (0.0, 2.0), (2.0, 2.0), (2.0, float("inf")), (float("nan"),)]
)
def test_bad_step_limits(limits: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="step limits"):
        AccountingConfig(time_zone=OSLO, step_limits_kw=limits)


def test_too_many_step_limits() -> None:
    with pytest.raises(ValueError, match="between 1 and 20"):
        AccountingConfig(time_zone=OSLO, step_limits_kw=tuple(float(i) for i in range(1, 22)))


def test_parse_and_format_round_trip() -> None:
    assert parse_step_limits("2, 5;10 15, 20  25 ,50, 75, 100") == DEFAULT_STEP_LIMITS_KW
    assert parse_step_limits("2.5, 5") == (2.5, 5.0)
    assert format_step_limits(DEFAULT_STEP_LIMITS_KW) == "2, 5, 10, 15, 20, 25, 50, 75, 100"
    assert parse_step_limits(format_step_limits([2.5, 7.25])) == (2.5, 7.25)


@pytest.mark.parametrize("text", ["", "two, five", "5, 2", "2,5", "2,5, 10", "15,20"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="step limits"):
        parse_step_limits(text)
