"""Register validation, repeats, gaps and the periods booked from hourly registers."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType

import pytest

from custom_components.hanport.accounting.registers import (
    Channel,
    Period,
    Register,
    RegisterTracker,
    Verdict,
    kwh_to_wh,
)

from .meter import utc

H0 = utc(2026, 1, 5, 12)
HOUR = timedelta(hours=1)
IMP, EXP = Channel.IMPORT, Channel.EXPORT


def reg(at: datetime, imp: int, exp: int | None = None) -> Register:
    wh = {IMP: imp}
    if exp is not None:
        wh[EXP] = exp
    return Register(at, MappingProxyType(wh))


def tracker() -> RegisterTracker:
    return RegisterTracker(max_power_w=43_500)


@pytest.mark.parametrize(
    ("kwh", "wh"),
    [
        (94064.59, 94_064_590),
        (12345.678, 12_345_678),
        (0.01, 10),
        (0.0, 0),
        (42949672.95, 42_949_672_950),
    ],
)
def test_kwh_to_wh_is_exact(kwh: float, wh: int) -> None:
    assert kwh_to_wh(kwh) == wh


def test_consecutive_hours_book_exact_periods() -> None:
    t = tracker()
    first = t.offer(reg(H0, 1_000_000, 50), H0)
    assert first.verdict is Verdict.ACCEPTED
    assert first.period is None  # baseline
    second = t.offer(reg(H0 + HOUR, 1_002_340, 60), H0 + HOUR)
    assert second.verdict is Verdict.ACCEPTED
    assert second.period == Period(H0, H0 + HOUR, MappingProxyType({IMP: 2340, EXP: 10}))
    assert second.period.is_hour


def test_gap_books_energy_of_the_gap_not_of_an_hour() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000), H0)
    outcome = t.offer(reg(H0 + 3 * HOUR, 1_009_000), H0 + 3 * HOUR)
    assert outcome.period is not None
    assert not outcome.period.is_hour
    assert outcome.period.wh[IMP] == 9000
    assert outcome.period.start == H0


def test_same_hour_twice_is_a_duplicate() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000), H0)
    again = t.offer(reg(H0 + timedelta(seconds=5), 1_000_010), H0)
    assert again.verdict is Verdict.DUPLICATE
    older = t.offer(reg(H0 - HOUR, 999_000), H0 - HOUR)
    assert older.verdict is Verdict.DUPLICATE
    assert t.hourly == reg(H0, 1_000_000)


def test_same_values_an_hour_later_is_a_repeat() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000, 7), H0)
    repeat = t.offer(reg(H0 + HOUR, 1_000_000, 7), H0 + HOUR)
    assert repeat.verdict is Verdict.REPEAT
    assert repeat.period is None
    # the next real hour spans two hours: a gap, never a doubled hour
    nxt = t.offer(reg(H0 + 2 * HOUR, 1_004_000, 7), H0 + 2 * HOUR)
    assert nxt.period is not None
    assert not nxt.period.is_hour
    assert nxt.period.wh[IMP] == 4000


def test_export_change_alone_is_not_a_repeat() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000, 7), H0)
    outcome = t.offer(reg(H0 + HOUR, 1_000_000, 900), H0 + HOUR)
    assert outcome.verdict is Verdict.ACCEPTED
    assert outcome.period is not None
    assert dict(outcome.period.wh) == {IMP: 0, EXP: 893}


def test_backwards_is_rejected_and_reference_kept() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000), H0)
    outcome = t.offer(reg(H0 + HOUR, 999_990), H0 + HOUR)
    assert outcome.verdict is Verdict.BACKWARDS
    assert "fell" in outcome.detail
    assert t.hourly_boundary == H0
    ok = t.offer(reg(H0 + 2 * HOUR, 1_003_000), H0 + 2 * HOUR)
    assert ok.verdict is Verdict.ACCEPTED
    assert ok.period is not None
    assert not ok.period.is_hour  # the rejected hour makes it a gap


def test_jump_beyond_the_fuse_is_rejected() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000), H0)
    # 43.5 kW for 1 h + 60 s slack + 10 Wh = 44 235 Wh allowed
    assert t.offer(reg(H0 + HOUR, 1_044_235), H0 + HOUR).verdict is Verdict.ACCEPTED
    outcome = t.offer(reg(H0 + 2 * HOUR, 1_044_235 + 44_236), H0 + 2 * HOUR)
    assert outcome.verdict is Verdict.JUMP
    assert "43.5 kW" in outcome.detail


def test_plausibility_scales_with_elapsed_time() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000), H0)
    assert t.offer(reg(H0 + 3 * HOUR, 1_120_000), H0 + 3 * HOUR).verdict is Verdict.ACCEPTED


def test_new_channel_is_not_judged_against_nothing() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000), H0)
    outcome = t.offer(reg(H0 + HOUR, 1_001_000, 5_000_000), H0 + HOUR)
    assert outcome.verdict is Verdict.ACCEPTED
    assert outcome.period is not None
    assert dict(outcome.period.wh) == {IMP: 1000}


def test_mid_hour_registers_validate_and_anchor_but_book_nothing() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000), H0)
    mid = t.offer(reg(H0 + timedelta(minutes=20), 1_000_500), None)
    assert mid.verdict is Verdict.ACCEPTED
    assert mid.period is None
    assert t.reference == reg(H0 + timedelta(minutes=20), 1_000_500)
    stale = t.offer(reg(H0 + timedelta(minutes=10), 1_000_500), None)
    assert stale.verdict is Verdict.DUPLICATE
    back = t.offer(reg(H0 + timedelta(minutes=30), 1_000_400), None)
    assert back.verdict is Verdict.BACKWARDS
    nxt = t.offer(reg(H0 + HOUR, 1_001_500), H0 + HOUR)
    assert nxt.period is not None
    assert nxt.period.wh[IMP] == 1500


def test_consistent_rejections_become_the_new_reference() -> None:
    t = tracker()
    t.offer(reg(H0, 9_000_000), H0)  # a bad value slipped through earlier
    r1 = t.offer(reg(H0 + HOUR, 1_000_000), H0 + HOUR)
    r2 = t.offer(reg(H0 + 2 * HOUR, 1_001_000), H0 + 2 * HOUR)
    assert (r1.verdict, r2.verdict) == (Verdict.BACKWARDS, Verdict.BACKWARDS)
    r3 = t.offer(reg(H0 + 3 * HOUR, 1_002_000), H0 + 3 * HOUR)
    assert r3.verdict is Verdict.REBASED
    assert r3.period is None
    r4 = t.offer(reg(H0 + 4 * HOUR, 1_003_000), H0 + 4 * HOUR)
    assert r4.period == Period(H0 + 3 * HOUR, H0 + 4 * HOUR, MappingProxyType({IMP: 1000}))


def test_inconsistent_rejections_do_not_rebase() -> None:
    t = tracker()
    t.offer(reg(H0, 9_000_000), H0)
    t.offer(reg(H0 + HOUR, 1_000_000), H0 + HOUR)
    t.offer(reg(H0 + 2 * HOUR, 500_000), H0 + 2 * HOUR)  # disagrees: starts again
    r = t.offer(reg(H0 + 3 * HOUR, 501_000), H0 + 3 * HOUR)
    assert r.verdict is Verdict.BACKWARDS
    assert t.offer(reg(H0 + 4 * HOUR, 502_000), H0 + 4 * HOUR).verdict is Verdict.REBASED


def test_mid_hour_rebase_breaks_the_hourly_chain() -> None:
    t = tracker()
    t.offer(reg(H0, 9_000_000), H0)
    for minute in (10, 20, 30):
        outcome = t.offer(reg(H0 + timedelta(minutes=minute), 1_000_000 + minute), None)
    assert outcome.verdict is Verdict.REBASED
    nxt = t.offer(reg(H0 + HOUR, 1_001_000), H0 + HOUR)
    assert nxt.verdict is Verdict.ACCEPTED
    assert nxt.period is None  # new baseline


def test_an_accepted_register_clears_pending_rejections() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000), H0)
    t.offer(reg(H0 + HOUR, 10), H0 + HOUR)
    t.offer(reg(H0 + 2 * HOUR, 20), H0 + 2 * HOUR)
    t.offer(reg(H0 + 3 * HOUR, 1_002_000), H0 + 3 * HOUR)
    assert t.offer(reg(H0 + 4 * HOUR, 30), H0 + 4 * HOUR).verdict is Verdict.BACKWARDS


def test_round_trip() -> None:
    t = tracker()
    t.offer(reg(H0, 1_000_000, 5), H0)
    t.offer(reg(H0 + timedelta(minutes=5), 1_000_100, 5), None)
    again = tracker()
    again.restore(t.to_dict())
    assert again.reference == t.reference
    assert again.hourly == t.hourly
    assert again.hourly_boundary == H0
    empty = tracker()
    empty.restore(tracker().to_dict())
    assert empty.reference is None
    assert empty.hourly is None
    assert empty.hourly_boundary is None


def test_period_round_trip() -> None:
    period = Period(H0, H0 + HOUR, MappingProxyType({IMP: 1, EXP: 2}))
    assert Period.from_dict(period.to_dict()) == period
