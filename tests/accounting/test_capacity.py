"""Capacity charge: daily peaks, the monthly value, the step and the headroom."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.hanport.accounting.capacity import (
    CapacityTracker,
    Peak,
    Step,
    headroom_wh,
    monthly_value_wh,
    step_for,
    top_peaks,
)
from custom_components.hanport.accounting.config import DEFAULT_STEP_LIMITS_KW

from .meter import OSLO, utc

HOUR = timedelta(hours=1)


def tracker(count: int = 3) -> CapacityTracker:
    return CapacityTracker(zone=OSLO, count=count, limits_kw=DEFAULT_STEP_LIMITS_KW)


def test_monthly_value() -> None:
    assert monthly_value_wh([], 3) is None
    assert monthly_value_wh([4000], 3) == 4000
    assert monthly_value_wh([1000, 5000, 3000, 4000], 3) == 4000
    assert monthly_value_wh([1000, 5000, 3000, 4000], 1) == 5000


@pytest.mark.parametrize(
    ("value", "step"),
    [
        (0.0, Step(1, 2)),
        (1.999, Step(1, 2)),
        (2.0, Step(2, 5)),
        (4.99, Step(2, 5)),
        (99.9, Step(9, 100)),
        (100.0, Step(10, None)),
    ],
)
def test_step_for(value: float, step: Step) -> None:
    assert step_for(value, DEFAULT_STEP_LIMITS_KW) == step


def test_top_peaks_ties_prefer_earlier() -> None:
    a, b, c = Peak(utc(2026, 1, 2), 500), Peak(utc(2026, 1, 1), 500), Peak(utc(2026, 1, 3), 900)
    assert top_peaks([a, b, c], 2) == [c, b]


def test_one_peak_per_day() -> None:
    cap = tracker()
    day = utc(2026, 1, 5, 6)  # 07:00 local
    assert cap.add_hour(day, 3000)
    assert cap.add_hour(day + HOUR, 4000)
    assert not cap.add_hour(day + 2 * HOUR, 3500)
    assert cap.peaks(day) == [Peak(day + HOUR, 4000)]


def test_hour_belongs_to_local_day_and_month_of_its_start() -> None:
    cap = tracker()
    last_of_january = utc(2026, 1, 31, 22)  # 23:00-24:00 local on 31 January
    cap.add_hour(last_of_january, 7000)
    assert cap.peaks(utc(2026, 1, 31, 12)) == [Peak(last_of_january, 7000)]
    # at 00:00:10 on 1 February that hour is booked, but February starts empty
    february = utc(2026, 1, 31, 23, 0, 10)
    assert cap.peaks(february) == []
    state = cap.snapshot(utc(2026, 1, 31, 23), None, None)
    assert state.value_kw is None
    assert state.step is None
    assert state.headroom_wh is None


def test_snapshot_counts_current_hour_estimate() -> None:
    cap = tracker()
    base = utc(2026, 1, 1, 11)
    for day, wh in enumerate([3000, 6000, 4000, 1000]):
        cap.add_hour(base + timedelta(days=day), wh)
    now_hour = base + timedelta(days=4, hours=2)
    plain = cap.snapshot(now_hour, None, None)
    assert plain.value_kw == pytest.approx((6000 + 4000 + 3000) / 3 / 1000)
    assert plain.step == Step(2, 5)
    assert plain.headroom_wh is None
    assert [p.wh for p in plain.peaks] == [6000, 4000, 3000]
    with_estimate = cap.snapshot(now_hour, 9000.0, 1000.0)
    assert with_estimate.value_kw == pytest.approx((9000 + 6000 + 4000) / 3 / 1000)
    assert with_estimate.step == Step(3, 10)
    # peaks are booked hours only
    assert [p.wh for p in with_estimate.peaks] == [6000, 4000, 3000]
    # today's entry may rise to 10*3 - 6000 - 4000 = 20 000 Wh
    assert with_estimate.headroom_wh == pytest.approx(19_000)


def test_snapshot_today_booked_beats_small_estimate() -> None:
    cap = tracker(count=1)
    today = utc(2026, 1, 10, 8)
    cap.add_hour(today, 4500)
    state = cap.snapshot(today + 2 * HOUR, 100.0, 50.0)
    assert state.value_kw == pytest.approx(4.5)
    assert state.step == Step(2, 5)
    assert state.headroom_wh == pytest.approx(5000 - 50)


def test_snapshot_without_estimate_but_booked_today() -> None:
    cap = tracker(count=1)
    today = utc(2026, 1, 10, 8)
    cap.add_hour(today, 4500)
    assert cap.snapshot(today + HOUR, None, None).value_kw == pytest.approx(4.5)


def test_headroom_above_the_last_step_is_unknown() -> None:
    cap = tracker(count=1)
    today = utc(2026, 1, 10, 8)
    cap.add_hour(today, 120_000)
    state = cap.snapshot(today + HOUR, 0.0, 0.0)
    assert state.step == Step(10, None)
    assert state.headroom_wh is None


def test_headroom_cases() -> None:
    # fewer days than N: today's entry joins the mean of what there is
    assert headroom_wh([], 0, 0.0, 3, 2.0) == pytest.approx(2000)
    assert headroom_wh([1000], 0, 500.0, 3, 2.0) == pytest.approx(4000 - 1000 - 500)
    # enough other days: today must beat the N-th and keep the mean below the limit
    assert headroom_wh([1900, 1900, 1900], 0, 0.0, 3, 2.0) == pytest.approx(2200)
    # the other days alone already reach the limit
    assert headroom_wh([2100, 2100, 2100], 0, 0.0, 3, 2.0) == 0
    # today's booked peak already reaches it
    assert headroom_wh([], 2500, 0.0, 1, 2.0) == 0
    # the hour so far is beyond it
    assert headroom_wh([], 0, 2500.0, 1, 2.0) == 0


def _value(others: list[int], today: float, count: int) -> float:
    """Independent monthly value: mean of the N highest daily maxima."""
    days = sorted([*others, today], reverse=True)[:count]
    return sum(days) / len(days)


@given(
    others=st.lists(st.integers(0, 30_000), max_size=30),
    today=st.integers(0, 30_000),
    so_far=st.integers(0, 30_000),
    count=st.integers(1, 5),
)
def test_headroom_is_exactly_the_room_below_the_step_limit(
    others: list[int], today: int, so_far: int, count: int
) -> None:
    current = _value(others, max(today, so_far), count)
    step = step_for(current / 1000, DEFAULT_STEP_LIMITS_KW)
    if step.limit_kw is None:
        return
    room = headroom_wh(others, today, float(so_far), count, step.limit_kw)
    assert room >= 0
    limit = step.limit_kw * 1000
    # using the room (minus a hair) stays in the step; a hair more reaches the limit
    assert _value(others, max(today, so_far + room - 1e-6), count) < limit
    if room > 0:
        assert _value(others, max(today, so_far + room + 1e-6), count) >= limit - 1e-6


def test_prune_keeps_two_months() -> None:
    cap = tracker()
    for month in (1, 2, 3):
        cap.add_hour(utc(2026, month, 10, 8), month * 1000)
    assert sorted(cap.to_dict()) == ["2026-02", "2026-03"]
    # a late hour of an old month is booked into its month, then pruned later
    cap.add_hour(utc(2026, 1, 20, 8), 500)
    assert sorted(cap.to_dict()) == ["2026-01", "2026-02", "2026-03"]
    cap.add_hour(utc(2026, 3, 11, 8), 500)
    assert sorted(cap.to_dict()) == ["2026-02", "2026-03"]


def test_round_trip() -> None:
    cap = tracker()
    cap.add_hour(utc(2026, 1, 10, 8), 3210)
    again = tracker()
    again.restore(cap.to_dict())
    assert again.peaks(utc(2026, 1, 12)) == [Peak(utc(2026, 1, 10, 8), 3210)]
