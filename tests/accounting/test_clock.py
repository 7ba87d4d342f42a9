"""Meter time to instants and local hours across both daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from custom_components.hanport.accounting.clock import (
    as_utc,
    hour_start,
    local_day,
    local_month,
    meter_instant,
)

from .meter import OSLO, utc


def test_aware_meter_time_is_taken_as_is() -> None:
    cet = timezone(timedelta(hours=1))
    stamp = datetime(2026, 1, 5, 14, 0, 0, tzinfo=cet)
    assert meter_instant(stamp, utc(2026, 1, 5, 13, 0, 10), OSLO) == utc(2026, 1, 5, 13)


def test_naive_meter_time_is_local() -> None:
    assert meter_instant(datetime(2026, 1, 5, 14), utc(2026, 1, 5, 13, 0, 10), OSLO) == utc(
        2026, 1, 5, 13
    )
    assert meter_instant(datetime(2026, 7, 5, 14), utc(2026, 7, 5, 12, 0, 10), OSLO) == utc(
        2026, 7, 5, 12
    )


def test_autumn_repeated_hour_is_resolved_by_arrival() -> None:
    # 2026-10-25: 03:00 CEST -> 02:00 CET. "02:00:00" is 00:00 UTC and again 01:00 UTC.
    stamp = datetime(2026, 10, 25, 2, 0, 0)
    assert meter_instant(stamp, utc(2026, 10, 25, 0, 0, 10), OSLO) == utc(2026, 10, 25, 0)
    assert meter_instant(stamp, utc(2026, 10, 25, 1, 0, 10), OSLO) == utc(2026, 10, 25, 1)
    # "03:00:00" is unambiguous: 02:00 UTC.
    assert meter_instant(datetime(2026, 10, 25, 3), utc(2026, 10, 25, 2, 0, 10), OSLO) == utc(
        2026, 10, 25, 2
    )


def test_spring_nonexistent_time_maps_near_arrival() -> None:
    # 2026-03-29: 02:00 CET -> 03:00 CEST; 02:30 does not exist. Either reading is an hour
    # apart; the one nearest to arrival wins.
    stamp = datetime(2026, 3, 29, 2, 30)
    assert meter_instant(stamp, utc(2026, 3, 29, 1, 30), OSLO) == utc(2026, 3, 29, 1, 30)
    assert meter_instant(stamp, utc(2026, 3, 29, 0, 30), OSLO) == utc(2026, 3, 29, 0, 30)


def test_hour_start_in_repeated_autumn_hour() -> None:
    first = utc(2026, 10, 25, 0, 40)  # 02:40 CEST
    second = utc(2026, 10, 25, 1, 40)  # 02:40 CET
    assert hour_start(first, OSLO) == utc(2026, 10, 25, 0)
    assert hour_start(second, OSLO) == utc(2026, 10, 25, 1)
    assert hour_start(utc(2026, 10, 25, 2, 5), OSLO) == utc(2026, 10, 25, 2)


def test_hour_start_across_spring_change() -> None:
    assert hour_start(utc(2026, 3, 29, 0, 59), OSLO) == utc(2026, 3, 29, 0)  # 01:59 CET
    assert hour_start(utc(2026, 3, 29, 1, 0, 5), OSLO) == utc(2026, 3, 29, 1)  # 03:00 CEST


def test_hour_start_in_half_hour_zone_is_local() -> None:
    from zoneinfo import ZoneInfo

    kolkata = ZoneInfo("Asia/Kolkata")
    assert hour_start(utc(2026, 1, 1, 10, 45), kolkata) == utc(2026, 1, 1, 10, 30)


def test_local_day_and_month() -> None:
    # 23:30 UTC on 31 January is 00:30 on 1 February in Oslo.
    assert local_day(utc(2026, 1, 31, 23, 30), OSLO) == "2026-02-01"
    assert local_month(utc(2026, 1, 31, 23, 30), OSLO) == "2026-02"
    assert local_month(utc(2026, 1, 31, 22, 30), OSLO) == "2026-01"


def test_as_utc() -> None:
    assert as_utc(datetime(2026, 1, 1, 12)) == utc(2026, 1, 1, 12)
    cet = timezone(timedelta(hours=1))
    converted = as_utc(datetime(2026, 1, 1, 12, tzinfo=cet))
    assert converted == utc(2026, 1, 1, 11)
    assert converted.tzinfo is UTC


def test_naive_standard_time_all_year_swedish_meters() -> None:
    from zoneinfo import ZoneInfo

    stockholm = ZoneInfo("Europe/Stockholm")
    # summer: "13:00:00" in CET (UTC+1) is 12:00 UTC, not 11:00 UTC (CEST)
    stamp = datetime(2026, 7, 5, 13, 0, 0)
    assert meter_instant(stamp, utc(2026, 7, 5, 12, 0, 3), stockholm) == utc(2026, 7, 5, 12)
    # the same naive stamp from a meter on summer time
    assert meter_instant(stamp, utc(2026, 7, 5, 11, 0, 3), stockholm) == utc(2026, 7, 5, 11)
