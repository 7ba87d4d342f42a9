"""The live energy sensor stays within the register resolution of the meter (simulator)."""

from __future__ import annotations

import pytest

from custom_components.hanport.accounting.registers import Channel

from .live_accuracy import measure


@pytest.mark.parametrize(
    ("profile", "resolution_wh", "worst_wh", "prosumer"),
    [
        ("aidon-6534-no", 10, 12, True),  # power every 2.5 s
        ("kaifa-ma304h4-no", 1, 4, False),  # power every 2 s, Wh registers
        ("kamstrup-4w-no", 10, 20, False),  # power every 10 s only
    ],
)
def test_live_value_before_each_register_is_close_to_it(
    profile: str, resolution_wh: int, worst_wh: int, prosumer: bool
) -> None:
    results = measure(profile, days=0.25, prosumer=prosumer)
    imported = results[Channel.IMPORT]
    assert len(imported.estimate) >= 4
    # registers are truncated to their resolution, and a load switching between two power
    # lists is integrated as a ramp: the error is about one register step at most
    assert imported.worst_abs <= worst_wh
    assert imported.worst_published <= worst_wh
    assert imported.median_abs <= resolution_wh
    if prosumer:
        assert results[Channel.EXPORT].worst_abs <= worst_wh
