"""The Norwegian capacity charge ("kapasitetsledd"): monthly value, step and headroom.

The monthly value is the mean of the N highest hourly consumptions in the month (kWh in
one hour, i.e. mean kW), counting at most one hour per day (that day's highest). The step
is the first configured limit the value stays below; the headroom is how much more can be
used in the current hour before the value would reach that limit.

Days and months are local (Home Assistant's zone); an hour belongs to the day and month in
which it starts. All energies are integer watt-hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from .clock import as_utc, local_day, local_month


@dataclass(frozen=True, slots=True)
class Peak:
    """One hour's consumption: the hour's start (UTC) and its energy (Wh)."""

    start: datetime
    wh: int


@dataclass(frozen=True, slots=True)
class Step:
    """A capacity step: 1-based index and upper limit (kW); no limit above the last one."""

    index: int
    limit_kw: float | None


def top_peaks(day_peaks: Iterable[Peak], count: int) -> list[Peak]:
    """Return the ``count`` highest daily peaks, highest first (earlier hour first on ties)."""
    return sorted(day_peaks, key=lambda p: (-p.wh, p.start))[:count]


def monthly_value_wh(day_maxima: Sequence[int], count: int) -> float | None:
    """Mean of the ``count`` largest daily maxima (Wh); None before the first hour.

    Early in a month, with fewer days than ``count``, the mean of those there are.
    """
    if not day_maxima:
        return None
    top = sorted(day_maxima, reverse=True)[:count]
    return sum(top) / len(top)


def step_for(value_kw: float, limits_kw: Sequence[float]) -> Step:
    """Return the step a monthly value falls in: the first limit it stays below."""
    for index, limit in enumerate(limits_kw, start=1):
        if value_kw < limit:
            return Step(index, limit)
    return Step(len(limits_kw) + 1, None)


def headroom_wh(
    other_days: Sequence[int], today: int, so_far: float, count: int, limit_kw: float
) -> float:
    """Energy (Wh) the current hour can still take before the monthly value reaches the limit.

    ``other_days`` are the maxima of the month's other days, ``today`` is today's booked
    maximum (0 if none) and ``so_far`` the current hour's energy. Today's entry becomes
    max(today, hour); the value stays below the limit while that entry is below
    limit * (k + 1) - (sum of the k largest other days), k = min(count - 1, other days).
    """
    others = sorted(other_days, reverse=True)
    k = min(count - 1, len(others))
    ceiling = limit_kw * 1000.0 * (k + 1) - sum(others[:k])
    if len(others) >= count and others[count - 1] >= ceiling:
        return 0.0  # the other days alone already reach the limit
    if today >= ceiling:
        return 0.0
    return max(0.0, ceiling - so_far)


class CapacityTracker:
    """Each local day's highest hour, per month, with the configured N and steps."""

    def __init__(self, *, zone: tzinfo, count: int, limits_kw: Sequence[float]) -> None:
        """Start with no hours booked."""
        self._zone = zone
        self._count = count
        self._limits = tuple(limits_kw)
        self._months: dict[str, dict[str, Peak]] = {}

    def add_hour(self, start: datetime, wh: int) -> bool:
        """Book one complete hour's import; True when it became its day's peak."""
        month = self._months.setdefault(local_month(start, self._zone), {})
        day = local_day(start, self._zone)
        current = month.get(day)
        if current is not None and current.wh >= wh:
            return False
        month[day] = Peak(start, wh)
        self._prune(local_month(start, self._zone))
        return True

    def _prune(self, newest: str) -> None:
        """Keep only the newest two months (the one closing and the one running)."""
        for key in sorted(self._months)[:-2]:
            if key != newest:
                del self._months[key]

    def day_peaks(self, now: datetime) -> dict[str, Peak]:
        """Return the booked daily peaks of the month ``now`` is in."""
        return dict(self._months.get(local_month(now, self._zone), {}))

    def peaks(self, now: datetime) -> list[Peak]:
        """Return the month's top-N daily peaks so far (booked hours only), highest first."""
        return top_peaks(self.day_peaks(now).values(), self._count)

    def snapshot(
        self, hour_start: datetime, estimate_wh: float | None, so_far_wh: float | None
    ) -> CapacityState:
        """Monthly value, step and headroom, counting the current hour's estimate.

        ``hour_start`` is the start of the current (running) hour.
        """
        days = self.day_peaks(hour_start)
        today_key = local_day(hour_start, self._zone)
        today = days.pop(today_key, None)
        today_wh = today.wh if today is not None else 0
        others = [p.wh for p in days.values()]
        candidates = list(others)
        today_entry = max(float(today_wh), estimate_wh or 0.0)
        if today is not None or estimate_wh is not None:
            candidates.append(round(today_entry))
        value = monthly_value_wh(candidates, self._count)
        if value is None:
            return CapacityState(None, None, None, self.peaks(hour_start))
        value_kw = value / 1000.0
        step = step_for(value_kw, self._limits)
        headroom = None
        if step.limit_kw is not None and so_far_wh is not None:
            headroom = headroom_wh(others, today_wh, so_far_wh, self._count, step.limit_kw)
        return CapacityState(value_kw, step, headroom, self.peaks(hour_start))

    # ---- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Serialise the booked daily peaks."""
        return {
            month: {day: [p.start.isoformat(), p.wh] for day, p in days.items()}
            for month, days in self._months.items()
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take back what ``to_dict`` gave."""
        self._months = {
            month: {
                day: Peak(as_utc(datetime.fromisoformat(start)), int(wh))
                for day, (start, wh) in days.items()
            }
            for month, days in data.items()
        }


@dataclass(frozen=True, slots=True)
class CapacityState:
    """What the capacity sensors show."""

    value_kw: float | None
    step: Step | None
    headroom_wh: float | None
    peaks: list[Peak]
