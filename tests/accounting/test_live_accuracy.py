"""The live energy sensor stays within the register resolution of the meter (simulator)."""

from __future__ import annotations

import pytest

from custom_components.hanport.accounting.registers import Channel

from .live_accuracy import measure


@pytest.mark.parametrize(
    ("profile", "resolution_wh", "prosumer"),
    [("aidon-6534-no", 10, True), ("kaifa-ma304h4-no", 1, False), ("kamstrup-4w-no", 10, False)],
)
def test_live_value_before_each_register_is_within_resolution(
    profile: str, resolution_wh: int, prosumer: bool
) -> None:
    results = measure(profile, days=0.25, prosumer=prosumer)
    imported = results[Channel.IMPORT]
    assert len(imported.estimate) >= 4
    # registers are truncated to their resolution: the integral can differ by one step
    assert imported.worst_abs <= resolution_wh + 1
    assert imported.worst_published <= resolution_wh + 1
    assert imported.median_abs <= resolution_wh
    if prosumer:
        assert results[Channel.EXPORT].worst_abs <= resolution_wh + 1
