"""Live energy: the meter's register, carried forward between hourly registers by power.

Norwegian meters send their energy registers once an hour. Between them this integrates
the power values of the frequent lists (trapezoids over the arrival times), and at every
register it re-anchors to what the meter says. The published value never goes down: when
the integration ran ahead of the meter, it holds until the meter catches up. Power is not
integrated across a silence longer than ``max_sample_gap`` (the energy there is unknown),
so after an outage the value steps up to the next register instead of inventing a ramp.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .clock import as_utc


@dataclass(frozen=True, slots=True)
class AnchorError:
    """How far the live value was from the meter's register when it arrived (Wh).

    ``estimate`` is the integrator's own value at the register's time minus the register;
    ``published`` is what the sensor showed then (after holds) minus the register.
    """

    at: datetime
    estimate: float
    published: float


class LiveEnergy:
    """One channel (import or export) of the live energy sensor, in watt-hours."""

    def __init__(self, *, max_sample_gap: timedelta, history: timedelta) -> None:
        """Start empty: the value is unknown until a register or a restored state."""
        self._max_gap = max_sample_gap.total_seconds()
        self._history = history
        self._estimate: float | None = None
        self._published: float | None = None
        self._anchor_at: datetime | None = None
        self._last: tuple[datetime, float] | None = None
        # (time, energy integrated since start, seconds covered by samples) - cumulative
        self._times: deque[datetime] = deque()
        self._cum: deque[tuple[float, float]] = deque()
        self._integrated = 0.0
        self._covered = 0.0
        self.last_error: AnchorError | None = None

    # ---- inputs ----------------------------------------------------------------------
    def add_power(self, at: datetime, watts: float) -> None:
        """Integrate one power value (W) received at ``at``."""
        watts = max(0.0, watts)
        if self._last is not None:
            previous_at, previous_w = self._last
            seconds = (at - previous_at).total_seconds()
            if seconds <= 0:
                return  # out of order or duplicate: nothing new to integrate
            if seconds <= self._max_gap:
                energy = (previous_w + watts) / 2.0 * seconds / 3600.0
                self._integrated += energy
                self._covered += seconds
                if self._estimate is not None:
                    self._estimate += energy
                    self._raise_published(self._estimate)
        self._last = (at, watts)
        self._record(at)

    def anchor(self, register_wh: float, register_at: datetime) -> None:
        """Re-anchor to the meter's register, valid at ``register_at``.

        Energy integrated after ``register_at`` (the list arrives seconds after its stamp)
        is added on top, so the anchor is not late by the transmission delay.
        """
        since = self.energy_since(register_at)
        if self._estimate is not None and self._published is not None:
            self.last_error = AnchorError(
                at=register_at,
                estimate=self._estimate - since - register_wh,
                published=self._published - since - register_wh,
            )
        self._estimate = register_wh + since
        self._anchor_at = register_at
        self._raise_published(self._estimate)

    def _raise_published(self, value: float) -> None:
        if self._published is None or value > self._published:
            self._published = value

    def _record(self, at: datetime) -> None:
        self._times.append(at)
        self._cum.append((self._integrated, self._covered))
        horizon = at - self._history
        while len(self._times) > 2 and self._times[1] < horizon:
            self._times.popleft()
            self._cum.popleft()

    # ---- queries ---------------------------------------------------------------------
    @property
    def value(self) -> float | None:
        """The published live energy (Wh), never decreasing; None until known."""
        return self._published

    @property
    def estimate(self) -> float | None:
        """The integrator's own value (Wh), which may be below the published value."""
        return self._estimate

    @property
    def anchored_at(self) -> datetime | None:
        """The time of the register the estimate was last anchored to."""
        return self._anchor_at

    def _cumulative_at(self, at: datetime) -> tuple[float, float]:
        """(energy, covered seconds) integrated up to ``at``, interpolated between samples."""
        times = self._times
        if not times:
            return (self._integrated, self._covered)
        index = bisect_right(times, at)
        if index == 0:
            return self._cum[0]
        if index == len(times):
            return self._cum[-1]
        t0, t1 = times[index - 1], times[index]
        (e0, c0), (e1, c1) = self._cum[index - 1], self._cum[index]
        if c1 == c0:
            return (e0, c0)  # a gap that was not integrated: flat
        share = (at - t0) / (t1 - t0)
        return (e0 + (e1 - e0) * share, c0 + (c1 - c0) * share)

    def energy_since(self, since: datetime) -> float:
        """Energy (Wh) integrated from ``since`` to the last sample (0 if none after)."""
        return self._integrated - self._cumulative_at(since)[0]

    def average_power(self, since: datetime) -> float | None:
        """Mean power (W) over the covered time since ``since``; None when nothing covered."""
        energy, covered = self._cumulative_at(since)
        seconds = self._covered - covered
        if seconds <= 0:
            return None
        return (self._integrated - energy) * 3600.0 / seconds

    @property
    def last_sample(self) -> tuple[datetime, float] | None:
        """The last power value and when it came."""
        return self._last

    # ---- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return what survives a restart: the published value and the anchor."""
        return {
            "published": self._published,
            "estimate": self._estimate,
            "anchor_at": self._anchor_at.isoformat() if self._anchor_at else None,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Take back a state from ``to_dict``; power history starts afresh."""
        published = data.get("published")
        estimate = data.get("estimate")
        anchor_at = data.get("anchor_at")
        self._published = float(published) if published is not None else None
        self._estimate = float(estimate) if estimate is not None else self._published
        self._anchor_at = as_utc(datetime.fromisoformat(anchor_at)) if anchor_at else None
