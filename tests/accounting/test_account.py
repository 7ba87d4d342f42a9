"""One meter's accounting: how readings move sensors, rows and the capacity tracker."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest

from custom_components.hanport.accounting import state
from custom_components.hanport.accounting.account import MeterAccount
from custom_components.hanport.accounting.config import AccountingConfig
from custom_components.hanport.accounting.ledger import StatisticRow
from custom_components.hanport.accounting.registers import Channel, Verdict

from .meter import OSLO, energy_reading, power_reading, utc

HOUR = timedelta(hours=1)
IMP, EXP = Channel.IMPORT, Channel.EXPORT
B0 = utc(2026, 1, 5, 11)  # 12:00 local


def local(at: datetime) -> datetime:
    return at.astimezone(OSLO).replace(tzinfo=None)


def account() -> MeterAccount:
    return MeterAccount(AccountingConfig(time_zone=OSLO))


def feed_power(acc: MeterAccount, start: datetime, end: datetime, watts: float) -> None:
    at = start
    while at <= end:
        acc.process(power_reading(watts, 0), at)
        at += timedelta(seconds=10)


def test_power_only_reading_books_nothing() -> None:
    acc = account()
    result = acc.process(power_reading(1000), B0)
    assert result.outcome is None
    assert not result.rows


def test_hour_booked_by_meter_stamp_not_arrival() -> None:
    acc = account()
    acc.process(energy_reading(local(B0), 1_000_000, 0), B0 + timedelta(seconds=10))
    feed_power(acc, B0, B0 + HOUR, 2000)
    result = acc.process(
        energy_reading(local(B0 + HOUR), 1_002_000, 0), B0 + HOUR + timedelta(seconds=10)
    )
    assert result.outcome is not None
    assert result.outcome.period is not None
    assert result.outcome.period.start == B0
    assert result.rows[IMP] == StatisticRow(B0, 1_002_000, 2000)
    assert result.rows[EXP] == StatisticRow(B0, 0, 0)
    snap = acc.snapshot(B0 + HOUR + timedelta(seconds=20))
    assert snap.last_hour is not None
    assert snap.last_hour.start == B0
    assert snap.last_hour.wh[IMP] == 2000
    assert snap.capacity.peaks[0].start == B0


def test_kaifa_stamp_ten_seconds_after_the_hour_is_hourly() -> None:
    acc = account()
    acc.process(
        energy_reading(local(B0) + timedelta(seconds=10), 1_000_000), B0 + timedelta(seconds=11)
    )
    result = acc.process(
        energy_reading(local(B0 + HOUR) + timedelta(seconds=10), 1_001_000),
        B0 + HOUR + timedelta(seconds=11),
    )
    assert result.outcome is not None
    assert result.outcome.period is not None
    assert result.outcome.period.start == B0


def test_aware_p1_registers_every_ten_seconds() -> None:
    acc = account()
    cet = timezone(timedelta(hours=1))
    rows: list[StatisticRow] = []
    wh = 5_000_000
    at = B0 - timedelta(minutes=1)
    while at <= B0 + HOUR + timedelta(minutes=1):
        wh += 10
        reading = energy_reading(at.astimezone(cet), wh, None, import_w=3600)
        result = acc.process(reading, at + timedelta(seconds=1))
        rows.extend(result.rows.values())
        at += timedelta(seconds=10)
    # the first register on or after each hour is that hour's register
    assert [r.start for r in rows] == [B0]
    assert rows[0].sum == 3600
    snap = acc.snapshot(B0 + HOUR + timedelta(minutes=1, seconds=2))
    assert snap.live[IMP] == pytest.approx(wh + 1)  # 1 s at 3600 W since the stamp
    assert snap.live[EXP] is None
    # so far this hour is register-based: 7 registers after the hour's one
    assert snap.so_far[IMP] == pytest.approx(61)  # 60 Wh of registers + 1 s since the last


def test_register_without_meter_time_anchors_live_only() -> None:
    acc = account()
    result = acc.process(energy_reading(None, 1_000_000), B0)
    assert result.outcome is not None
    assert result.outcome.verdict is Verdict.ACCEPTED
    assert not result.rows
    assert acc.snapshot(B0).live[IMP] == 1_000_000


def test_meter_clock_far_off_is_rejected_once(caplog: pytest.LogCaptureFixture) -> None:
    acc = account()
    caplog.set_level(logging.DEBUG)
    for hour in range(3):
        arrival = B0 + hour * HOUR + timedelta(seconds=10)
        result = acc.process(energy_reading(local(arrival - 2 * HOUR), 1_000_000 + hour), arrival)
        assert result.outcome is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2:00:00 behind" in warnings[0].getMessage()
    ahead = account()
    ahead.process(energy_reading(local(B0 + 2 * HOUR), 1), B0)
    assert "ahead" in caplog.records[-1].getMessage()


def test_rejections_logged_once_then_recovery(caplog: pytest.LogCaptureFixture) -> None:
    acc = account()
    caplog.set_level(logging.DEBUG)
    acc.process(energy_reading(local(B0), 1_000_000), B0 + timedelta(seconds=10))
    for hour in (1, 2):
        result = acc.process(
            energy_reading(local(B0 + hour * HOUR), 10 + hour),
            B0 + hour * HOUR + timedelta(seconds=10),
        )
        assert result.outcome is not None
        assert result.outcome.verdict is Verdict.BACKWARDS
        assert not result.rows
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "rejected" in warnings[0].getMessage()
    result = acc.process(
        energy_reading(local(B0 + 3 * HOUR), 1_003_000), B0 + 3 * HOUR + timedelta(seconds=10)
    )
    assert result.rows[IMP].sum == 3000  # booked as the gap's energy
    assert any("accepted again" in r.getMessage() for r in caplog.records)
    assert acc.snapshot(B0 + 3 * HOUR + timedelta(seconds=20)).last_hour is None
    assert acc.last_gap is not None
    assert acc.last_gap.wh[IMP] == 3000


def test_rebase_keeps_the_sum_and_the_live_value(caplog: pytest.LogCaptureFixture) -> None:
    acc = account()
    acc.process(energy_reading(local(B0), 9_000_000), B0 + timedelta(seconds=10))
    acc.process(energy_reading(local(B0 + HOUR), 9_001_000), B0 + HOUR + timedelta(seconds=10))
    for hour in (2, 3, 4):
        result = acc.process(
            energy_reading(local(B0 + hour * HOUR), 1_000 * hour),
            B0 + hour * HOUR + timedelta(seconds=10),
        )
    assert result.outcome is not None
    assert result.outcome.verdict is Verdict.REBASED
    assert "new reference" in caplog.text
    assert acc.snapshot(B0 + 4 * HOUR + timedelta(seconds=20)).live[IMP] == 9_001_000
    result = acc.process(
        energy_reading(local(B0 + 5 * HOUR), 5_500), B0 + 5 * HOUR + timedelta(seconds=10)
    )
    assert result.rows[IMP] == StatisticRow(B0 + 4 * HOUR, 5_500, 1_000 + 1_500)


def test_mid_hour_rebase_rebases_the_ledger_at_its_hour() -> None:
    acc = account()
    acc.process(energy_reading(local(B0), 9_000_000), B0 + timedelta(seconds=10))
    acc.process(energy_reading(local(B0 + HOUR), 9_001_000), B0 + HOUR + timedelta(seconds=10))
    for minute in (10, 20, 30):
        at = B0 + HOUR + timedelta(minutes=minute)
        acc.process(energy_reading(None, 1_000 + minute), at)
    result = acc.process(
        energy_reading(local(B0 + 2 * HOUR), 2_000), B0 + 2 * HOUR + timedelta(seconds=10)
    )
    assert result.rows[IMP] == StatisticRow(B0 + HOUR, 2_000, 1_000 + 2_000 - 1_030)


def test_so_far_and_estimate() -> None:
    assert account().snapshot(B0).so_far[IMP] is None  # nothing seen yet
    acc = account()
    acc.process(energy_reading(local(B0), 1_000_000), B0 + timedelta(seconds=10))
    empty = acc.snapshot(B0 + timedelta(seconds=20))
    assert empty.so_far[IMP] == 0  # the hour's register is in, no power yet
    assert empty.estimate[IMP] == 0
    feed_power(acc, B0, B0 + timedelta(minutes=30), 3600)
    snap = acc.snapshot(B0 + timedelta(minutes=30))
    assert snap.so_far[IMP] == pytest.approx(1800)
    assert snap.estimate[IMP] == pytest.approx(3600)
    assert snap.capacity.value_kw == pytest.approx(3.6)
    assert snap.capacity.headroom_wh == pytest.approx(5000 - 1800)
    # meter silent for 2 minutes: the estimate keeps the recent mean power
    later = acc.snapshot(B0 + timedelta(minutes=32))
    assert later.so_far[IMP] == pytest.approx(1800)
    assert later.estimate[IMP] == pytest.approx(1800 + 3600 * 28 / 60)
    # silent for longer than the recent window: no power to project
    silent = acc.snapshot(B0 + timedelta(minutes=40))
    assert silent.estimate[IMP] == pytest.approx(1800)


def test_so_far_before_the_hours_register_then_after() -> None:
    acc = account()
    acc.process(energy_reading(local(B0), 1_000_000), B0 + timedelta(seconds=10))
    feed_power(acc, B0, B0 + HOUR + timedelta(seconds=10), 3600)
    before = acc.snapshot(B0 + HOUR + timedelta(seconds=10))
    assert before.hour_start == B0 + HOUR
    assert before.so_far[IMP] == pytest.approx(10)
    acc.process(energy_reading(local(B0 + HOUR), 1_003_590), B0 + HOUR + timedelta(seconds=10))
    feed_power(acc, B0 + HOUR + timedelta(seconds=20), B0 + HOUR + timedelta(seconds=30), 3600)
    after = acc.snapshot(B0 + HOUR + timedelta(seconds=30))
    assert after.so_far[IMP] == pytest.approx(30)


def test_so_far_never_goes_down_within_the_hour() -> None:
    acc = account()
    acc.process(energy_reading(None, 1_000_000), B0 + timedelta(minutes=1))
    acc.process(energy_reading(local(B0), 1_000_000), B0 + timedelta(seconds=10))
    feed_power(acc, B0 + timedelta(minutes=1), B0 + timedelta(minutes=10), 3600)
    first = acc.snapshot(B0 + timedelta(minutes=10)).so_far[IMP]
    # a mid-hour register below the integration pulls the estimate down; so far holds
    acc.process(energy_reading(None, 1_000_100), B0 + timedelta(minutes=10, seconds=1))
    second = acc.snapshot(B0 + timedelta(minutes=10, seconds=2)).so_far[IMP]
    assert first is not None
    assert second == first


def test_estimate_without_recent_power() -> None:
    acc = account()
    acc.process(power_reading(1000), B0 + timedelta(minutes=5))
    snap = acc.snapshot(B0 + timedelta(minutes=6))
    assert snap.so_far[IMP] == 0
    assert snap.estimate[IMP] == 0


def test_last_hour_goes_unknown_when_it_is_no_longer_the_last() -> None:
    acc = account()
    acc.process(energy_reading(local(B0), 1_000_000), B0 + timedelta(seconds=10))
    acc.process(energy_reading(local(B0 + HOUR), 1_001_000), B0 + HOUR + timedelta(seconds=10))
    assert acc.snapshot(B0 + 2 * HOUR + timedelta(seconds=5)).last_hour is not None
    assert acc.snapshot(B0 + 3 * HOUR + timedelta(seconds=5)).last_hour is None


def test_state_round_trip_and_reconcile() -> None:
    config = AccountingConfig(time_zone=OSLO)
    acc = MeterAccount(config)
    acc.process(energy_reading(local(B0), 1_000_000, 10), B0 + timedelta(seconds=10))
    acc.process(energy_reading(local(B0 + HOUR), 1_001_000, 20), B0 + HOUR + timedelta(seconds=10))
    acc.process(
        energy_reading(local(B0 + 3 * HOUR), 1_004_000, 20), B0 + 3 * HOUR + timedelta(seconds=10)
    )
    blob = json.loads(json.dumps(state.dump(acc)))
    again = state.load(config, blob)
    assert again.to_dict() == acc.to_dict()
    assert again.last_gap == acc.last_gap
    assert again.reconcile(IMP, None) is None
    row = again.process(
        energy_reading(local(B0 + 4 * HOUR), 1_004_500, 20), B0 + 4 * HOUR + timedelta(seconds=10)
    ).rows[IMP]
    assert row == StatisticRow(B0 + 3 * HOUR, 1_004_500, 500)


@pytest.mark.parametrize(
    "blob",
    [
        None,
        {},
        {"version": 99, "account": {}},
        {"version": 1, "account": {"tracker": {}}},
        {"version": 1, "account": {"tracker": {"reference": {"at": "nonsense", "wh": {}}}}},
    ],
)
def test_unreadable_state_starts_afresh(blob: dict[str, object] | None) -> None:
    acc = state.load(AccountingConfig(time_zone=OSLO), blob)
    assert acc.to_dict() == MeterAccount(AccountingConfig(time_zone=OSLO)).to_dict()


def test_snapshot_hour_start_is_utc() -> None:
    snap = account().snapshot(datetime(2026, 1, 5, 11, 30, tzinfo=UTC))
    assert snap.hour_start == B0
    assert snap.capacity.value_kw is None


def test_export_only_registers_book_no_capacity() -> None:
    from custom_components.hanport.han.reading import (
        ACTIVE_ENERGY_EXPORT,
        Protocol,
        Reading,
        make_values,
    )

    def export_only(at: datetime, wh: int) -> Reading:
        values = make_values({ACTIVE_ENERGY_EXPORT: wh / 1000})
        return Reading(Protocol.HDLC, None, "x", None, None, local(at), values)

    acc = account()
    acc.process(export_only(B0, 100), B0 + timedelta(seconds=10))
    result = acc.process(export_only(B0 + HOUR, 900), B0 + HOUR + timedelta(seconds=10))
    assert result.rows[EXP].sum == 800
    assert IMP not in result.rows
    assert acc.snapshot(B0 + HOUR + timedelta(seconds=20)).capacity.peaks == []


def test_hourly_list_stamped_after_the_hour_anchors_at_the_hour() -> None:
    # Kaifa stamps xx:00:10 but carries the value latched at xx:00:00
    acc = account()
    acc.process(
        energy_reading(local(B0) + timedelta(seconds=10), 1_000_000), B0 + timedelta(seconds=11)
    )
    feed_power(acc, B0, B0 + HOUR + timedelta(seconds=10), 3600)
    acc.process(
        energy_reading(local(B0 + HOUR) + timedelta(seconds=10), 1_003_600),
        B0 + HOUR + timedelta(seconds=11),
    )
    live = acc.live[IMP]
    assert live.anchored_at == B0 + HOUR
    assert live.estimate == pytest.approx(1_003_610)  # 10 s at 3600 W since the hour
    assert live.last_error is not None
    assert live.last_error.estimate == pytest.approx(0, abs=1)


def test_frequent_registers_anchor_at_their_stamp() -> None:
    acc = account()
    acc.process(
        energy_reading(local(B0) - timedelta(minutes=10), 999_000), B0 - timedelta(minutes=10)
    )
    acc.process(
        energy_reading(local(B0) + timedelta(seconds=10), 1_000_000), B0 + timedelta(seconds=11)
    )
    assert acc.live[IMP].anchored_at == B0 + timedelta(seconds=10)
