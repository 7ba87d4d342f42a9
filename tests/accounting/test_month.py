"""A whole month through the pure accounting, against an independent computation.

October 2026 in Europe/Oslo (the 25-hour day on the 25th), with a restart in the middle
of an hour, a two-hour meter silence, a repeated hourly list (Aidon style, new stamp and
old values) and a duplicated one (same stamp). A shorter run covers the 23-hour day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from custom_components.hanport.accounting import state
from custom_components.hanport.accounting.account import MeterAccount
from custom_components.hanport.accounting.capacity import step_for
from custom_components.hanport.accounting.clock import local_day, local_month
from custom_components.hanport.accounting.config import AccountingConfig
from custom_components.hanport.accounting.ledger import StatisticRow
from custom_components.hanport.accounting.registers import Channel, Period

from .meter import OSLO, FakeMeter, energy_reading, utc

HOUR = timedelta(hours=1)
IMP, EXP = Channel.IMPORT, Channel.EXPORT


@dataclass
class Run:
    """What the sensors and the statistics saw over a run."""

    rows: dict[Channel, list[StatisticRow]] = field(default_factory=lambda: {IMP: [], EXP: []})
    hours: list[Period] = field(default_factory=list)
    gaps: list[Period] = field(default_factory=list)
    account: MeterAccount | None = None


def run_month(
    meter: FakeMeter,
    config: AccountingConfig,
    until: datetime,
    *,
    restart_at: datetime,
    silent: tuple[datetime, datetime],
    repeat_at: datetime,
    duplicate_at: datetime,
) -> Run:
    run = Run()
    account = MeterAccount(config)
    restarted = False
    previous_live: dict[Channel, float] = {}
    so_far_memo: tuple[datetime | None, dict[Channel, float]] = (None, {})
    last_energy = None
    snapshot_every = timedelta(minutes=1)
    next_snapshot = meter.now
    for arrival, reading in meter.run(until - meter.now):
        if silent[0] <= arrival < silent[1]:
            continue
        if not restarted and arrival >= restart_at:
            restarted = True
            blob = json.loads(json.dumps(state.dump(account)))
            account = state.load(config, blob)
            if arrival < restart_at + timedelta(minutes=2):
                continue  # Home Assistant is down for two minutes
        if repeat_at <= arrival < repeat_at + HOUR and reading.meter_time is not None:
            # the meter repeats the previous hourly list with the new stamp
            assert last_energy is not None
            reading = energy_reading(  # noqa: PLW2901
                reading.meter_time,
                round(last_energy.values["active_energy_import"] * 1000),
                round(last_energy.values["active_energy_export"] * 1000),
            )
        processed = account.process(reading, arrival)
        if reading.meter_time is not None:
            last_energy = reading
            if duplicate_at <= arrival < duplicate_at + HOUR:
                again = account.process(reading, arrival + timedelta(seconds=3))
                assert not again.rows
        for channel, row in processed.rows.items():
            run.rows[channel].append(row)
        outcome = processed.outcome
        if outcome is not None and outcome.period is not None:
            (run.hours if outcome.period.is_hour else run.gaps).append(outcome.period)
        if arrival >= next_snapshot:
            next_snapshot = arrival + snapshot_every
            snap = account.snapshot(arrival)
            for channel, value in snap.live.items():
                if value is not None:
                    assert value >= previous_live.get(channel, 0.0) - 1e-9
                    previous_live[channel] = value
            memo_hour, memo = so_far_memo
            if memo_hour != snap.hour_start:
                memo = {}
                so_far_memo = (snap.hour_start, memo)
            for channel, value in snap.so_far.items():
                if value is not None:
                    assert value >= memo.get(channel, 0.0) - 1e-9
                    memo[channel] = value
    run.account = account
    return run


def independent_capacity(
    registers: dict[datetime, tuple[int, int]], month: str, count: int, exclude: set[datetime]
) -> tuple[float, list[tuple[datetime, int]]]:
    """Mean of the N highest daily maxima of hourly import, from the meter's registers."""
    daily: dict[str, tuple[datetime, int]] = {}
    for end, (imp, _exp) in registers.items():
        start = end - HOUR
        if start not in registers or start in exclude or local_month(start, OSLO) != month:
            continue
        wh = imp - registers[start][0]
        day = local_day(start, OSLO)
        if day not in daily or wh > daily[day][1]:
            daily[day] = (start, wh)
    top = sorted(daily.values(), key=lambda p: (-p[1], p[0]))[:count]
    return sum(wh for _s, wh in top) / len(top) / 1000, top


def test_october_month_exact() -> None:
    config = AccountingConfig(time_zone=OSLO)
    start = utc(2026, 9, 30, 21, 30)  # 23:30 local on 30 September
    meter = FakeMeter(now=start, tick=timedelta(seconds=30), seed=7)
    until = utc(2026, 10, 31, 22, 59)  # 23:59 local on 31 October
    restart_at = utc(2026, 10, 12, 9, 31, 7)
    silent = (utc(2026, 10, 18, 13, 30), utc(2026, 10, 18, 15, 20))  # misses 2 registers
    repeat_at = utc(2026, 10, 21, 17, 0, 5)
    duplicate_at = utc(2026, 10, 9, 3, 0, 5)
    run = run_month(
        meter,
        config,
        until,
        restart_at=restart_at,
        silent=silent,
        repeat_at=repeat_at,
        duplicate_at=duplicate_at,
    )
    registers = meter.registers
    boundaries = sorted(registers)
    assert utc(2026, 10, 25, 0) in registers  # 02:00 CEST
    assert utc(2026, 10, 25, 1) in registers  # 02:00 CET

    # 1. statistics: one row per register received after the first; exact differences
    received = [
        b
        for b in boundaries
        if not (silent[0] <= b + timedelta(seconds=10) < silent[1])
        and not (repeat_at <= b + timedelta(seconds=10) < repeat_at + HOUR)
    ]
    for channel, index in ((IMP, 0), (EXP, 1)):
        rows = run.rows[channel]
        assert [r.start + HOUR for r in rows] == received[1:]
        previous = registers[received[0]][index]
        for row in rows:
            boundary = row.start + HOUR
            assert row.state == registers[boundary][index]
            assert row.sum == registers[boundary][index] - registers[received[0]][index]
            previous = registers[boundary][index]
        assert previous == registers[received[-1]][index]

    # 2. hourly values: exact, stamped with their hour; hours + gaps = the month's difference
    for period in run.hours:
        assert period.wh[IMP] == registers[period.end][0] - registers[period.start][0]
        assert period.wh[EXP] == registers[period.end][1] - registers[period.start][1]
    assert [(g.start, g.end) for g in run.gaps] == [
        (utc(2026, 10, 18, 13), utc(2026, 10, 18, 16)),  # the silence: three hours, one gap
        (utc(2026, 10, 21, 16), utc(2026, 10, 21, 18)),  # the repeated list: ignored
    ]
    total_imp = sum(p.wh[IMP] for p in run.hours) + sum(g.wh[IMP] for g in run.gaps)
    assert total_imp == registers[received[-1]][0] - registers[received[0]][0]
    october_hours = [p for p in run.hours if local_month(p.start, OSLO) == "2026-10"]
    # 31 days * 24 + 1 (25-hour day) - the first hour - 3 (silence) - 2 (repeat)
    assert len(october_hours) == 31 * 24 + 1 - 1 - 3 - 2

    # 3. capacity equals an independent computation over the same hours
    account = run.account
    assert account is not None
    gap_hours = {g.start + i * HOUR for g in run.gaps for i in range(int((g.end - g.start) / HOUR))}
    expected, top = independent_capacity(registers, "2026-10", 3, gap_hours)
    snap = account.snapshot(utc(2026, 10, 31, 22, 0, 30))  # 30 s into the last hour
    assert [(p.start, p.wh) for p in snap.capacity.peaks] == top
    assert snap.capacity.value_kw is not None
    estimate = snap.estimate[IMP]
    assert estimate is not None
    today_max = max(
        (p.wh[IMP] for p in run.hours if local_day(p.start, OSLO) == "2026-10-31"), default=0
    )
    if estimate <= min(today_max, top[-1][1]):
        assert snap.capacity.value_kw == pytest.approx(expected)
    assert snap.capacity.step == step_for(snap.capacity.value_kw, config.step_limits_kw)
    booked = account.capacity.snapshot(utc(2026, 10, 31, 22), None, None)
    assert booked.value_kw == pytest.approx(expected)
    assert booked.step == step_for(expected, config.step_limits_kw)

    # 4. the live sensor ended close to the meter and never went down (checked in the run)
    live = snap.live[IMP]
    assert live is not None
    assert abs(live - registers[boundaries[-1]][0]) < 10_000


def test_spring_change_23_hour_day() -> None:
    config = AccountingConfig(time_zone=OSLO)
    meter = FakeMeter(now=utc(2026, 3, 28, 12, 30), tick=timedelta(seconds=30), seed=3)
    account = MeterAccount(config)
    hours: list[Period] = []
    for arrival, reading in meter.run(timedelta(days=2)):
        outcome = account.process(reading, arrival).outcome
        if outcome is not None and outcome.period is not None:
            assert outcome.period.is_hour
            hours.append(outcome.period)
    on_the_day = [p for p in hours if local_day(p.start, OSLO) == "2026-03-29"]
    assert len(on_the_day) == 23
    for period in hours:
        assert period.wh[IMP] == meter.registers[period.end][0] - meter.registers[period.start][0]
