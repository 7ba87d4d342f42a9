"""The live energy integrator: power between registers, re-anchoring, hold, gaps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from custom_components.hanport.accounting.live import LiveEnergy

from .meter import utc

T0 = utc(2026, 1, 5, 12)


def make() -> LiveEnergy:
    return LiveEnergy(max_sample_gap=timedelta(seconds=60), history=timedelta(minutes=70))


def test_unknown_until_anchored() -> None:
    live = make()
    live.add_power(T0, 1000)
    live.add_power(T0 + timedelta(seconds=36), 1000)
    assert live.value is None
    assert live.estimate is None
    assert live.energy_since(T0) == pytest.approx(10.0)


def test_trapezoid_integration_after_anchor() -> None:
    live = make()
    live.anchor(1_000_000, T0)
    assert live.value == 1_000_000
    live.add_power(T0, 1000)
    live.add_power(T0 + timedelta(seconds=36), 3000)  # mean 2000 W for 36 s = 20 Wh
    assert live.value == pytest.approx(1_000_020)
    assert live.anchored_at == T0


def test_negative_power_counts_as_zero() -> None:
    live = make()
    live.anchor(0, T0)
    live.add_power(T0, -500)
    live.add_power(T0 + timedelta(seconds=36), -500)
    assert live.value == 0


def test_no_integration_across_a_silence() -> None:
    live = make()
    live.anchor(500, T0)
    live.add_power(T0, 3600)
    live.add_power(T0 + timedelta(seconds=61), 3600)  # gap > 60 s: unknown energy
    assert live.value == 500
    live.add_power(T0 + timedelta(seconds=71), 3600)  # 10 s at 3600 W = 10 Wh
    assert live.value == pytest.approx(510)
    # the flat, un-integrated stretch stays flat when asked for energy since a time in it
    assert live.energy_since(T0 + timedelta(seconds=30)) == pytest.approx(10)


def test_duplicate_or_older_sample_is_ignored() -> None:
    live = make()
    live.anchor(0, T0)
    live.add_power(T0, 3600)
    live.add_power(T0, 9999)
    live.add_power(T0 - timedelta(seconds=5), 9999)
    live.add_power(T0 + timedelta(seconds=10), 3600)
    assert live.value == pytest.approx(10)
    assert live.last_sample == (T0 + timedelta(seconds=10), 3600)


def test_reanchor_adds_energy_after_the_register_time() -> None:
    live = make()
    live.anchor(0, T0 - timedelta(hours=1))
    for second in range(0, 3601, 10):
        live.add_power(T0 - timedelta(hours=1) + timedelta(seconds=second), 3600)
    for second in range(10, 21, 10):  # 20 s into the new hour
        live.add_power(T0 + timedelta(seconds=second), 3600)
    assert live.value == pytest.approx(3620)
    # the meter's register at T0 says 3590 (the estimate ran 10 Wh ahead)
    live.anchor(3590, T0)
    assert live.estimate == pytest.approx(3610)
    assert live.value == pytest.approx(3620)  # held: never goes down
    error = live.last_error
    assert error is not None
    assert error.at == T0
    assert error.estimate == pytest.approx(10)
    assert error.published == pytest.approx(10)
    live.add_power(T0 + timedelta(seconds=30), 3600)  # +10 Wh: catches up to the hold
    assert live.value == pytest.approx(3620)
    live.add_power(T0 + timedelta(seconds=40), 3600)
    assert live.value == pytest.approx(3630)


def test_reanchor_upwards_catches_up_without_overshoot() -> None:
    live = make()
    live.anchor(1000, T0)
    live.add_power(T0 + timedelta(hours=2), 500)  # first sample after a long outage
    live.anchor(9000, T0 + timedelta(hours=2))
    assert live.value == 9000
    assert live.last_error is not None
    assert live.last_error.estimate == -8000


def test_register_after_last_sample_adds_nothing() -> None:
    live = make()
    live.add_power(T0, 1000)
    live.anchor(100, T0 + timedelta(seconds=5))
    assert live.value == 100


def test_register_before_history_uses_oldest_sample() -> None:
    live = make()
    live.add_power(T0, 3600)
    live.add_power(T0 + timedelta(seconds=10), 3600)
    live.anchor(100, T0 - timedelta(seconds=30))
    assert live.value == pytest.approx(110)


def test_energy_since_without_samples() -> None:
    assert make().energy_since(T0) == 0
    assert make().average_power(T0) is None


def test_average_power_over_covered_time() -> None:
    live = make()
    live.add_power(T0, 1000)
    live.add_power(T0 + timedelta(seconds=30), 1000)
    live.add_power(T0 + timedelta(seconds=200), 3000)  # gap: not covered
    live.add_power(T0 + timedelta(seconds=230), 3000)
    assert live.average_power(T0) == pytest.approx(2000)
    assert live.average_power(T0 + timedelta(seconds=215)) == pytest.approx(3000)
    assert live.average_power(T0 + timedelta(seconds=300)) is None


def test_history_is_bounded() -> None:
    live = LiveEnergy(max_sample_gap=timedelta(seconds=60), history=timedelta(minutes=5))
    for second in range(0, 3600, 10):
        live.add_power(T0 + timedelta(seconds=second), 3600)
    assert len(live._times) <= 32
    # the oldest sample kept is at most the history before the newest
    assert live._times[1] >= T0 + timedelta(seconds=3590) - timedelta(minutes=5)


def test_restore_round_trip() -> None:
    live = make()
    live.anchor(1000, T0)
    live.add_power(T0, 3600)
    live.add_power(T0 + timedelta(seconds=10), 3600)
    data = live.to_dict()
    again = make()
    again.restore(data)
    assert again.value == pytest.approx(1010)
    assert again.estimate == pytest.approx(1010)
    assert again.anchored_at == T0
    assert again.last_sample is None


def test_restore_empty_and_legacy() -> None:
    live = make()
    live.restore({"published": None, "estimate": None, "anchor_at": None})
    assert live.value is None
    live.restore({"published": 50.0})
    assert live.estimate == 50.0
    assert live.anchored_at is None
