"""Meter time to instants and local hours, across both daylight-saving changes.

Norwegian meters stamp their lists with naive local wall-clock time. In the autumn the
hour 02:00-03:00 happens twice, so "02:00:00" names two instants; in the spring 02:00-03:00
does not exist. The instant a naive stamp means is the candidate closest to when the list
arrived: the meter stamps the list seconds before sending it, and the two candidates are an
hour apart. Everything after this module works on aware UTC instants only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

HOUR: Final = timedelta(hours=1)


def meter_instant(meter_time: datetime, arrival: datetime, zone: tzinfo) -> datetime:
    """Return the UTC instant the meter meant by ``meter_time``.

    An aware time is converted as is. A naive time is wall-clock time in ``zone``: local
    time with daylight saving (Norwegian meters) or the zone's standard time all year
    (Swedish meters). Of those readings, and of both folds where local time is ambiguous
    (autumn) or nonexistent (spring), the one nearest to ``arrival`` wins: they are an hour
    apart, the meter stamps the list seconds before sending it.
    """
    if meter_time.tzinfo is not None and meter_time.utcoffset() is not None:
        return meter_time.astimezone(UTC)
    naive = meter_time.replace(tzinfo=None)
    candidates = [naive.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    local = arrival.astimezone(zone)
    standard = (local.utcoffset() or timedelta(0)) - (local.dst() or timedelta(0))
    candidates.append((naive - standard).replace(tzinfo=UTC))
    return min(candidates, key=lambda instant: abs(instant - arrival))


def hour_start(instant: datetime, zone: tzinfo) -> datetime:
    """Return the UTC instant at which the local hour containing ``instant`` began."""
    local = instant.astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def local_day(instant: datetime, zone: tzinfo) -> str:
    """Return the local date (ISO) of ``instant``: which day an hour starting there belongs to."""
    return instant.astimezone(zone).date().isoformat()


def local_month(instant: datetime, zone: tzinfo) -> str:
    """Return the local month ("2026-03") of ``instant``."""
    local = instant.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def as_utc(value: datetime) -> datetime:
    """Return an aware datetime in UTC (naive input is taken as UTC: only from our own storage)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
